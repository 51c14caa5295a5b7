import { access, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { InvalidLayoutError, NotSupportedError } from '@img/core';
import { parse as parseToml } from 'smol-toml';

/** Where a store lives and how it is laid out: what `[driver@graphroot+runroot:options]` names. */
export interface StoreSpec {
  /** The graph driver: `vfs` or `overlay` are the ones img implements; empty = from storage.conf. */
  driver?: string | undefined;
  /** The graph root (layers, images); empty = from storage.conf. */
  graphRoot?: string | undefined;
  /** The run root (mount state); empty = from storage.conf. */
  runRoot?: string | undefined;
  /** Driver options such as `overlay.mountopt=nodev`; replace those of storage.conf when given. */
  options?: readonly string[] | undefined;
}

/** A store resolved from storage.conf and a reference's store spec. */
export interface ResolvedStore {
  driver: string;
  graphRoot: string;
  runRoot: string;
  /** Driver options, `driver.key=value` (storage.conf's `[storage.options.<driver>]` and the spec's). */
  options: string[];
  /** What, if anything, img does not implement about this store (it is then only read, never written). */
  unsupported: string | undefined;
  /** Where the settings came from, for messages. */
  configFile: string | undefined;
}

const systemOverrideConfig = '/etc/containers/storage.conf';
const systemDefaultConfig = '/usr/share/containers/storage.conf';

function isRootless(): boolean {
  return typeof process.getuid === 'function' && process.getuid() !== 0;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

type Table = Record<string, unknown>;

function table(value: unknown): Table {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Table) : {};
}

async function readConf(path: string): Promise<Table | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return parseToml(text) as Table;
  } catch (error) {
    const reason = (error as Error).message.split('\n')[0];
    throw new InvalidLayoutError(`invalid storage configuration "${path}": ${reason}`, { cause: error });
  }
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function expandEnv(text: string): string {
  return text.replace(/\$(\w+)|\$\{(\w+)\}/g, (_, a: string | undefined, b: string | undefined) => {
    const name = (a ?? b)!;
    if (name === 'HOME') return process.env.HOME ?? homedir();
    if (name === 'UID') return String(process.getuid?.() ?? 0);
    return process.env[name] ?? '';
  });
}

/** The rootless run root as containers/storage picks it (XDG_RUNTIME_DIR, /run/user/UID, TMPDIR). */
async function rootlessRunRoot(): Promise<string> {
  const uid = process.getuid?.() ?? 0;
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg) return join(xdg, 'containers');
  const runUser = `/run/user/${uid}`;
  try {
    const s = await stat(runUser);
    if (s.isDirectory() && s.uid === uid && (s.mode & 0o777) === 0o700) return join(runUser, 'containers');
  } catch {
    // Not there: the next candidate.
  }
  return join(process.env.TMPDIR ?? '/tmp', `containers-user-${uid}`, 'containers');
}

/** Which driver containers/storage would pick for an empty `driver` setting, from what the graph root holds. */
async function detectDriver(graphRoot: string): Promise<string> {
  for (const driver of ['overlay', 'vfs']) {
    if (await exists(join(graphRoot, `${driver}-layers`))) return driver;
  }
  return isRootless() ? 'vfs' : 'overlay';
}

/** The options of one driver table of storage.conf, as `driver.key=value` strings. */
function driverOptions(options: Table, driver: string): string[] {
  const out: string[] = [];
  // Generic keys under [storage.options] apply to the driver too (containers/storage maps them).
  for (const key of ['mount_program', 'mountopt', 'force_mask', 'ignore_chown_errors', 'size']) {
    const v = options[key];
    if (v !== undefined && v !== '') out.push(`${driver}.${key}=${String(v)}`);
  }
  for (const [key, v] of Object.entries(table(options[driver]))) {
    if (v !== undefined && v !== '' && typeof v !== 'object') out.push(`${driver}.${key}=${String(v)}`);
  }
  return out;
}

/** Why a store is out of img's reach, or undefined when img can read and write it. */
function unsupportedReason(driver: string, options: string[], storeOptions: Table): string | undefined {
  if (driver !== 'vfs' && driver !== 'overlay' && driver !== 'overlay2') {
    return `the "${driver}" storage driver is not supported (img writes vfs and overlay)`;
  }
  for (const key of ['remap-uids', 'remap-gids', 'remap-user', 'remap-group']) {
    const v = storeOptions[key];
    if (v !== undefined && v !== '') return `uid/gid remapping (${key}) is not supported`;
  }
  for (const option of options) {
    const [name, value = ''] = option.split('=', 2) as [string, string?];
    const key = name.replace(/^(overlay2?|vfs)\./, '').replace(/^\./, '');
    if (key === 'mount_program' && value !== '') return `a mount program (${value}) is not supported`;
    if (key === 'force_mask' && value !== '') return 'force_mask is not supported';
  }
  if (driver !== 'vfs' && isRootless()) return 'rootless overlay stores are not supported';
  return undefined;
}

/**
 * Resolves the store a reference names: its spec, filled in from storage.conf
 * (CONTAINERS_STORAGE_CONF, else the user's file when rootless, else /etc/containers/storage.conf,
 * else /usr/share/containers/storage.conf) and containers/storage's root or rootless defaults.
 */
export async function resolveStore(spec: StoreSpec = {}): Promise<ResolvedStore> {
  const rootless = isRootless();
  let configFile: string | undefined;
  let conf: Table | undefined;
  const envConf = process.env.CONTAINERS_STORAGE_CONF;
  if (envConf) {
    configFile = envConf;
    conf = await readConf(envConf);
    if (!conf)
      throw new InvalidLayoutError(`storage configuration "${envConf}" (CONTAINERS_STORAGE_CONF) not found`);
  } else {
    const system = (await exists(systemOverrideConfig)) ? systemOverrideConfig : systemDefaultConfig;
    if (rootless) {
      const userFile = join(
        process.env.XDG_CONFIG_HOME || join(homedir(), '.config'),
        'containers/storage.conf',
      );
      conf = await readConf(userFile);
      configFile = conf ? userFile : undefined;
      if (!conf) {
        // As containers/storage: the system file's driver and options, with rootless paths.
        const sys = await readConf(system);
        if (sys) {
          const s = table(sys.storage);
          conf = {
            storage: { driver: s.driver, options: s.options, rootless_storage_path: s.rootless_storage_path },
          };
          configFile = system;
        }
      }
    } else {
      conf = await readConf(system);
      configFile = conf ? system : undefined;
    }
  }
  const storage = table(conf?.storage);
  const storeOptions = table(storage.options);

  let graphRoot = spec.graphRoot || '';
  let runRoot = spec.runRoot || '';
  if (rootless) {
    const rootlessPath = expandEnv(str(storage.rootless_storage_path));
    graphRoot ||=
      rootlessPath ||
      join(process.env.XDG_DATA_HOME || join(homedir(), '.local/share'), 'containers/storage');
    runRoot ||= await rootlessRunRoot();
  } else {
    graphRoot ||= str(storage.graphroot) || '/var/lib/containers/storage';
    runRoot ||= str(storage.runroot) || '/run/containers/storage';
  }
  for (const [what, path] of [
    ['graph root', graphRoot],
    ['run root', runRoot],
  ] as const) {
    if (!isAbsolute(path)) throw new InvalidLayoutError(`the ${what} "${path}" is not an absolute path`);
  }

  let driver = spec.driver || process.env.STORAGE_DRIVER || str(storage.driver);
  if (driver === '') driver = await detectDriver(graphRoot);
  if (driver === 'overlay2') driver = 'overlay';
  let options = spec.options ? [...spec.options] : driverOptions(storeOptions, driver);
  if (!spec.options && process.env.STORAGE_OPTS) {
    options = process.env.STORAGE_OPTS.split(',').filter((o) => o !== '');
  }
  return {
    driver,
    graphRoot,
    runRoot,
    options,
    unsupported: unsupportedReason(driver, options, storeOptions),
    configFile,
  };
}

/** Throws NotSupportedError (one line) when img must not write to the store. */
export function assertWritable(store: ResolvedStore): void {
  if (store.unsupported) {
    throw new NotSupportedError(
      `cannot write to the containers-storage store at "${store.graphRoot}": ${store.unsupported}`,
    );
  }
  if (isRootless()) {
    throw new NotSupportedError(
      `cannot write to the containers-storage store at "${store.graphRoot}": img writes stores only as root (run it under "podman unshare")`,
    );
  }
}
