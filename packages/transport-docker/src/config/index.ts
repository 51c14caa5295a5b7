import type { DockerTransportOptions } from '../options.js';
import { resolveCredentials } from './auth.js';
import { certDirFor, readCertDir } from './certs.js';
import { endpointPlan, isInsecureHost, loadRegistriesConf } from './registries-conf.js';
import type { DockerConfig, HostTls } from './types.js';

/**
 * TLS settings for `host`: certs.d content (`options.certDir`, else the host's directory under
 * ~/.config/containers/certs.d, /etc/containers/certs.d or /etc/docker/certs.d), and whether to verify
 * and allow plain HTTP: `options.tlsVerify` when set, else registries.conf's `insecure`.
 */
export async function hostTls(host: string, options: DockerTransportOptions): Promise<HostTls> {
  const dir = await certDirFor(host, options);
  const certs = dir ? await readCertDir(dir) : { ca: [] };
  const insecure =
    options.tlsVerify !== undefined
      ? !options.tlsVerify
      : isInsecureHost(await loadRegistriesConf(options), host);
  const tls: HostTls = { allowHttp: insecure, verify: !insecure, ca: certs.ca };
  if (certs.cert && certs.key) {
    tls.cert = certs.cert;
    tls.key = certs.key;
  }
  return tls;
}

/** The configuration the docker:// client reads: credentials, TLS per host, and registries.conf's plan. */
export const dockerConfig: DockerConfig = { resolveCredentials, hostTls, endpointPlan };

export type { FoundCredentials, SavedCredentials } from './auth.js';
export {
  authFileForWrite,
  authFilesToRead,
  findStoredCredentials,
  loginKey,
  removeAllCredentials,
  removeCredentials,
  resolveCredentials,
  saveCredentials,
  storedUsername,
  validateAuthKey,
} from './auth.js';
export { CredentialHelperError, InvalidConfigError, NotLoggedInError } from './errors.js';
export { endpointPlan, loadRegistriesConf } from './registries-conf.js';
export type { Credentials, DockerConfig, HostTls, RegistryEndpointPlan } from './types.js';
