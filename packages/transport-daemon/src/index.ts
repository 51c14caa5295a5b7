import { registerTransport } from '@img/core';
import { dockerArchiveTransport, dockerDaemonTransport } from './transport.js';

export type { DockerDaemonTransportOptions } from './options.js';
export {
  DockerArchiveReference,
  DockerDaemonReference,
  newDockerArchiveReference,
  newDockerDaemonReference,
} from './reference.js';
export type { DockerArchiveTransport, DockerDaemonTransport } from './transport.js';
export { dockerArchiveTransport, dockerDaemonTransport } from './transport.js';

// Importing the package makes `docker-daemon:` and `docker-archive:` names parseable (STYLE.md section 8).
registerTransport(dockerDaemonTransport);
registerTransport(dockerArchiveTransport);
