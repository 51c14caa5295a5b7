#!/usr/bin/env -S node --import tsx
import { execute } from '@oclif/core';
import { register } from 'tsx/esm/api';

// Also works as `node bin/dev.js`, without the --import above: the sources below are TypeScript.
register();
const { hoistGlobalFlags, normalizeBooleanValues } = await import('../src/argv.ts');
// process.argv too: oclif reads it again to pick the help it shows after a usage error.
const args = hoistGlobalFlags(normalizeBooleanValues(process.argv.slice(2)));
process.argv.splice(2, Infinity, ...args);
await execute({ args, development: true, dir: import.meta.url });
