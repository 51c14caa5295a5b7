import { registerTransport } from '@img/core';
import { dockerTransport } from './transport.js';

export type { FoundCredentials, SavedCredentials } from './config/index.js';
export {
  CredentialHelperError,
  dockerConfig,
  findStoredCredentials,
  InvalidConfigError,
  loginKey,
  NotLoggedInError,
  removeAllCredentials,
  removeCredentials,
  saveCredentials,
  storedUsername,
} from './config/index.js';
export type { Credentials, DockerConfig, HostTls, RegistryEndpointPlan } from './config/types.js';
export type { ListTagsOptions } from './list-tags.js';
export { listTags } from './list-tags.js';
export { checkRegistryLogin } from './login.js';
export type { ConfigEnvironment, DockerTransportOptions } from './options.js';
export { DockerReference, newDockerReference } from './reference.js';
export type { DockerTransport } from './transport.js';
export { dockerTransport } from './transport.js';

// Importing the package makes `docker://` names parseable (STYLE.md section 8).
registerTransport(dockerTransport);
