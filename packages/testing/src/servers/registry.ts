import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { freePort, type Spawned, spawnLogged } from './process.js';
import { makeTestPki } from './tls.js';
import { startTokenIssuer, type TokenIssuer, type TokenIssuerSettings } from './token-issuer.js';

/** The `docker-registry` binary (Debian's package of distribution 2.8). */
export const REGISTRY_BINARY = '/usr/bin/docker-registry';

/** A user the registry (htpasswd) or the token issuer (token) accepts. */
export interface RegistryUser {
  readonly username: string;
  readonly password: string;
}

/** The user every authenticated mode accepts unless `users` says otherwise. */
export const DEFAULT_REGISTRY_USER: RegistryUser = Object.freeze({
  username: 'testuser',
  password: 'testpassword',
});

/** How the registry authenticates clients. */
export type RegistryAuthMode = 'none' | 'htpasswd' | 'token';

/** Options of {@link startRegistry}. */
export interface StartRegistryOptions {
  /** `none` (default): anonymous access; `htpasswd`: basic auth; `token`: bearer tokens. */
  readonly auth?: RegistryAuthMode;
  /** Serve HTTPS with a certificate from a throw-away CA (default false). */
  readonly tls?: boolean;
  /** Users accepted in `htpasswd` and `token` modes (default: {@link DEFAULT_REGISTRY_USER}). */
  readonly users?: readonly RegistryUser[];
  /**
   * In `token` mode: settings of the token issuer (anonymous pull, ACL, `expires_in`, POST
   * support); it always accepts `users`.
   */
  readonly token?: TokenIssuerSettings;
  /** Milliseconds to wait for `GET /v2/` to answer (default 20000). */
  readonly startTimeoutMs?: number;
  /** The registry's log level (default `info`; `debug` is very chatty). */
  readonly logLevel?: 'error' | 'warn' | 'info' | 'debug';
  /** Whether the registry allows deleting manifests (`storage.delete.enabled`); default true. */
  readonly deleteEnabled?: boolean;
}

/** A running registry started by {@link startRegistry}; stop it with {@link RegistryServer.stop}. */
export interface RegistryServer {
  /** `127.0.0.1:PORT`, the host part of image references (`docker://127.0.0.1:PORT/app:v1`). */
  readonly host: string;
  readonly port: number;
  /** `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`, no trailing slash. */
  readonly url: string;
  readonly scheme: 'http' | 'https';
  readonly auth: RegistryAuthMode;
  /** Users the registry accepts (empty in `none` mode). */
  readonly users: readonly RegistryUser[];
  /** The temp dir holding config, storage, certificates; removed by `stop()`. */
  readonly dir: string;
  /** The filesystem storage root (`docker/registry/v2/...` lives below it). */
  readonly storageDir: string;
  /** The pid of the registry process. */
  readonly pid: number;
  /** With `tls`: the CA certificate (PEM) that signed the server certificate, else undefined. */
  readonly caPem: string | undefined;
  /** With `tls`: a file holding {@link RegistryServer.caPem}. */
  readonly caFile: string | undefined;
  /** With `tls`: a certs.d-style dir, `<certsDir>/<host>/ca.crt` (containers-certs.d(5)). */
  readonly certsDir: string | undefined;
  /** With `tls`: a single dir with `ca.crt`, as skopeo's `--cert-dir` takes. */
  readonly certDir: string | undefined;
  /**
   * With `tls`: the server certificate and key (PEM) for IP:127.0.0.1 and DNS:localhost, any
   * port; pass them to {@link startFaultProxy}'s `tls` so the proxy is trusted by the same CA.
   */
  readonly serverTls: { readonly cert: string; readonly key: string } | undefined;
  /**
   * In `token` mode: the token issuer the registry trusts (its `realm`, recorded `requests`),
   * running in this process over HTTPS when `tls`; else undefined.
   */
  readonly tokenIssuer: TokenIssuer | undefined;
  /** The registry's stdout and stderr so far (the last MiB). */
  logs(): string;
  /** Stops exactly the process this handle started (SIGTERM, then SIGKILL) and removes {@link RegistryServer.dir}. */
  stop(): Promise<void>;
}

function registryEnv(dir: string): NodeJS.ProcessEnv {
  // REGISTRY_* variables override the config file; never inherit them.
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('REGISTRY_')) env[key] = value;
  }
  env.HOME = dir;
  return env;
}

async function htpasswdFile(path: string, users: readonly RegistryUser[]): Promise<void> {
  // distribution only accepts bcrypt entries; cost 4 keeps each check fast.
  const lines = await Promise.all(
    users.map(async (u) => `${u.username}:${await bcrypt.hash(u.password, 4)}`),
  );
  await writeFile(path, `${lines.join('\n')}\n`, { mode: 0o600 });
}

/** Resolves with the status of `GET <url>/v2/`, or undefined when nothing answers. */
function probe(url: string, ca: string | undefined): Promise<number | undefined> {
  return new Promise((resolve) => {
    const onResponse = (res: import('node:http').IncomingMessage) => {
      res.resume();
      resolve(res.statusCode);
    };
    const req = ca ? httpsGet(`${url}/v2/`, { ca }, onResponse) : httpGet(`${url}/v2/`, onResponse);
    req.setTimeout(2000, () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

async function waitReady(
  url: string,
  ca: string | undefined,
  proc: Spawned,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.hasExited()) return false;
    if ((await probe(url, ca)) !== undefined) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/**
 * Starts Debian's `docker-registry` (distribution 2.8.2) on 127.0.0.1 with a generated config:
 * filesystem storage in a temp dir, deletes enabled, a free port; resolves once `GET /v2/`
 * answers. Stop it with the handle's `stop()`.
 *
 * @example
 * ```ts
 * let registry: RegistryServer;
 * beforeAll(async () => { registry = await startRegistry(); });
 * afterAll(() => registry.stop());
 * // docker://${registry.host}/app:v1
 * ```
 */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<RegistryServer> {
  const auth = options.auth ?? 'none';
  const tls = options.tls ?? false;
  const users = auth === 'none' ? [] : [...(options.users ?? [DEFAULT_REGISTRY_USER])];
  const dir = await mkdtemp(join(tmpdir(), 'img-registry-'));
  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const storageDir = join(dir, 'storage');
    await mkdir(storageDir);
    const config: Record<string, unknown> = {
      version: '0.1',
      log: { level: options.logLevel ?? 'info', formatter: 'text', accesslog: { disabled: false } },
      storage: {
        filesystem: { rootdirectory: storageDir },
        delete: { enabled: options.deleteEnabled ?? true },
        maintenance: { uploadpurging: { enabled: false } },
      },
      health: { storagedriver: { enabled: false } },
    };

    let caPem: string | undefined;
    let caFile: string | undefined;
    let tlsConfig: Record<string, string> | undefined;
    let pki: Awaited<ReturnType<typeof makeTestPki>> | undefined;
    if (tls) {
      pki = await makeTestPki(join(dir, 'pki'));
      caPem = pki.ca.certPem;
      caFile = pki.ca.certFile;
      tlsConfig = { certificate: pki.server.certFile, key: pki.server.keyFile };
    }

    let tokenIssuer: TokenIssuer | undefined;
    if (auth === 'htpasswd') {
      const path = join(dir, 'htpasswd');
      await htpasswdFile(path, users);
      config.auth = { htpasswd: { realm: 'img-test', path } };
    } else if (auth === 'token') {
      tokenIssuer = await startTokenIssuer({
        ...options.token,
        users,
        dir: join(dir, 'token'),
        ...(pki ? { tls: { cert: pki.server.certPem, key: pki.server.keyPem } } : {}),
      });
      const issuerHandle = tokenIssuer;
      cleanups.push(() => issuerHandle.close());
      config.auth = {
        token: {
          realm: tokenIssuer.realm,
          service: tokenIssuer.service,
          issuer: tokenIssuer.issuer,
          rootcertbundle: tokenIssuer.rootCertBundle,
        },
      };
    }

    const scheme = tls ? 'https' : 'http';
    const configFile = join(dir, 'config.yml');
    let lastLogs = '';
    // The free port may be taken between probing and binding: retry on a fresh one.
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const host = `127.0.0.1:${port}`;
      const url = `${scheme}://${host}`;
      config.http = {
        addr: host,
        secret: randomBytes(16).toString('hex'),
        ...(tlsConfig ? { tls: tlsConfig } : {}),
        headers: { 'X-Content-Type-Options': ['nosniff'] },
      };
      // JSON is valid YAML, and it quotes every path safely.
      await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`);
      const proc = spawnLogged(REGISTRY_BINARY, ['serve', configFile], { env: registryEnv(dir), cwd: dir });
      const ready = await waitReady(url, caPem, proc, options.startTimeoutMs ?? 20_000);
      if (!ready) {
        await proc.stop(500);
        lastLogs = proc.logs();
        if (/address already in use/.test(lastLogs)) continue;
        break;
      }

      let certsDir: string | undefined;
      let certDir: string | undefined;
      if (caPem !== undefined) {
        certsDir = join(dir, 'certs.d');
        certDir = join(dir, 'cert-dir');
        await mkdir(join(certsDir, host), { recursive: true });
        await mkdir(certDir, { recursive: true });
        await writeFile(join(certsDir, host, 'ca.crt'), caPem);
        await writeFile(join(certDir, 'ca.crt'), caPem);
      }

      let stopped: Promise<void> | undefined;
      return {
        host,
        port,
        url,
        scheme,
        auth,
        users,
        dir,
        storageDir,
        pid: proc.pid,
        caPem,
        caFile,
        certsDir,
        certDir,
        serverTls: pki ? { cert: pki.server.certPem, key: pki.server.keyPem } : undefined,
        tokenIssuer,
        logs: proc.logs,
        stop() {
          stopped ??= (async () => {
            await proc.stop();
            await cleanup();
          })();
          return stopped;
        },
      };
    }
    throw new Error(`docker-registry did not start: ${lastLogs.trim().split('\n').slice(-5).join(' | ')}`);
  } catch (err) {
    await cleanup();
    throw err;
  }
}
