import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import type { DockerTransportOptions } from '../options.js';
import { envValue, resolveEnvironment } from './environment.js';
import { InvalidConfigError } from './errors.js';
import type { RegistryEndpointPlan } from './types.js';

/** registries.conf's `pull-from-mirror`: which pulls may use a mirror. */
export type PullFromMirror = 'all' | 'digest-only' | 'tag-only';

/** One `[[registry.mirror]]`. */
export interface MirrorEntry {
  location: string;
  insecure: boolean;
  pullFromMirror: PullFromMirror;
}

/** One `[[registry]]`, normalized: `prefix` defaults to `location`; locations have no trailing slash. */
export interface RegistryEntry {
  prefix: string;
  location: string;
  insecure: boolean;
  blocked: boolean;
  mirrorByDigestOnly: boolean;
  mirrors: MirrorEntry[];
}

/** The merged registries configuration: the main file, then its drop-ins. */
export interface RegistriesConf {
  /** Sorted by prefix, one entry per prefix (a later drop-in replaces an earlier entry). */
  registries: RegistryEntry[];
  unqualifiedSearchRegistries: string[];
  /** The files read, in order, for messages. */
  files: string[];
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** A location or prefix without its trailing slashes; URL schemes are refused, as containers/image does. */
function parseLocation(path: string, value: string): string {
  const trimmed = value.replace(/\/+$/, '');
  if (/^https?:\/\//.test(trimmed))
    throw new InvalidConfigError(path, `invalid location "${value}": URI schemes are not supported`);
  return trimmed;
}

function field<T>(
  path: string,
  table: Record<string, unknown>,
  name: string,
  type: 'string' | 'boolean',
  where: string,
): T | undefined {
  const value = table[name];
  if (value === undefined) return undefined;
  if (typeof value !== type) throw new InvalidConfigError(path, `${where}: "${name}" must be a ${type}`);
  return value as T;
}

function stringArray(path: string, value: unknown, where: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string'))
    throw new InvalidConfigError(path, `${where} must be an array of strings`);
  return value as string[];
}

interface ParsedFile {
  registries: RegistryEntry[];
  unqualifiedSearchRegistries: string[] | undefined;
}

/**
 * Parses one registries.conf (v2, or v1 with `[registries.search|insecure|block]`, converted) and
 * checks it as containers/image does; `forceV2` for drop-ins, which may not use v1. Errors name `path`.
 */
export function parseRegistriesConf(text: string, path: string, forceV2 = false): ParsedFile {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (error) {
    const first = ((error as Error).message ?? '').split('\n')[0] ?? '';
    throw new InvalidConfigError(path, `not valid TOML: ${first}`);
  }
  const v1 = doc.registries;
  const hasV2 =
    doc.registry !== undefined ||
    doc['unqualified-search-registries'] !== undefined ||
    doc['credential-helpers'] !== undefined ||
    doc['short-name-mode'] !== undefined ||
    doc.aliases !== undefined;
  if (v1 !== undefined) {
    if (forceV2)
      throw new InvalidConfigError(path, 'drop-in files must use the v2 format, not [registries.*]');
    if (hasV2)
      throw new InvalidConfigError(
        path,
        'mixing the v1 ([registries.*]) and v2 ([[registry]]) formats is not supported',
      );
    return parseV1(path, v1);
  }
  const registries: RegistryEntry[] = [];
  if (doc.registry !== undefined) {
    if (!Array.isArray(doc.registry))
      throw new InvalidConfigError(path, '"registry" must be an array of tables ([[registry]])');
    for (const [i, raw] of doc.registry.entries()) {
      if (!isTable(raw)) throw new InvalidConfigError(path, `[[registry]] #${i + 1} is not a table`);
      registries.push(parseRegistry(path, raw, `[[registry]] #${i + 1}`));
    }
  }
  const search = stringArray(path, doc['unqualified-search-registries'], '"unqualified-search-registries"');
  return {
    registries: checkConsistency(path, registries),
    unqualifiedSearchRegistries: search?.map((s) => parseLocation(path, s)),
  };
}

function parseRegistry(path: string, raw: Record<string, unknown>, where: string): RegistryEntry {
  const location = parseLocation(path, field<string>(path, raw, 'location', 'string', where) ?? '');
  const rawPrefix = field<string>(path, raw, 'prefix', 'string', where);
  let prefix: string;
  if (rawPrefix === undefined || rawPrefix === '') {
    if (location === '') throw new InvalidConfigError(path, `${where}: both location and prefix are unset`);
    prefix = location;
  } else {
    prefix = parseLocation(path, rawPrefix);
    if (prefix.startsWith('*.')) {
      if (/[/@:]/.test(prefix))
        throw new InvalidConfigError(
          path,
          `${where}: a wildcard prefix must look like *.example.com, not "${prefix}"`,
        );
    } else if (location === '') {
      throw new InvalidConfigError(
        path,
        `${where}: location is unset and prefix is not in the format *.example.com`,
      );
    }
  }
  if (raw['pull-from-mirror'] !== undefined)
    throw new InvalidConfigError(
      path,
      `${where}: pull-from-mirror must not be set for a non-mirror registry "${prefix}"`,
    );
  const mirrorByDigestOnly = field<boolean>(path, raw, 'mirror-by-digest-only', 'boolean', where) ?? false;
  const mirrors: MirrorEntry[] = [];
  if (raw.mirror !== undefined) {
    if (!Array.isArray(raw.mirror))
      throw new InvalidConfigError(
        path,
        `${where}: "mirror" must be an array of tables ([[registry.mirror]])`,
      );
    for (const [j, m] of raw.mirror.entries()) {
      const mwhere = `${where} mirror #${j + 1}`;
      if (!isTable(m)) throw new InvalidConfigError(path, `${mwhere} is not a table`);
      const mlocation = parseLocation(path, field<string>(path, m, 'location', 'string', mwhere) ?? '');
      if (mlocation === '') throw new InvalidConfigError(path, `${mwhere}: mirror location is unset`);
      const pull = field<string>(path, m, 'pull-from-mirror', 'string', mwhere);
      if (pull !== undefined && pull !== '' && mirrorByDigestOnly)
        throw new InvalidConfigError(
          path,
          `${where}: mirror-by-digest-only and the pull-from-mirror of mirror "${mlocation}" cannot both be set`,
        );
      if (
        pull !== undefined &&
        pull !== '' &&
        pull !== 'all' &&
        pull !== 'digest-only' &&
        pull !== 'tag-only'
      )
        throw new InvalidConfigError(path, `${mwhere}: unsupported pull-from-mirror value "${pull}"`);
      mirrors.push({
        location: mlocation,
        insecure: field<boolean>(path, m, 'insecure', 'boolean', mwhere) ?? false,
        pullFromMirror: pull === undefined || pull === '' ? 'all' : (pull as PullFromMirror),
      });
    }
  }
  return {
    prefix,
    location,
    insecure: field<boolean>(path, raw, 'insecure', 'boolean', where) ?? false,
    blocked: field<boolean>(path, raw, 'blocked', 'boolean', where) ?? false,
    mirrorByDigestOnly,
    mirrors,
  };
}

function parseV1(path: string, v1: unknown): ParsedFile {
  if (!isTable(v1))
    throw new InvalidConfigError(path, '"registries" must be a table ([registries.search] …)');
  const list = (name: string): string[] => {
    const table = v1[name];
    if (table === undefined) return [];
    if (!isTable(table)) throw new InvalidConfigError(path, `[registries.${name}] must be a table`);
    return stringArray(path, table.registries, `[registries.${name}] registries`) ?? [];
  };
  const byLocation = new Map<string, RegistryEntry>();
  const get = (value: string) => {
    const location = parseLocation(path, value);
    let entry = byLocation.get(location);
    if (!entry) {
      entry = {
        prefix: location,
        location,
        insecure: false,
        blocked: false,
        mirrorByDigestOnly: false,
        mirrors: [],
      };
      byLocation.set(location, entry);
    }
    return entry;
  };
  for (const r of list('block')) get(r).blocked = true;
  for (const r of list('insecure')) get(r).insecure = true;
  const search = list('search').map((s) => parseLocation(path, s));
  return {
    registries: checkConsistency(path, [...byLocation.values()]),
    unqualifiedSearchRegistries: search,
  };
}

/** Entries for one location must agree on insecure and blocked; the first entry of a prefix wins. */
function checkConsistency(path: string, registries: RegistryEntry[]): RegistryEntry[] {
  const byLocation = new Map<string, RegistryEntry>();
  for (const r of registries) {
    const key = r.location || r.prefix;
    const other = byLocation.get(key);
    if (other) {
      if (other.insecure !== r.insecure)
        throw new InvalidConfigError(
          path,
          `registry "${key}" is defined more than once with conflicting "insecure" settings`,
        );
      if (other.blocked !== r.blocked)
        throw new InvalidConfigError(
          path,
          `registry "${key}" is defined more than once with conflicting "blocked" settings`,
        );
    } else {
      byLocation.set(key, r);
    }
  }
  const byPrefix = new Map<string, RegistryEntry>();
  for (const r of registries) if (!byPrefix.has(r.prefix)) byPrefix.set(r.prefix, r);
  return [...byPrefix.values()].sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0));
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new InvalidConfigError(path, `cannot be read (${code ?? 'error'})`);
  }
}

async function dropIns(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries
      .filter((e) => !e.isDirectory() && e.name.endsWith('.conf'))
      .map((e) => e.name)
      .sort()
      .map((name) => join(dir, name));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw new InvalidConfigError(dir, `cannot be read (${code ?? 'error'})`);
  }
}

/**
 * The registries.conf files to read, as containers/image picks them: the main file is
 * `options.registriesConfPath`, else `$CONTAINERS_REGISTRIES_CONF` (both must exist), else
 * `~/.config/containers/registries.conf` if it exists (then only `~/.config/containers/registries.conf.d`
 * holds drop-ins), else `<sysconf>/containers/registries.conf`; drop-ins come from
 * `<sysconf>/containers/registries.conf.d` then `~/.config/containers/registries.conf.d`.
 */
export async function registriesConfFiles(
  options: DockerTransportOptions,
): Promise<{ main: string; mainRequired: boolean; dropInDirs: string[] }> {
  const env = resolveEnvironment(options);
  const userFile = join(env.homeDir, '.config', 'containers', 'registries.conf');
  const userDir = join(env.homeDir, '.config', 'containers', 'registries.conf.d');
  const systemFile = join(env.systemConfigDir, 'containers', 'registries.conf');
  const systemDir = join(env.systemConfigDir, 'containers', 'registries.conf.d');
  const explicit = options.registriesConfPath ?? envValue(env, 'CONTAINERS_REGISTRIES_CONF');
  if (explicit) return { main: explicit, mainRequired: true, dropInDirs: [systemDir, userDir] };
  if (await exists(userFile)) return { main: userFile, mainRequired: false, dropInDirs: [userDir] };
  return { main: systemFile, mainRequired: false, dropInDirs: [systemDir, userDir] };
}

/** Reads and merges registries.conf and its drop-ins (a drop-in's `[[registry]]` replaces the one with the same prefix). */
export async function loadRegistriesConf(options: DockerTransportOptions): Promise<RegistriesConf> {
  const { main, mainRequired, dropInDirs } = await registriesConfFiles(options);
  const conf: RegistriesConf = { registries: [], unqualifiedSearchRegistries: [], files: [] };
  const text = await readText(main);
  if (text === undefined) {
    if (mainRequired) throw new InvalidConfigError(main, 'does not exist');
  } else {
    const parsed = parseRegistriesConf(text, main);
    conf.registries = parsed.registries;
    conf.unqualifiedSearchRegistries = parsed.unqualifiedSearchRegistries ?? [];
    conf.files.push(main);
  }
  for (const dir of dropInDirs) {
    for (const path of await dropIns(dir)) {
      const dropInText = await readText(path);
      if (dropInText === undefined) continue;
      const parsed = parseRegistriesConf(dropInText, path, true);
      const byPrefix = new Map(conf.registries.map((r) => [r.prefix, r]));
      for (const r of parsed.registries) byPrefix.set(r.prefix, r);
      conf.registries = [...byPrefix.values()].sort((a, b) =>
        a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0,
      );
      if (parsed.unqualifiedSearchRegistries !== undefined)
        conf.unqualifiedSearchRegistries = parsed.unqualifiedSearchRegistries;
      conf.files.push(path);
    }
  }
  return conf;
}

/** How much of `ref` (`host[/path]`) `prefix` matches, or -1: whole path segments, or `*.domain` on the host. */
export function refMatchingPrefix(ref: string, prefix: string): number {
  if (prefix.startsWith('*.')) {
    const suffix = prefix.slice(1);
    const index = ref.indexOf(suffix);
    if (index < 0 || ref.slice(0, index).includes('/')) return -1;
    const end = index + suffix.length;
    if (end === ref.length) return end;
    return ':/@'.includes(ref[end]!) ? end : -1;
  }
  if (ref.length < prefix.length || !ref.startsWith(prefix)) return -1;
  if (ref.length === prefix.length) return prefix.length;
  return ':/@'.includes(ref[prefix.length]!) ? prefix.length : -1;
}

/** The `[[registry]]` with the longest prefix matching `ref`, as containers/image's FindRegistry. */
export function findRegistry(conf: RegistriesConf, ref: string): RegistryEntry | undefined {
  let best: RegistryEntry | undefined;
  for (const r of conf.registries) {
    if (refMatchingPrefix(ref, r.prefix) >= 0 && (!best || r.prefix.length > best.prefix.length)) best = r;
  }
  return best;
}

function hostOf(location: string): string {
  return location.split('/')[0] ?? location;
}

/**
 * Whether registries.conf marks `host` insecure: the registry it matches as a reference, or any
 * registry or mirror whose location is on that host (a pull may reach a mirror by its own name).
 */
export function isInsecureHost(conf: RegistriesConf, host: string): boolean {
  if (findRegistry(conf, host)?.insecure) return true;
  for (const r of conf.registries) {
    if (r.insecure && r.location !== '' && hostOf(r.location) === host) return true;
    for (const m of r.mirrors) if (m.insecure && hostOf(m.location) === host) return true;
  }
  return false;
}

function splitRef(conf: RegistriesConf, ref: string, original: string): { host: string; repository: string } {
  const slash = ref.indexOf('/');
  if (slash <= 0 || slash === ref.length - 1)
    throw new InvalidConfigError(
      conf.files.join(', ') || 'registries.conf',
      `rewriting "${original}" gives "${ref}", which names no repository`,
    );
  return { host: ref.slice(0, slash), repository: ref.slice(slash + 1) };
}

/**
 * registries.conf's plan for pulling `host/repository`: the mirrors that apply (all of them, or by
 * `pull-from-mirror` / `mirror-by-digest-only` only for pulls by digest or by tag), then the primary
 * location, each with the reference rewritten from the prefix to its location.
 */
export function planFor(
  conf: RegistriesConf,
  host: string,
  repository: string,
  pullBy: 'digest' | 'tag' = 'tag',
): RegistryEndpointPlan {
  const ref = `${host}/${repository}`;
  const reg = findRegistry(conf, ref);
  if (!reg) {
    const primary = { host, repository, insecure: false };
    return { blocked: false, primary, pullSources: [{ ...primary, isMirror: false }] };
  }
  const rewrite = (location: string) =>
    reg.prefix.startsWith('*.') || location === '' ? ref : location + ref.slice(reg.prefix.length);
  const byDigest = pullBy === 'digest';
  const mirrors = reg.mirrorByDigestOnly
    ? byDigest
      ? reg.mirrors
      : []
    : reg.mirrors.filter(
        (m) => m.pullFromMirror === 'all' || (m.pullFromMirror === 'digest-only') === byDigest,
      );
  const primary = { ...splitRef(conf, rewrite(reg.location), ref), insecure: reg.insecure };
  return {
    blocked: reg.blocked,
    primary,
    pullSources: [
      ...mirrors.map((m) => ({
        ...splitRef(conf, rewrite(m.location), ref),
        insecure: m.insecure,
        isMirror: true,
      })),
      { ...primary, isMirror: false },
    ],
  };
}

/** {@link planFor} with registries.conf read as `options` say. */
export async function endpointPlan(
  host: string,
  repository: string,
  options: DockerTransportOptions,
  pullBy: 'digest' | 'tag' = 'tag',
): Promise<RegistryEndpointPlan> {
  const plan = planFor(await loadRegistriesConf(options), host, repository, pullBy);
  if (options.tlsVerify === undefined) return plan;
  // --tls-verify, either way, overrides registries.conf's insecure for every endpoint.
  const insecure = !options.tlsVerify;
  return {
    blocked: plan.blocked,
    primary: { ...plan.primary, insecure },
    pullSources: plan.pullSources.map((s) => ({ ...s, insecure })),
  };
}
