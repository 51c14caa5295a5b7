import type { SystemContext } from '@img/core';
import { dockerConfig as fileConfig } from './config/index.js';
import type { DockerConfig, HostTls } from './config/types.js';
import type { DockerTransportOptions } from './options.js';

/**
 * A configuration that reads no file: only the options' own credentials and `tlsVerify` count (no
 * auth files, certs.d or registries.conf). Tests build on it.
 */
export const fallbackConfig: DockerConfig = {
  async resolveCredentials(_host, _repository, options) {
    if (options.noCredentials) return undefined;
    if (options.registryToken) return { kind: 'bearer', token: options.registryToken };
    if (options.credentials) return { kind: 'basic', ...options.credentials };
    return undefined;
  },
  async hostTls(_host, options): Promise<HostTls> {
    const insecure = options.tlsVerify === false;
    return { allowHttp: insecure, verify: !insecure, ca: [] };
  },
  async endpointPlan(host, repository) {
    const primary = { host, repository, insecure: false };
    return { blocked: false, pullSources: [{ ...primary, isMirror: false }], primary };
  },
};

let active: DockerConfig = fileConfig;

/** The configuration the transport uses: auth files, certs.d and registries.conf (src/config/). */
export function dockerConfig(): DockerConfig {
  return active;
}

/** Replaces the configuration (tests, embedders). */
export function setDockerConfig(config: DockerConfig): void {
  active = config;
}

/** The docker options of a SystemContext, checked; a malformed entry throws TypeError (a caller's bug). */
export function dockerOptions(ctx: SystemContext | undefined): DockerTransportOptions {
  const raw = ctx?.transportOptions?.docker;
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null)
    throw new TypeError('transportOptions.docker must be an object');
  return raw as DockerTransportOptions;
}
