#!/usr/bin/env node
// bin/img kept NODE_EXTRA_CA_CERTS from Node's start-up: @img/transport-docker reads the file at the
// first TLS connection (registry/extra-ca.ts); the programs img runs get the variable as it was.
const deferredCa = process.env.IMG_DEFERRED_NODE_EXTRA_CA_CERTS;
if (deferredCa !== undefined) {
  delete process.env.IMG_DEFERRED_NODE_EXTRA_CA_CERTS;
  process.env.NODE_EXTRA_CA_CERTS = deferredCa;
  globalThis[Symbol.for('img.deferredExtraCaCerts')] = deferredCa;
}

// bin/img's malloc settings are for this process, not for the programs it runs.
if (
  process.env.GLIBC_TUNABLES === 'glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=16777216'
) {
  delete process.env.GLIBC_TUNABLES;
}

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
  // Before any command imports undici (builtin-transports.ts says why); the fast path sets it only
  // when it loads a transport that uses undici.
  fast.useLiftoffOnly();
  const { execute } = await import('@oclif/core');
  await execute({ args, dir: import.meta.url });
}
