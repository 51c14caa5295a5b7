#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';
import { execute } from '@oclif/core';
import { hoistGlobalFlags, normalizeBooleanValues } from '../dist/argv.js';

// undici parses HTTP with WebAssembly; V8's optimising recompile of it costs ~35 MiB of peak memory
// and ~0.2 s of CPU in a short-lived command, for no measurable gain on blob transfers (bodies pass
// through the parser as spans). Set before any transport (and so undici) is imported.
setFlagsFromString('--liftoff-only');

// skopeo users put global flags before the command (`img --debug copy a b`); oclif parses them after it.
// process.argv too: oclif reads it again to pick the help it shows after a usage error.
// Go's `--tls-verify=false` too, which oclif's boolean flags do not take.
const args = hoistGlobalFlags(normalizeBooleanValues(process.argv.slice(2)));
process.argv.splice(2, Infinity, ...args);
await execute({ args, dir: import.meta.url });
