import { type CopyRunArgs, type CopyRunFlags, runCopy } from '../copy-run.js';
import type { FastCommandRunner } from './commands.js';
import { runInSession } from './run-in-session.js';

/** `img copy` on the fast path: runCopy, with the flags the fast parser read from the copy spec. */
export const runCopyCommand: FastCommandRunner = (flags, args, names) => {
  const copyFlags = flags as CopyRunFlags;
  const copyArgs: CopyRunArgs = { source: args.source!, destination: args.destination! };
  return runInSession(copyFlags, names, (session) => runCopy(session, copyFlags, copyArgs));
};
