/** Runs a fast command whose command line parsed: sets process.exitCode, never throws. */
export type FastCommandRunner = (
  flags: Record<string, unknown>,
  args: Record<string, string>,
  names: { bin: string; commandId: string },
) => Promise<void>;

/** A command the fast path can take, besides its flag spec (which the build generates). */
export interface FastCommand {
  /** The arguments that name images: each must name a built-in transport, or oclif takes the command. */
  imageArgs: readonly string[];
  /** Loads the runner: a separate chunk of the bundle, so that deciding loads none of the work. */
  load: () => Promise<FastCommandRunner>;
}

/**
 * The commands the fast path takes. To add one: move its work into an oclif-free function that its
 * oclif command also calls (as copy-run.ts for copy), add a runner `run-<id>.ts` next to
 * run-copy.ts, list it here. The build makes each runner an entry of the bundle and generates the
 * command's flag spec from its class (scripts/build-fast-path.mjs).
 */
export const fastCommands: Readonly<Record<string, FastCommand>> = {
  copy: {
    imageArgs: ['source', 'destination'],
    load: async () => (await import('./run-copy.js')).runCopyCommand,
  },
};
