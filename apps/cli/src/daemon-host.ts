import type { SystemContext } from '@img/core';

/**
 * The context with `transportOptions['docker-daemon'].host` set, when a `--*daemon-host` flag gave
 * one (skopeo's `--src-daemon-host`, `--dest-daemon-host`, `inspect --daemon-host`); unchanged otherwise.
 */
export function withDaemonHost(ctx: SystemContext, host: string | undefined): SystemContext {
  if (host === undefined) return ctx;
  const current = (ctx.transportOptions?.['docker-daemon'] ?? {}) as Record<string, unknown>;
  return {
    ...ctx,
    transportOptions: { ...ctx.transportOptions, 'docker-daemon': { ...current, host } },
  };
}
