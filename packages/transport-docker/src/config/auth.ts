import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { DockerTransportOptions } from '../options.js';
import { helperErase, helperGet, helperStore } from './credential-helpers.js';
import { envValue, type ResolvedEnvironment, resolveEnvironment, xdgConfigHome } from './environment.js';
import { InvalidConfigError, NotLoggedInError } from './errors.js';
import type { Credentials } from './types.js';

/** One auth file to read, and whether it is in the legacy `~/.dockercfg` format (the `auths` map alone). */
export interface AuthFileLocation {
  path: string;
  legacy: boolean;
}

/** The credsStore / credHelpers username that marks the secret as an identity token. */
const identityTokenUsername = '<token>';

/** The key and helper server URL docker itself uses for Docker Hub. */
const dockerHubLegacyKey = 'https://index.docker.io/v1/';

function uid(): number {
  return process.getuid?.() ?? 0;
}

/**
 * The primary (read/write) auth file, as `login` writes it: `options.authFile`, else
 * `$REGISTRY_AUTH_FILE`, else `${XDG_RUNTIME_DIR}/containers/auth.json`, else (no XDG_RUNTIME_DIR)
 * `/run/containers/<uid>/auth.json`, as containers/image does on Linux.
 */
function primaryAuthFile(options: DockerTransportOptions, env: ResolvedEnvironment): string {
  if (options.authFile) return options.authFile;
  const fromEnv = envValue(env, 'REGISTRY_AUTH_FILE');
  if (fromEnv) return fromEnv;
  const runtimeDir = envValue(env, 'XDG_RUNTIME_DIR');
  if (runtimeDir) return join(runtimeDir, 'containers', 'auth.json');
  return `/run/containers/${uid()}/auth.json`;
}

/**
 * The auth files credentials are looked up in, in order: `options.authFile` alone when given;
 * otherwise `$REGISTRY_AUTH_FILE`, `${XDG_RUNTIME_DIR}/containers/auth.json` (or
 * `/run/containers/<uid>/auth.json`), `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`,
 * `${DOCKER_CONFIG:-~/.docker}/config.json` and the legacy `~/.dockercfg`.
 */
export function authFilesToRead(options: DockerTransportOptions): AuthFileLocation[] {
  const env = resolveEnvironment(options);
  if (options.authFile) return [{ path: options.authFile, legacy: false }];
  const paths: AuthFileLocation[] = [];
  const fromEnv = envValue(env, 'REGISTRY_AUTH_FILE');
  if (fromEnv) paths.push({ path: fromEnv, legacy: false });
  const runtimeDir = envValue(env, 'XDG_RUNTIME_DIR');
  paths.push({
    path: runtimeDir ? join(runtimeDir, 'containers', 'auth.json') : `/run/containers/${uid()}/auth.json`,
    legacy: false,
  });
  paths.push({ path: join(xdgConfigHome(env), 'containers', 'auth.json'), legacy: false });
  const dockerConfig = envValue(env, 'DOCKER_CONFIG');
  paths.push({
    path: dockerConfig ? join(dockerConfig, 'config.json') : join(env.homeDir, '.docker', 'config.json'),
    legacy: false,
  });
  paths.push({ path: join(env.homeDir, '.dockercfg'), legacy: true });
  return paths;
}

/**
 * The auth file `login` and `logout` edit: `options.authFile`, `$REGISTRY_AUTH_FILE`, or
 * `${XDG_RUNTIME_DIR}/containers/auth.json`. Fails, as containers/image does, when XDG_RUNTIME_DIR
 * names a directory that does not exist (a typo would otherwise scatter credentials).
 */
export async function authFileForWrite(options: DockerTransportOptions): Promise<string> {
  const env = resolveEnvironment(options);
  const path = primaryAuthFile(options, env);
  const runtimeDir = envValue(env, 'XDG_RUNTIME_DIR');
  if (!options.authFile && !envValue(env, 'REGISTRY_AUTH_FILE') && runtimeDir) {
    try {
      await stat(runtimeDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        throw new InvalidConfigError(
          runtimeDir,
          'the directory named by $XDG_RUNTIME_DIR does not exist; create it or unset XDG_RUNTIME_DIR',
        );
    }
  }
  return path;
}

/** An auth file's content: the whole JSON object, kept so that a rewrite preserves what img does not know. */
type AuthFileContent = Record<string, unknown>;

interface AuthEntry {
  auth?: unknown;
  identitytoken?: unknown;
}

interface ParsedAuthFile {
  raw: AuthFileContent;
  auths: Record<string, AuthEntry>;
  credHelpers: Record<string, string>;
  credsStore: string | undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads and checks one auth file; undefined when it does not exist. A file that is not JSON, or whose
 * `auths`, `credHelpers` or `credsStore` has the wrong shape, fails with a line naming the file and
 * never quoting it.
 */
export async function readAuthFile(location: AuthFileLocation): Promise<ParsedAuthFile | undefined> {
  let text: string;
  try {
    text = await readFile(location.path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new InvalidConfigError(location.path, `cannot be read (${code ?? 'error'})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text, which may hold credentials: say only where.
    throw new InvalidConfigError(location.path, 'not valid JSON');
  }
  if (!isObject(json)) throw new InvalidConfigError(location.path, 'not a JSON object');
  if (location.legacy)
    return { raw: json, auths: checkAuths(location.path, json), credHelpers: {}, credsStore: undefined };
  const auths = json.auths === undefined || json.auths === null ? {} : checkAuths(location.path, json.auths);
  const credHelpers: Record<string, string> = {};
  if (json.credHelpers !== undefined && json.credHelpers !== null) {
    if (!isObject(json.credHelpers))
      throw new InvalidConfigError(location.path, '"credHelpers" is not an object');
    for (const [host, helper] of Object.entries(json.credHelpers)) {
      if (typeof helper !== 'string')
        throw new InvalidConfigError(location.path, `"credHelpers" entry "${host}" is not a string`);
      credHelpers[host] = helper;
    }
  }
  let credsStore: string | undefined;
  if (json.credsStore !== undefined && json.credsStore !== null && json.credsStore !== '') {
    if (typeof json.credsStore !== 'string')
      throw new InvalidConfigError(location.path, '"credsStore" is not a string');
    credsStore = json.credsStore;
  }
  return { raw: json, auths, credHelpers, credsStore };
}

function checkAuths(path: string, value: unknown): Record<string, AuthEntry> {
  if (!isObject(value)) throw new InvalidConfigError(path, '"auths" is not an object');
  for (const [key, entry] of Object.entries(value)) {
    if (!isObject(entry)) throw new InvalidConfigError(path, `"auths" entry "${key}" is not an object`);
  }
  return value as Record<string, AuthEntry>;
}

/** docker.io's other names, as auth files spell Docker Hub. */
function normalizeRegistry(host: string): string {
  return host === 'docker.io' || host === 'registry-1.docker.io' ? 'index.docker.io' : host;
}

/** An auth file key as a registry host: URL forms (`https://host/v1/`) lose scheme and path, docker.io names are unified. */
export function normalizeAuthFileKey(key: string, legacy: boolean): string {
  let stripped = key.replace(/^https?:\/\//, '');
  if (legacy || stripped !== key) stripped = stripped.split('/')[0] ?? stripped;
  return normalizeRegistry(stripped);
}

/** The auth keys that may hold credentials for `key`, most specific first: `host/ns/repo`, `host/ns`, `host`. */
export function authKeyLookupOrder(key: string, host: string, legacy: boolean): string[] {
  if (legacy) return [host];
  const keys: string[] = [];
  let k = key;
  for (;;) {
    keys.push(k);
    const slash = k.lastIndexOf('/');
    if (slash < 0) break;
    k = k.slice(0, slash);
  }
  return keys;
}

const base64Pattern = /^[A-Za-z0-9+/]*={0,2}$/;

/** The credentials an `auths` entry holds; undefined for an empty entry (docker's marker when a helper holds them). */
function decodeEntry(path: string, key: string, entry: AuthEntry): Credentials | undefined {
  let username: string | undefined;
  let password: string | undefined;
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const compact = entry.auth.replace(/\s+/g, '');
    if (compact.length % 4 === 1 || !base64Pattern.test(compact))
      throw new InvalidConfigError(path, `the "auth" of "${key}" is not base64`);
    const decoded = Buffer.from(compact, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon >= 0) {
      username = decoded.slice(0, colon);
      // Some writers pad with NULs.
      password = decoded.slice(colon + 1).replace(/^\0+|\0+$/g, '');
    }
  }
  if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') {
    return username
      ? { kind: 'identity-token', username, identityToken: entry.identitytoken }
      : { kind: 'identity-token', identityToken: entry.identitytoken };
  }
  if (username === undefined || password === undefined) return undefined;
  return { kind: 'basic', username, password };
}

function fromHelper(helper: { username: string; secret: string } | undefined): Credentials | undefined {
  if (!helper) return undefined;
  if (helper.username === identityTokenUsername)
    return { kind: 'identity-token', identityToken: helper.secret };
  return { kind: 'basic', username: helper.username, password: helper.secret };
}

/** The server URLs a credsStore may know Docker Hub or another host by, in the order docker writes them. */
function storeServerUrls(host: string): string[] {
  return normalizeRegistry(host) === 'index.docker.io' ? [dockerHubLegacyKey, host] : [host];
}

/** Where credentials were found, for `--get-login` and debugging; never the secret itself. */
export interface FoundCredentials {
  credentials: Credentials;
  /** The auth file they came from. */
  file: string;
  /** `auths` key, or `credential helper <name>`. */
  source: string;
}

/**
 * Looks `key` (`host`, `host/namespace` or `host/namespace/repo`) up in the auth files, in order;
 * within each: `credHelpers[host]`, then `auths` from the most specific key down to the host, then
 * keys written as URLs or under docker.io's other names, then `credsStore`. Missing files are skipped.
 */
export async function findStoredCredentials(
  key: string,
  options: DockerTransportOptions,
  signal?: AbortSignal,
): Promise<FoundCredentials | undefined> {
  const env = resolveEnvironment(options);
  const host = key.split('/')[0] ?? key;
  for (const location of authFilesToRead(options)) {
    const file = await readAuthFile(location);
    if (!file) continue;
    const helper = file.credHelpers[host];
    if (helper !== undefined) {
      const credentials = fromHelper(await helperGet(helper, host, env, signal));
      if (credentials) return { credentials, file: location.path, source: `credential helper ${helper}` };
      continue;
    }
    for (const candidate of authKeyLookupOrder(key, host, location.legacy)) {
      const entry = file.auths[candidate];
      if (!entry) continue;
      const credentials = decodeEntry(location.path, candidate, entry);
      if (credentials) return { credentials, file: location.path, source: candidate };
    }
    const normalized = normalizeRegistry(host);
    for (const [candidate, entry] of Object.entries(file.auths)) {
      if (normalizeAuthFileKey(candidate, location.legacy) !== normalized) continue;
      const credentials = decodeEntry(location.path, candidate, entry);
      if (credentials) return { credentials, file: location.path, source: candidate };
    }
    if (file.credsStore) {
      for (const url of storeServerUrls(host)) {
        const credentials = fromHelper(await helperGet(file.credsStore, url, env, signal));
        if (credentials)
          return { credentials, file: location.path, source: `credential helper ${file.credsStore}` };
      }
    }
  }
  return undefined;
}

/**
 * The credentials for `host` (and `repository`), in skopeo's order: none with `noCredentials`, the
 * `registryToken` as a bearer token, the `credentials` given, else what the auth files hold.
 */
export async function resolveCredentials(
  host: string,
  repository: string | undefined,
  options: DockerTransportOptions,
): Promise<Credentials | undefined> {
  if (options.noCredentials) return undefined;
  if (options.registryToken) return { kind: 'bearer', token: options.registryToken };
  if (options.credentials)
    return { kind: 'basic', username: options.credentials.username, password: options.credentials.password };
  const found = await findStoredCredentials(repository ? `${host}/${repository}` : host, options);
  return found?.credentials;
}

/**
 * Checks a login key (`host[:port]`, optionally `/namespace/…`) as containers/image does: no URL
 * scheme, no tag or digest. Returns whether it is namespaced.
 */
export function validateAuthKey(key: string): { namespaced: boolean } {
  if (/^https?:\/\//.test(key)) throw new Error(`invalid registry "${key}": contains an http[s]:// prefix`);
  if (key.includes('@')) throw new Error(`invalid registry "${key}": contains a '@' character`);
  if (key === '' || key.startsWith('/')) throw new Error(`invalid registry "${key}": no host`);
  const slash = key.indexOf('/');
  if (slash >= 0 && key.slice(slash + 1).includes(':'))
    throw new Error(`invalid registry "${key}": contains a ':' character after host[:port]`);
  return { namespaced: slash >= 0 };
}

/**
 * The auth key for what a user passes to `login`/`logout`: URLs (`https://quay.io/v1/`) become their
 * host, a trailing slash is dropped, and docker.io's other names become `docker.io`.
 */
export function loginKey(arg: string): string {
  let key = arg.trim();
  if (/^https?:\/\//.test(key)) {
    key = key.replace(/^https?:\/\//, '').split('/')[0] ?? '';
  }
  key = key.replace(/\/+$/, '');
  const [host = '', ...rest] = key.split('/');
  const normalizedHost = normalizeRegistry(host) === 'index.docker.io' ? 'docker.io' : host;
  return [normalizedHost, ...rest].join('/');
}

async function writeFileAtomic(path: string, data: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    // open()'s mode is filtered by the umask; credentials are for the owner only, whatever it is.
    await chmod(temp, 0o600);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

async function editAuthFile(path: string, edit: (file: ParsedAuthFile) => Promise<boolean>): Promise<void> {
  const existing = await readAuthFile({ path, legacy: false });
  const file: ParsedAuthFile = existing ?? { raw: {}, auths: {}, credHelpers: {}, credsStore: undefined };
  if (!(await edit(file))) return;
  const raw: AuthFileContent = { ...file.raw, auths: file.auths };
  await writeFileAtomic(path, `${JSON.stringify(raw, null, '\t')}\n`);
}

/** Where `saveCredentials` put the credentials: the auth file, or a credential helper. */
export interface SavedCredentials {
  file: string;
  helper?: string;
}

/**
 * Stores a username and password for `key` (`host` or `host/namespace`), as `img login` does: through
 * the helper the auth file's `credHelpers` names for the host, else as `auths[key] = {auth:
 * base64(user:pass)}` in the auth file (written atomically, mode 0600, directory 0700), keeping the
 * rest of the file as it was.
 */
export async function saveCredentials(
  key: string,
  credentials: { username: string; password: string },
  options: DockerTransportOptions,
  signal?: AbortSignal,
): Promise<SavedCredentials> {
  const { namespaced } = validateAuthKey(key);
  const env = resolveEnvironment(options);
  const path = await authFileForWrite(options);
  let helper: string | undefined;
  await editAuthFile(path, async (file) => {
    helper = file.credHelpers[key];
    if (helper !== undefined) {
      if (namespaced)
        throw new Error(`namespaced key "${key}" is not supported by credential helper ${helper}`);
      await helperStore(
        helper,
        key,
        { username: credentials.username, secret: credentials.password },
        env,
        signal,
      );
      return false;
    }
    const auth = Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64');
    file.auths[key] = { auth };
    return true;
  });
  return helper === undefined ? { file: path } : { file: path, helper };
}

/**
 * Removes the credentials for `key` from the auth file `login` writes (and from the credential helper
 * its `credHelpers` names for the key). Fails with NotLoggedInError when there were none.
 */
export async function removeCredentials(
  key: string,
  options: DockerTransportOptions,
  signal?: AbortSignal,
): Promise<void> {
  validateAuthKey(key);
  const env = resolveEnvironment(options);
  const path = await authFileForWrite(options);
  let removed = false;
  await editAuthFile(path, async (file) => {
    const helper = file.credHelpers[key];
    if (helper !== undefined && (await helperErase(helper, key, env, signal))) removed = true;
    if (Object.hasOwn(file.auths, key)) {
      delete file.auths[key];
      removed = true;
      return true;
    }
    return false;
  });
  if (!removed) throw new NotLoggedInError(key);
}

/**
 * Removes every credential from the auth file `login` writes, and from the credential helpers its
 * `credHelpers` names. The `credHelpers` settings themselves stay.
 */
export async function removeAllCredentials(
  options: DockerTransportOptions,
  signal?: AbortSignal,
): Promise<void> {
  const env = resolveEnvironment(options);
  const path = await authFileForWrite(options);
  await editAuthFile(path, async (file) => {
    for (const [host, helper] of Object.entries(file.credHelpers))
      await helperErase(helper, host, env, signal);
    if (Object.keys(file.auths).length === 0) return false;
    file.auths = {};
    return true;
  });
}

/** The username stored for `key` (what `login --get-login` prints), looked up as for a pull; undefined if none. */
export async function storedUsername(
  key: string,
  options: DockerTransportOptions,
  signal?: AbortSignal,
): Promise<string | undefined> {
  validateAuthKey(key);
  const found = await findStoredCredentials(key, options, signal);
  if (!found) return undefined;
  const { credentials } = found;
  if (credentials.kind === 'basic') return credentials.username || undefined;
  if (credentials.kind === 'identity-token') return credentials.username || undefined;
  return undefined;
}
