#!/usr/bin/env node
import { execute } from '@oclif/core';
import { hoistGlobalFlags, normalizeBooleanValues } from '../dist/argv.js';

// skopeo users put global flags before the command (`img --debug copy a b`); oclif parses them after it.
// process.argv too: oclif reads it again to pick the help it shows after a usage error.
// Go's `--tls-verify=false` too, which oclif's boolean flags do not take.
const args = hoistGlobalFlags(normalizeBooleanValues(process.argv.slice(2)));
process.argv.splice(2, Infinity, ...args);
await execute({ args, dir: import.meta.url });
