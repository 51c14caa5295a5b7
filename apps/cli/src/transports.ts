import * as core from '@img/core';
import { ImgError, registerTransport, type Transport, transportApiVersion, transports } from '@img/core';
import type { Config, Hook } from '@oclif/core';
import {
  firstLine,
  isTransport,
  loadBuiltin,
  resetBuiltinLoader,
  setTransportOrigin,
  transportOrigin,
  type WarnFn,
  warnToStderr,
} from './builtin-loader.js';
import { builtinTransportPackage, builtinTransportPackages } from './builtin-transports.js';
import type {} from './types/hooks.js';

export type { TransportOrigin, WarnFn } from './builtin-loader.js';
export { transportOrigin };

/**
 * The transport contract versions whose plugins this img loads. Optional capabilities are added
 * without a new version (the engine fills in defaults for what a transport lacks), so a plugin
 * written for version 1 keeps working; only a change to a required member makes a version 2, and
 * then this list keeps 1 for as long as the engine can adapt it.
 */
export const supportedApiVersions: readonly number[] = [transportApiVersion];

/** How long each plugin's hook may take before the host gives up on it. */
const hookTimeoutMs = 10_000;

let loading: Promise<void> | undefined;

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
  warn: WarnFn = warnToStderr,
  transportName?: string,
): Promise<void> {
  const builtin = transportName === undefined ? undefined : builtinTransportPackage(transportName);
  if (builtin) return loadBuiltin(builtin, warn);
  loading ??= (async () => {
    for (const b of builtinTransportPackages) await loadBuiltin(b, warn);
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
  resetBuiltinLoader();
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
    warn(`plugin ${pluginLabel(plugin)}: its img:transports hook failed: ${firstLine(error)}`);
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
        const owner = transportOrigin(transport.name);
        const by = owner ? ` by ${owner.kind === 'built-in' ? 'built-in ' : ''}${owner.package}` : '';
        problems.push(`transport "${transport.name}" is already registered${by}; the plugin's is not used`);
        continue;
      }
      try {
        registerTransport(transport);
        setTransportOrigin(transport.name, {
          kind: 'plugin',
          package: plugin.name,
          version: plugin.version,
          pluginType: plugin.type,
        });
      } catch (error) {
        problems.push(
          `transport "${transport.name}" cannot be registered: ${error instanceof ImgError ? error.message : firstLine(error)}`,
        );
      }
    }
    if (problems.length > 0) warn(`plugin ${label}: ${problems.join('; ')}`);
  }
}
