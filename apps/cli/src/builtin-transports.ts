/** A transport package img depends on, and the transports it registers when imported. */
export interface BuiltinTransportPackage {
  package: string;
  transports: readonly string[];
  load: () => Promise<unknown>;
}

let liftoffOnly = false;

/**
 * Sets V8's `--liftoff-only` before the first package that imports undici. undici parses HTTP with
 * WebAssembly; V8's optimising recompile of it costs ~35 MiB of peak memory and ~0.2 s of CPU in a
 * short-lived command, for no measurable gain on blob transfers (bodies pass through the parser as
 * spans). Set here rather than at start-up, so that a command that never speaks HTTP does not load
 * node:v8 (~2 ms); bin/run.js sets it before oclif, whose commands may import undici directly.
 */
export function useLiftoffOnly(): void {
  if (liftoffOnly) return;
  process.getBuiltinModule('node:v8').setFlagsFromString('--liftoff-only');
  liftoffOnly = true;
}

/**
 * The built-in transport packages. A command that names a built-in transport imports only that
 * package: the others (and the plugins) cost start-up time and are not needed to parse the name.
 * This module imports none of them, so the fast path can ask it which names are built in.
 */
export const builtinTransportPackages: readonly BuiltinTransportPackage[] = [
  { package: '@img/transport-dir', transports: ['dir'], load: () => import('@img/transport-dir') },
  {
    package: '@img/transport-oci',
    transports: ['oci', 'oci-archive'],
    load: () => import('@img/transport-oci'),
  },
  {
    package: '@img/transport-docker',
    transports: ['docker'],
    load: () => {
      useLiftoffOnly();
      return import('@img/transport-docker');
    },
  },
  {
    package: '@img/transport-daemon',
    transports: ['docker-daemon', 'docker-archive'],
    load: () => {
      useLiftoffOnly();
      return import('@img/transport-daemon');
    },
  },
  {
    package: '@img/transport-storage',
    transports: ['containers-storage'],
    load: () => import('@img/transport-storage'),
  },
];

/** The built-in package that provides the transport `name`, or undefined for any other name. */
export function builtinTransportPackage(name: string): BuiltinTransportPackage | undefined {
  return builtinTransportPackages.find((b) => b.transports.includes(name));
}

/**
 * The transport an image name (`transport:reference`) names, when a built-in package provides it:
 * the text before the first colon, as parseImageName splits it.
 */
export function builtinTransportOf(imageName: string): string | undefined {
  const colon = imageName.indexOf(':');
  if (colon <= 0) return undefined;
  const name = imageName.slice(0, colon);
  return builtinTransportPackage(name) ? name : undefined;
}
