import { homedir } from 'node:os';
import { join } from 'node:path';
import type { SystemContext } from '@img/core';

/**
 * Settings of the `docker-daemon:` transport, given as `ctx.transportOptions['docker-daemon']`
 * (skopeo's `--src-daemon-host` / `--dest-daemon-host`). What is left out comes from the docker
 * CLI's environment: `DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`, `DOCKER_API_VERSION`.
 */
export interface DockerDaemonTransportOptions {
  /**
   * Where the Engine API listens: `unix:///var/run/docker.sock` (the default), `tcp://host:2376`,
   * `http://host:2375` (plain) or `https://host:2376`.
   */
  host?: string;
  /** A directory holding `ca.pem`, `cert.pem` and `key.pem` for a TLS daemon (default `~/.docker`). */
  certPath?: string;
  /**
   * Use TLS for `tcp://` and verify the daemon's certificate against `ca.pem`. Without it, a
   * `tcp://` host is plain HTTP, as with the docker CLI; `https://` uses TLS without verification.
   */
  tlsVerify?: boolean;
  /** A fixed Engine API version (`1.41`) instead of the negotiated one. */
  apiVersion?: string;
}

/** The docker-daemon settings in force: the options given, then the environment, then the defaults. */
export interface ResolvedDaemonOptions {
  host: string;
  certPath: string;
  tlsVerify: boolean;
  apiVersion: string | undefined;
}

/** The default Engine API socket. */
export const defaultDaemonHost = 'unix:///var/run/docker.sock';

/**
 * The docker-daemon options of a SystemContext, completed from `env`; a malformed entry throws
 * TypeError (a caller's bug).
 */
export function daemonOptions(
  ctx: SystemContext,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedDaemonOptions {
  const raw = ctx.transportOptions?.['docker-daemon'] as DockerDaemonTransportOptions | undefined;
  if (raw !== undefined && (typeof raw !== 'object' || raw === null)) {
    throw new TypeError("transportOptions['docker-daemon'] must be an object");
  }
  const given = raw ?? {};
  for (const key of ['host', 'certPath', 'apiVersion'] as const) {
    const value = given[key];
    if (value !== undefined && (typeof value !== 'string' || value === '')) {
      throw new TypeError(`transportOptions['docker-daemon'].${key} must be a non-empty string`);
    }
  }
  if (given.tlsVerify !== undefined && typeof given.tlsVerify !== 'boolean') {
    throw new TypeError("transportOptions['docker-daemon'].tlsVerify must be a boolean");
  }
  const apiVersion = given.apiVersion ?? (env.DOCKER_API_VERSION || undefined);
  if (apiVersion !== undefined && !/^\d+\.\d+$/.test(apiVersion)) {
    throw new TypeError(`invalid Engine API version "${apiVersion}": expected MAJOR.MINOR`);
  }
  return {
    host: given.host ?? (env.DOCKER_HOST || defaultDaemonHost),
    certPath: given.certPath ?? (env.DOCKER_CERT_PATH || join(homedir(), '.docker')),
    // The docker CLI treats any non-empty DOCKER_TLS_VERIFY as true.
    tlsVerify: given.tlsVerify ?? Boolean(env.DOCKER_TLS_VERIFY),
    apiVersion,
  };
}
