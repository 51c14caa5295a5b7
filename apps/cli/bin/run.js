#!/usr/bin/env node
import { execute } from '@oclif/core';
import { hoistGlobalFlags } from '../dist/argv.js';

// skopeo users put global flags before the command (`img --debug copy a b`); oclif parses them after it.
await execute({ args: hoistGlobalFlags(process.argv.slice(2)), dir: import.meta.url });
