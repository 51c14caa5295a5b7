#!/usr/bin/env node
import { execute } from '@oclif/core';
import { hoistGlobalFlags } from '../dist/argv.js';

// skopeo users put global flags before the command (`img --debug copy a b`); oclif parses them after it.
// process.argv too: oclif reads it again to pick the help it shows after a usage error.
const args = hoistGlobalFlags(process.argv.slice(2));
process.argv.splice(2, Infinity, ...args);
await execute({ args, dir: import.meta.url });
