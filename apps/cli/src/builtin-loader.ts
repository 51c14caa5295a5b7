import { createRequire } from 'node:module';
import { type Transport, transports } from '@img/core';
import { type BuiltinTransportPackage, builtinTransportPackage } from './builtin-transports.js';

// Loading the built-in transport packages, and remembering where each registered transport came
// from. Apart from transports.ts (the plugins), so that the fast path loads built-ins without the
// plugin machinery, which hands plugins the whole of @img/core and so keeps all of it in a bundle.

/** Receives one line per transport package that could not be loaded. */
export type WarnFn = (message: string) => void;

/** Writes one `Warning: …` line to stderr. */
export const warnToStderr: WarnFn = (message) => {
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
const loadingBuiltins = new Map<string, Promise<void>>();

/** Where the transport registered under `name` came from, when this CLI loaded it. */
export function transportOrigin(name: string): TransportOrigin | undefined {
  const origin = origins.get(name);
  // A built-in's version is read when asked for (`img transports`), not on every load.
  if (origin?.kind === 'built-in' && !('version' in origin)) origin.version = packageVersion(origin.package);
  return origin;
}

/** Records where the transport registered under `name` came from (a plugin's, by transports.ts). */
export function setTransportOrigin(name: string, origin: TransportOrigin): void {
  origins.set(name, origin);
}

/** Imports one built-in package, once, warning instead of failing when it cannot be loaded. */
export function loadBuiltin(builtin: BuiltinTransportPackage, warn: WarnFn): Promise<void> {
  let pending = loadingBuiltins.get(builtin.package);
  if (!pending) {
    pending = builtin.load().then(
      (module) => recordBuiltinOrigins(builtin.package, module),
      (error: unknown) =>
        warn(`built-in transport package ${builtin.package} failed to load: ${firstLine(error)}`),
    );
    loadingBuiltins.set(builtin.package, pending);
  }
  return pending;
}

/**
 * Imports the built-in package that provides `transportName`, and never a plugin: for a run that
 * has checked that its image names use built-in transports only (the fast path). Rejects any other
 * name.
 */
export function loadBuiltinTransport(
  transportName: string | undefined,
  warn: WarnFn = warnToStderr,
): Promise<void> {
  const builtin = transportName === undefined ? undefined : builtinTransportPackage(transportName);
  if (!builtin) return Promise.reject(new Error(`"${transportName}" is not a built-in transport`));
  return loadBuiltin(builtin, warn);
}

/** Forgets which built-ins were loaded and every origin, so tests can load them again. */
export function resetBuiltinLoader(): void {
  loadingBuiltins.clear();
  origins.clear();
}

/** Attributes to a built-in package the registered transports that its module exports. */
function recordBuiltinOrigins(packageName: string, module: unknown): void {
  if (typeof module !== 'object' || module === null) return;
  for (const value of Object.values(module)) {
    if (isTransport(value) && transports.get(value.name) === value && !origins.has(value.name)) {
      origins.set(value.name, { kind: 'built-in', package: packageName });
    }
  }
}

function packageVersion(packageName: string): string | undefined {
  try {
    return (createRequire(import.meta.url)(`${packageName}/package.json`) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/** The first line of an error's message. */
export function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] ?? text;
}

/** Whether a value has the shape of a Transport. */
export function isTransport(value: unknown): value is Transport {
  if (typeof value !== 'object' || value === null) return false;
  const t = value as Partial<Transport>;
  return typeof t.name === 'string' && typeof t.parseReference === 'function';
}
