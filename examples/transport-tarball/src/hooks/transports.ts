import type { Transport } from '@img/core';
import type { Hook } from '@oclif/core';
import type { TarballCore } from '../core.js';
import { createTarballTransport } from '../transport.js';

/** What img passes to `img:transports` hooks, as far as this plugin uses it. */
export interface TransportsHookOptions {
  /** The transport contract version of the host. */
  apiVersion?: number;
  /** The host's @img/core. */
  core?: TarballCore;
}

/**
 * img's `img:transports` hook: returns this plugin's transports, built on the @img/core that img
 * passes in, so that the installed plugin needs no @img/core of its own. Nothing here imports a
 * value from @img/core or @oclif/core.
 */
export default async function transports(
  this: Hook.Context | undefined,
  options: TransportsHookOptions,
): Promise<Transport[]> {
  if (!options.core) {
    throw new Error('this img passes no @img/core to its plugins; img-transport-tarball needs a newer img');
  }
  return [createTarballTransport(options.core)];
}
