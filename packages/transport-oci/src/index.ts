import { registerTransport } from '@img/core';
import { ociArchiveTransport, ociTransport } from './transport.js';

export type { OciTransportOptions } from './options.js';
export {
  newOciArchiveReference,
  newOciIndexReference,
  newOciReference,
  OciArchiveReference,
  OciReference,
} from './reference.js';
export type { OciArchiveTransport, OciTransport } from './transport.js';
export { ociArchiveTransport, ociTransport } from './transport.js';

// Importing the package makes `oci:` and `oci-archive:` names parseable (STYLE.md section 8).
registerTransport(ociTransport);
registerTransport(ociArchiveTransport);
