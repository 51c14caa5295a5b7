import type * as ImgCore from '@img/core';
import type { Transport } from '@img/core';

/**
 * What a transport plugin's `img:transports` hook receives (besides oclif's `config` and
 * `context`): the transport contract version this img implements, and this img's own @img/core.
 * A plugin builds its transports from `core` and imports @img/core for types only, so an installed
 * plugin never needs a copy of @img/core of its own (docs/plugins.md).
 */
export interface TransportsHookOptions {
  /** The transport contract version of `core` (`core.transportApiVersion`). */
  apiVersion: number;
  /** The @img/core module of the host: errors, digests, manifests, `registerTransport`, … */
  core: typeof ImgCore;
}

declare module '@oclif/core/hooks' {
  interface Hooks {
    /**
     * Run once by commands that parse image names: each plugin's hook returns the transports it
     * provides, and the host registers them (STYLE.md §8).
     */
    'img:transports': {
      options: TransportsHookOptions;
      return: readonly Transport[];
    };
  }
}
