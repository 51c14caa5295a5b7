import { hoistGlobalFlags, normalizeBooleanValues } from '../argv.js';
import { builtinTransportOf, builtinTransportPackage, useLiftoffOnly } from '../builtin-transports.js';
import { builtManifest } from './built-manifest.js';
import { fastCommands } from './commands.js';
import {
  type EligibilityProbe,
  environmentBlocker,
  oclifDataDir,
  userPluginsBlocker,
} from './eligibility.js';
import { type Environment, parseFast } from './parse.js';
import type { FastPathManifest } from './spec.js';

// The entry of the fast path's bundle (dist/fast/main.js), which bin/run.js imports first. It
// decides from argv and the environment whether it can run the command exactly as oclif would,
// without loading oclif (~0.2 s of start-up); the work itself is in chunks loaded after the decision.
// Nothing here or in what it imports may import @oclif/core (fast-path/bundle.test.ts checks it).

export { builtManifest, hoistGlobalFlags, normalizeBooleanValues, useLiftoffOnly };

/** A command line the fast path takes: what it parsed, and how to run it. */
export interface FastPathPlan {
  commandId: string;
  flags: Record<string, unknown>;
  args: Record<string, string>;
  /**
   * Loads the command's code, and starts loading its images' transports; rejects, before anything
   * has run, when the bundle cannot load it. What it returns runs the command and sets
   * process.exitCode.
   */
  load: () => Promise<() => Promise<void>>;
}

/**
 * Whether the fast path takes this command line (`args`: bin/run.js's normalised argv, command
 * first), and if not, why. It takes it only when certain that oclif would do the same: the command
 * is one of fastCommands and was built with a spec; no help or version is asked for; no environment
 * setting changes oclif's behaviour (see environmentBlocker); the flags parse exactly as oclif
 * parses them (parseFast), without --debug (its stacks name the bundle's files); every image names
 * a built-in transport; and no plugin is installed or linked. Reads only the environment and the
 * plugin list; starts nothing.
 */
export function planFastPath(
  args: readonly string[],
  env: Environment,
  manifest: FastPathManifest | undefined,
  probe: EligibilityProbe = {},
): FastPathPlan | { declined: string } {
  if (!manifest) return { declined: 'the fast path was not built' };
  const [commandId, ...rest] = args;
  const command = commandId === undefined ? undefined : fastCommands[commandId];
  const spec = commandId === undefined ? undefined : manifest.commands[commandId];
  if (commandId === undefined || !command || !spec) return { declined: 'not a fast command' };
  if (rest.some((arg) => manifest.helpFlags.includes(arg))) return { declined: 'help is asked for' };
  const blocked = environmentBlocker(env, manifest.bin, probe);
  if (blocked) return { declined: blocked };
  const parsed = parseFast(spec, rest, env);
  if (!parsed) return { declined: 'the command line is not certain to parse as oclif parses it' };
  if (parsed.flags.debug) return { declined: '--debug is given' };
  const transports: string[] = [];
  for (const name of command.imageArgs) {
    const transport = builtinTransportOf(parsed.args[name] ?? '');
    if (transport === undefined) return { declined: `${name} does not name a built-in transport` };
    transports.push(transport);
  }
  const plugins = userPluginsBlocker(oclifDataDir(env, manifest, probe), probe);
  if (plugins) return { declined: plugins };
  const { flags } = parsed;
  const packages = new Set(transports.map((name) => builtinTransportPackage(name)!));
  return {
    commandId,
    flags,
    args: parsed.args,
    load: async () => {
      // The command's chunk and the transport packages its images need are read and compiled at
      // once rather than one after the other. A package that fails here fails again, with its
      // warning, where the command loads it.
      const [runner] = await Promise.all([
        command.load(),
        ...[...packages].map((p) => p.load().catch(() => undefined)),
      ]);
      return () => runner(flags, parsed.args, { bin: manifest.bin, commandId });
    },
  };
}

/**
 * Runs the command line on the fast path when planFastPath takes it, and says whether it did; when
 * it did not, nothing has happened and the caller runs oclif.
 *
 * @example
 * if (!(await runFastPath(args))) await execute({ args, dir: import.meta.url });
 */
export async function runFastPath(args: readonly string[], env: Environment = process.env): Promise<boolean> {
  let plan: ReturnType<typeof planFastPath>;
  try {
    plan = planFastPath(args, env, builtManifest);
  } catch {
    // Deciding never fails the command: oclif runs it.
    return false;
  }
  if ('declined' in plan) return false;
  let run: () => Promise<void>;
  try {
    run = await plan.load();
  } catch {
    // The bundle is broken (a chunk is missing): nothing has run, so oclif can still run the command.
    return false;
  }
  await run();
  return true;
}
