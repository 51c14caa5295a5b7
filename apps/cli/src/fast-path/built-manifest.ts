import type { FastPathManifest } from './spec.js';

/**
 * The manifest of the fast path: the build (scripts/build-fast-path.mjs) replaces this module in the
 * bundle with one that exports the manifest it generated from the oclif commands. Unbundled (tsc's
 * output, the tests) there is none, and the fast path takes no command.
 */
export const builtManifest: FastPathManifest | undefined = undefined;
