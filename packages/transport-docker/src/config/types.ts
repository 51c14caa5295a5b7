import type { ConfigEnvironment, DockerTransportOptions } from '../options.js';

/**
 * Credentials for one registry, as the client presents them: a username and password (basic, or
 * exchanged for a bearer token), an identity token (an OAuth2 refresh token from `docker login`,
 * username `<token>` in auth.json), or a bearer token used as-is (`--registry-token`).
 */
export type Credentials =
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'identity-token'; username?: string; identityToken: string }
  | { kind: 'bearer'; token: string };

/** TLS and scheme settings for one registry host. */
export interface HostTls {
  /** Whether plain HTTP may be used for this host (insecure per flag or registries.conf, or loopback as skopeo treats it: never by default). */
  allowHttp: boolean;
  /** Verify the server certificate. */
  verify: boolean;
  /** Extra CA certificates (PEM) from certs.d `*.crt`, added to the system roots. */
  ca: Buffer[];
  /** Client certificate and key (PEM) from certs.d `*.cert` / `*.key`. */
  cert?: Buffer;
  key?: Buffer;
}

/** What registries.conf says of a reference: where to pull it from and whether it may be used at all. */
export interface RegistryEndpointPlan {
  /** The reference is blocked: every use fails. */
  blocked: boolean;
  /** Pull sources in order: mirrors (unless mirror-by-digest-only excludes this pull), then the primary location. */
  pullSources: ReadonlyArray<{ host: string; repository: string; insecure: boolean; isMirror: boolean }>;
  /** The primary location's host and whether it is insecure. */
  primary: { host: string; repository: string; insecure: boolean };
}

/**
 * The configuration functions the docker:// client uses; implemented in src/config/ (auth.ts,
 * certs.ts, registries-conf.ts). Kept to this shape so the client and the config code can change
 * apart.
 */
export interface DockerConfig {
  /**
   * The credentials for `host` (and `repository`, for namespaced auth.json keys), in skopeo's order:
   * options.credentials / registryToken, then the auth file(s), credential helpers and credsStore;
   * undefined for anonymous access (or with noCredentials).
   */
  resolveCredentials(
    host: string,
    repository: string | undefined,
    options: DockerTransportOptions,
  ): Promise<Credentials | undefined>;
  /** TLS settings for `host` (certs.d: --cert-dir, else /etc/containers/certs.d/<host>/, /etc/docker/certs.d/<host>/). */
  hostTls(host: string, options: DockerTransportOptions): Promise<HostTls>;
  /**
   * registries.conf's plan for `host/repository` (mirrors, blocked, insecure). `pullBy` says whether
   * the pull is by digest or by tag (default), which decides the mirrors `mirror-by-digest-only` and
   * `pull-from-mirror` allow.
   */
  endpointPlan(
    host: string,
    repository: string,
    options: DockerTransportOptions,
    pullBy?: 'digest' | 'tag',
  ): Promise<RegistryEndpointPlan>;
}

export type { ConfigEnvironment };
