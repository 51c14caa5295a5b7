import { InvalidReferenceError, TransportConflictError, UnknownTransportError } from './errors.js';
import type { ImageReference, Transport } from './types.js';

const registryKey = Symbol.for('img.transports.v1');

type Registry = Map<string, Transport>;

/** The registry is on globalThis so that every copy of @img/core (a plugin may bring its own) shares it. */
function registry(): Registry {
  const holder = globalThis as { [registryKey]?: Registry };
  holder[registryKey] ??= new Map();
  return holder[registryKey];
}

/**
 * Registers a transport under its name. Registering the same object again is a no-op; another object
 * under a taken name throws TransportConflictError.
 */
export function registerTransport(transport: Transport): void {
  const taken = registry().get(transport.name);
  if (taken === transport) return;
  if (taken) throw new TransportConflictError(transport.name);
  if (!/^[a-z0-9][a-z0-9-]*$/.test(transport.name)) {
    throw new InvalidReferenceError(
      transport.name,
      'a transport name is lower-case letters, digits and dashes',
    );
  }
  registry().set(transport.name, transport);
}

/** Removes a transport; for tests and for hosts that unload a plugin. */
export function unregisterTransport(name: string): void {
  registry().delete(name);
}

/** The registered transports, by name. */
export const transports = {
  get(name: string): Transport | undefined {
    return registry().get(name);
  },
  names(): string[] {
    return [...registry().keys()].sort();
  },
  list(): Transport[] {
    return transports.names().map((name) => registry().get(name)!);
  },
};

/**
 * Parses `transport:reference` (e.g. `docker://busybox`, `oci:/tmp/layout:v1`) with the registered
 * transports.
 *
 * @example
 * const ref = parseImageName('dir:/tmp/busybox');
 */
export function parseImageName(name: string): ImageReference {
  const colon = name.indexOf(':');
  const transportName = colon < 0 ? '' : name.slice(0, colon);
  const transport = transportName ? registry().get(transportName) : undefined;
  if (!transport) throw new UnknownTransportError(transportName, name, transports.names());
  return transport.parseReference(name.slice(colon + 1));
}
