#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';

// undici parses HTTP with WebAssembly; V8's optimising recompile of it costs ~35 MiB of peak memory
// and ~0.2 s of CPU in a short-lived command, for no measurable gain on blob transfers (bodies pass
// through the parser as spans). Set before any transport (and so undici) is imported.
setFlagsFromString('--liftoff-only');

// The fast path (src/fast-path/, bundled into dist/fast/): loading oclif costs more than a copy of
// an image the destination already holds, so the commands it knows run without it whenever it is
// certain to do what oclif would. It imports no transport before it decides.
const fast = await import('../dist/fast/main.js');

// skopeo users put global flags before the command (`img --debug copy a b`); oclif parses them after it.
// process.argv too: oclif reads it again to pick the help it shows after a usage error.
// Go's `--tls-verify=false` too, which oclif's boolean flags do not take.
const args = fast.hoistGlobalFlags(fast.normalizeBooleanValues(process.argv.slice(2)));
process.argv.splice(2, Infinity, ...args);
if (!(await fast.runFastPath(args))) {
  const { execute } = await import('@oclif/core');
  await execute({ args, dir: import.meta.url });
}
