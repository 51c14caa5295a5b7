#!/usr/bin/env -S node --import tsx
import { execute } from '@oclif/core';
import { register } from 'tsx/esm/api';

// Also works as `node bin/dev.js`, without the --import above: the sources below are TypeScript.
register();
const { hoistGlobalFlags } = await import('../src/argv.ts');

await execute({ args: hoistGlobalFlags(process.argv.slice(2)), development: true, dir: import.meta.url });
