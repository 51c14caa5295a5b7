import { createRequire } from 'node:module';
import * as core from '@img/core';
import { ImgError, registerTransport, type Transport, transportApiVersion, transports } from '@img/core';
import type { Config, Hook } from '@oclif/core';
import type {} from './types/hooks.js';

/**
 * The built-in transport packages and the transports each registers when imported. A command that
 * names a built-in transport imports only that package: the others (and the plugins) cost start-up
 * time and are not needed to parse the name.
 */
const builtins: ReadonlyArray<{
  package: string;
  transports: readonly string[];
  load: () => Promise<unknown>;
}> = [
  { package: '@img/transport-dir', transports: ['dir'], load: () => import('@img/transport-dir') },
  {
    package: '@img/transport-oci',
    transports: ['oci', 'oci-archive'],
    load: () => import('@img/transport-oci'),
  },
  { package: '@img/transport-docker', transports: ['docker'], load: () => import('@img/transport-docker') },
  {
    package: '@img/transport-daemon',
    transports: ['docker-daemon', 'docker-archive'],
    load: () => import('@img/transport-daemon'),
  },
  {
    package: '@img/transport-storage',
    transports: ['containers-storage'],
    load: () => import('@img/transport-storage'),
  },
];

/**
 * The transport contract versions whose plugins this img loads. Optional capabilities are added
 * without a new version (the engine fills in defaults for what a transport lacks), so a plugin
 * written for version 1 keeps working; only a change to a required member makes a version 2, and
 * then this list keeps 1 for as long as the engine can adapt it.
 */
export const supportedApiVersions: readonly number[] = [transportApiVersion];

/** How long each plugin's hook may take before the host gives up on it. */
const hookTimeoutMs = 10_000;

/** Receives one line per plugin that could not be loaded. */
export type WarnFn = (message: string) => void;

const stderrWarn: WarnFn = (message) => {
  process.stderr.write(`Warning: ${message}\n`);
};

/** Where a registered transport came from, for `img transports`. */
export interface TransportOrigin {
  /** `built-in`: a package img depends on; `plugin`: an oclif plugin (installed, linked or bundled). */
  kind: 'built-in' | 'plugin';
  /** The npm package that provides it. */
  package: string;
  version?: string | undefined;
  /** For plugins, oclif's plugin type: `user` (installed), `link`, `core`. */
  pluginType?: string | undefined;
}

const origins = new Map<string, TransportOrigin>();

/** Where the transport registered under `name` came from, when this CLI loaded it. */
export function transportOrigin(name: string): TransportOrigin | undefined {
  return origins.get(name);
}

let loading: Promise<void> | undefined;
const loadingBuiltins = new Map<string, Promise<void>>();

/** Imports one built-in package, once, warning instead of failing when it cannot be loaded. */
function loadBuiltin(builtin: (typeof builtins)[number], warn: WarnFn): Promise<void> {
  let pending = loadingBuiltins.get(builtin.package);
  if (!pending) {
    pending = builtin.load().then(
      (module) => recordBuiltinOrigins(builtin.package, module),
      (error: unknown) =>
        warn(`built-in transport package ${builtin.package} failed to load: ${messageOf(error)}`),
    );
    loadingBuiltins.set(builtin.package, pending);
  }
  return pending;
}

/**
 * Makes transports available to parseImageName. With `transportName` that a built-in package
 * provides, imports just that package. Otherwise (no name, a plugin's name or an unknown one),
 * once per process: imports every built-in package first (so a plugin can never take their
 * names), then runs the `img:transports` hook of the installed plugins, handing them this img's
 * @img/core, and registers what they return. A plugin that fails, targets another contract
 * version or takes a used name costs one warning line, never the other transports.
 */
export function loadTransports(
  config: Pick<Config, 'runHook'>,
  warn: WarnFn = stderrWarn,
  transportName?: string,
): Promise<void> {
  const builtin =
    transportName === undefined ? undefined : builtins.find((b) => b.transports.includes(transportName));
  if (builtin) return loadBuiltin(builtin, warn);
  loading ??= (async () => {
    for (const b of builtins) await loadBuiltin(b, warn);
    const result = await config.runHook(
      'img:transports',
      { apiVersion: transportApiVersion, core },
      hookTimeoutMs,
      true,
    );
    registerPluginTransports(result, warn);
  })();
  return loading;
}

/** Forgets that transports were loaded, so tests can load them again. */
export function resetLoadedTransports(): void {
  loading = undefined;
  loadingBuiltins.clear();
  origins.clear();
}

/** Attributes to a built-in package the registered transports that its module exports. */
function recordBuiltinOrigins(packageName: string, module: unknown): void {
  if (typeof module !== 'object' || module === null) return;
  let version: string | undefined;
  try {
    version = (createRequire(import.meta.url)(`${packageName}/package.json`) as { version?: string }).version;
  } catch {
    version = undefined;
  }
  for (const value of Object.values(module)) {
    if (isTransport(value) && transports.get(value.name) === value && !origins.has(value.name)) {
      origins.set(value.name, { kind: 'built-in', package: packageName, version });
    }
  }
}

function messageOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] ?? text;
}

function isTransport(value: unknown): value is Transport {
  if (typeof value !== 'object' || value === null) return false;
  const t = value as Partial<Transport>;
  return typeof t.name === 'string' && typeof t.parseReference === 'function';
}

type HookPlugin = Hook.Result<unknown>['successes'][number]['plugin'];

/** The contract version a plugin declares in its package.json (`"img": {"apiVersion": 1}`). */
function declaredApiVersion(plugin: HookPlugin): unknown {
  const img = (plugin.pjson as { img?: { apiVersion?: unknown } } | undefined)?.img;
  return img?.apiVersion;
}

/** `name@version` of a plugin, as warnings name it. */
function pluginLabel(plugin: HookPlugin): string {
  return plugin.version ? `${plugin.name}@${plugin.version}` : plugin.name;
}

/**
 * Registers the transports that plugin hooks returned. Skips, with one warning each: a hook that
 * failed or timed out, a plugin declaring an `img.apiVersion` this img does not support, something
 * that is not a list of transports, and a transport whose name is taken (built-ins and earlier
 * plugins win).
 */
export function registerPluginTransports(result: Hook.Result<readonly Transport[]>, warn: WarnFn): void {
  for (const { plugin, error } of result.failures) {
    warn(`plugin ${pluginLabel(plugin)}: its img:transports hook failed: ${messageOf(error)}`);
  }
  for (const { plugin, result: returned } of result.successes) {
    const label = pluginLabel(plugin);
    const version = declaredApiVersion(plugin);
    if (typeof version !== 'number' || !supportedApiVersions.includes(version)) {
      warn(
        version === undefined
          ? `plugin ${label}: package.json declares no "img": {"apiVersion": …}; its transports are not loaded`
          : `plugin ${label}: transport API version ${JSON.stringify(version)} is not supported (this img supports ${supportedApiVersions.join(', ')}); its transports are not loaded`,
      );
      continue;
    }
    if (!Array.isArray(returned)) {
      warn(`plugin ${label}: its img:transports hook returned ${typeof returned}, not a list of transports`);
      continue;
    }
    const problems: string[] = [];
    for (const transport of returned as unknown[]) {
      if (!isTransport(transport)) {
        problems.push('something that is not a transport was returned');
        continue;
      }
      const taken = transports.get(transport.name);
      if (taken && taken !== transport) {
        const owner = origins.get(transport.name);
        const by = owner ? ` by ${owner.kind === 'built-in' ? 'built-in ' : ''}${owner.package}` : '';
        problems.push(`transport "${transport.name}" is already registered${by}; the plugin's is not used`);
        continue;
      }
      try {
        registerTransport(transport);
        origins.set(transport.name, {
          kind: 'plugin',
          package: plugin.name,
          version: plugin.version,
          pluginType: plugin.type,
        });
      } catch (error) {
        problems.push(
          `transport "${transport.name}" cannot be registered: ${error instanceof ImgError ? error.message : messageOf(error)}`,
        );
      }
    }
    if (problems.length > 0) warn(`plugin ${label}: ${problems.join('; ')}`);
  }
}
