import type { Transport } from '@img/core';

/**
 * What a transport plugin's `img:transports` hook receives: the transport contract version this
 * img implements, so a hook may refuse to run against one it does not know.
 */
export interface TransportsHookOptions {
  apiVersion: number;
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
