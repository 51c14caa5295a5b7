import { type HttpFailure, UnauthorizedError } from '@img/core';
import type { Credentials, DockerConfig } from './config/types.js';
import { dockerConfig } from './context.js';
import type { DockerTransportOptions } from './options.js';
import { RegistryClient } from './registry/client.js';
import { redactUrl } from './registry/errors.js';

/**
 * Checks credentials against a registry as `docker login` does: `GET /v2/` with them (for a token
 * registry, a token without scopes is asked first). Resolves when the registry accepts them; throws
 * UnauthorizedError when it refuses, ConnectionError when it cannot be reached.
 *
 * @example
 * await checkRegistryLogin('127.0.0.1:5000', { kind: 'basic', username: 'u', password: 'p' }, {});
 */
export async function checkRegistryLogin(
  host: string,
  credentials: Credentials,
  options: DockerTransportOptions = {},
  signal?: AbortSignal,
): Promise<void> {
  const base = dockerConfig();
  const config: DockerConfig = {
    resolveCredentials: async () => credentials,
    hostTls: (h, o) => base.hostTls(h, o),
    endpointPlan: (h, r, o) => base.endpointPlan(h, r, o),
  };
  const client = new RegistryClient({ host, actions: 'pull', options, config });
  const res = await client.request({ method: 'GET', target: '/v2/', signal });
  await res.body.dump();
  if (res.statusCode === 200) return;
  if (res.statusCode === 401 || res.statusCode === 403) {
    const failure: HttpFailure = { method: 'GET', url: redactUrl(res.url), status: res.statusCode };
    throw new UnauthorizedError(host, undefined, failure, true);
  }
  throw await client.failure(res, 'GET');
}
