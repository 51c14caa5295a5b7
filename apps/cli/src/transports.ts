import { ImgError, registerTransport, type Transport, transportApiVersion, transports } from '@img/core';
import type { Config, Hook } from '@oclif/core';
import type {} from './types/hooks.js';

/** The built-in transport packages; each registers its transports when imported. */
const builtins: ReadonlyArray<[name: string, load: () => Promise<unknown>]> = [
  ['@img/transport-dir', () => import('@img/transport-dir')],
  ['@img/transport-oci', () => import('@img/transport-oci')],
  ['@img/transport-docker', () => import('@img/transport-docker')],
  ['@img/transport-daemon', () => import('@img/transport-daemon')],
  ['@img/transport-storage', () => import('@img/transport-storage')],
];

/** How long plugin hooks may take, together, before the host gives up on them. */
const hookTimeoutMs = 10_000;

/** Receives one line per plugin that could not be loaded. */
export type WarnFn = (message: string) => void;

const stderrWarn: WarnFn = (message) => {
  process.stderr.write(`Warning: ${message}\n`);
};

let loading: Promise<void> | undefined;

/**
 * Makes every transport available to parseImageName, once per process: imports the built-in
 * transport packages first (so a plugin can never take their names), then runs the
 * `img:transports` hook of the installed plugins and registers what they return. A plugin that
 * fails, targets another contract version or takes a used name costs one warning line, never the
 * other transports.
 */
export function loadTransports(config: Pick<Config, 'runHook'>, warn: WarnFn = stderrWarn): Promise<void> {
  loading ??= (async () => {
    for (const [name, load] of builtins) {
      try {
        await load();
      } catch (error) {
        warn(`built-in transport package ${name} failed to load: ${messageOf(error)}`);
      }
    }
    const result = await config.runHook(
      'img:transports',
      { apiVersion: transportApiVersion },
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

/** The contract version a plugin declares in its package.json (`"img": {"apiVersion": 1}`). */
function declaredApiVersion(plugin: { pjson?: unknown }): unknown {
  const img = (plugin.pjson as { img?: { apiVersion?: unknown } } | undefined)?.img;
  return img?.apiVersion;
}

/**
 * Registers the transports that plugin hooks returned. Skips, with one warning each: a hook that
 * failed or timed out, a plugin declaring another `img.apiVersion` than this img's, something
 * that is not a transport, and a transport whose name is taken (built-ins and earlier plugins win).
 */
export function registerPluginTransports(result: Hook.Result<readonly Transport[]>, warn: WarnFn): void {
  for (const { plugin, error } of result.failures) {
    warn(`plugin ${plugin.name}: its img:transports hook failed: ${messageOf(error)}`);
  }
  for (const { plugin, result: returned } of result.successes) {
    const version = declaredApiVersion(plugin);
    if (version !== transportApiVersion) {
      warn(
        version === undefined
          ? `plugin ${plugin.name}: package.json declares no "img": {"apiVersion": …}; its transports are not loaded`
          : `plugin ${plugin.name}: transport API version ${JSON.stringify(version)} is not supported (this img supports ${transportApiVersion}); its transports are not loaded`,
      );
      continue;
    }
    if (!Array.isArray(returned)) {
      warn(
        `plugin ${plugin.name}: its img:transports hook returned ${typeof returned}, not a list of transports`,
      );
      continue;
    }
    for (const transport of returned as unknown[]) {
      if (!isTransport(transport)) {
        warn(`plugin ${plugin.name}: its img:transports hook returned something that is not a transport`);
        continue;
      }
      const taken = transports.get(transport.name);
      if (taken && taken !== transport) {
        warn(
          `plugin ${plugin.name}: transport "${transport.name}" is already registered; the plugin's is not used`,
        );
        continue;
      }
      try {
        registerTransport(transport);
      } catch (error) {
        warn(
          `plugin ${plugin.name}: transport "${transport.name}" cannot be registered: ${error instanceof ImgError ? error.message : messageOf(error)}`,
        );
      }
    }
  }
}
