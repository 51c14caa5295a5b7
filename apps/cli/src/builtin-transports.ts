/** A transport package img depends on, and the transports it registers when imported. */
export interface BuiltinTransportPackage {
  package: string;
  transports: readonly string[];
  load: () => Promise<unknown>;
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
