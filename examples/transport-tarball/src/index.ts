import * as core from '@img/core';
import { createTarballTransport } from './transport.js';

export type { TarballCore } from './core.js';
export { isTarHeader, layerMediaType } from './layer.js';
export type { TarballOptions, TarballReference, TarballTransport } from './transport.js';
export { createTarballTransport } from './transport.js';

/**
 * The `tarball:` transport on the caller's @img/core. Importing the package registers it, so
 * `parseImageName('tarball:/tmp/rootfs.tar.gz')` works, as with the built-in transport packages.
 */
export const tarballTransport = createTarballTransport(core);

core.registerTransport(tarballTransport);
