/**
 * The docker:// transport's entry in `SystemContext.transportOptions.docker`: what skopeo's
 * `--creds`, `--authfile`, `--tls-verify`, `--cert-dir`, `--registries-conf` and friends set.
 * Every field is optional; the defaults are skopeo's.
 */
export interface DockerTransportOptions {
  /** Username and password given on the command line (`--creds`, `--src-creds`, `--dest-creds`). */
  credentials?: { username: string; password: string } | undefined;
  /** A bearer token used as-is, with no token exchange (`--registry-token`). */
  registryToken?: string | undefined;
  /** Access the registry anonymously, ignoring every credential source (`--no-creds`). */
  noCredentials?: boolean | undefined;
  /** The auth.json to read (and, for login/logout, write) instead of the default lookup (`--authfile`). */
  authFile?: string | undefined;
  /**
   * Whether to require HTTPS and verify the server's certificate (`--tls-verify`). Undefined: as
   * registries.conf says (`insecure = true` allows HTTP and unverified TLS), else true.
   */
  tlsVerify?: boolean | undefined;
  /** A certs.d-style directory (ca.crt, client.cert, client.key) used instead of the per-host default (`--cert-dir`). */
  certDir?: string | undefined;
  /** The registries.conf to use instead of the default lookup (`--registries-conf`). */
  registriesConfPath?: string | undefined;
  /**
   * The local signature lookaside directory to read and write simple-signing signatures in, instead
   * of skopeo's default without registries.d configuration (`/var/lib/containers/sigstore` for
   * root, `~/.local/share/containers/sigstore` otherwise).
   */
  signatureLookasideDir?: string | undefined;
  /** Sent as User-Agent. */
  userAgent?: string | undefined;
  /** How many times one request is retried on a failure that may pass (`--retry-times`; default 3). */
  retryTimes?: number | undefined;
  /** The first retry delay in ms, doubling each time with jitter, unless Retry-After says otherwise (`--retry-delay`). */
  retryDelayMs?: number | undefined;
  /**
   * Where configuration is read from: defaults to process.env and the user's home. Tests and
   * embedders override it instead of mutating the process environment.
   */
  environment?: ConfigEnvironment | undefined;
}

/** The environment configuration lookups depend on. */
export interface ConfigEnvironment {
  /** Defaults to process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Defaults to os.homedir(). */
  homeDir?: string;
  /** The system configuration root, defaults to `/etc` (for /etc/containers/…, /etc/docker/certs.d). */
  systemConfigDir?: string;
}
