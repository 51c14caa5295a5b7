import type { Environment } from './parse.js';

// Node's modules come from process.getBuiltinModule, not from `import`: every img command loads this
// module first, and an ES import of a built-in module costs about a millisecond more.
const { readFileSync } = process.getBuiltinModule('node:fs');
const { homedir, tmpdir } = process.getBuiltinModule('node:os');
const { join } = process.getBuiltinModule('node:path');

/** The environment variable that keeps every command off the fast path (for tests and debugging). */
export const noFastPathEnv = 'IMG_NO_FAST_PATH';

/** What the environment checks read besides the variables; injectable for tests. */
export interface EligibilityProbe {
  readFile?: (path: string) => string;
  homedir?: () => string;
  cwd?: () => string;
}

/** oclif's name for a variable of this CLI (`config.scopedEnvVarKey`): `DATA_DIR` → `IMG_DATA_DIR`. */
export function scopedEnvKey(bin: string, key: string): string {
  return `${bin.replaceAll('@', '').replaceAll(/[/-]/g, '_')}_${key}`.toUpperCase();
}

/**
 * The directory where oclif keeps the user's plugins (config.dataDir): `$IMG_DATA_DIR`, else
 * `$XDG_DATA_HOME/img`, else `$HOME/.local/share/img`, with oclif's own fallbacks for the home.
 */
export function oclifDataDir(
  env: Environment,
  names: { bin: string; dirname: string },
  probe: EligibilityProbe = {},
): string {
  const scoped = env[scopedEnvKey(names.bin, 'DATA_DIR')];
  if (scoped) return scoped;
  const home = env.HOME || (probe.homedir ?? homedir)() || tmpdir();
  return join(env.XDG_DATA_HOME || join(home, '.local/share'), names.dirname);
}

/**
 * Why oclif would load a plugin here, or undefined when it loads none: the data directory's
 * package.json lists installed (`plugins install`) and linked (`plugins link`) plugins under
 * `oclif.plugins`. A plugin may add hooks, commands or transports; and a file oclif cannot read
 * makes it print a warning. Either way only oclif can run the command as it would.
 */
export function userPluginsBlocker(dataDir: string, probe: EligibilityProbe = {}): string | undefined {
  const file = join(dataDir, 'package.json');
  let text: string;
  try {
    text = (probe.readFile ?? ((path) => readFileSync(path, 'utf8')))(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return `${file} cannot be read`;
  }
  let plugins: unknown;
  try {
    plugins = (JSON.parse(text) as { oclif?: { plugins?: unknown } } | null)?.oclif?.plugins;
  } catch {
    return `${file} is not JSON`;
  }
  if (plugins === undefined || (Array.isArray(plugins) && plugins.length === 0)) return undefined;
  return `plugins are installed or linked (${file})`;
}

/**
 * Why the environment keeps commands off the fast path, or undefined: `IMG_NO_FAST_PATH` (any value
 * but empty and `0`); what makes oclif print more or run differently: `DEBUG`, `IMG_DEBUG`,
 * `CLI_FLAGS_DEBUG`, `NODE_ENV` of `development` or `test` (oclif then runs the TypeScript sources
 * and warns more); a working directory that no longer exists (oclif warns).
 */
export function environmentBlocker(
  env: Environment,
  bin: string,
  probe: EligibilityProbe = {},
): string | undefined {
  const off = env[noFastPathEnv];
  if (off && off !== '0') return `${noFastPathEnv} is set`;
  if (env.DEBUG) return 'DEBUG is set';
  const debugKey = scopedEnvKey(bin, 'DEBUG');
  if (env[debugKey]) return `${debugKey} is set`;
  if (env.CLI_FLAGS_DEBUG === '1') return 'CLI_FLAGS_DEBUG is set';
  if (env.NODE_ENV === 'development' || env.NODE_ENV === 'test') return `NODE_ENV is ${env.NODE_ENV}`;
  try {
    (probe.cwd ?? process.cwd)();
  } catch {
    return 'the working directory does not exist';
  }
  return undefined;
}
