// Builds a small sample image into an OCI layout, copies it to dir: and back with the img CLI,
// then copies it again to show that a copy into a destination that has the image moves nothing.
import { execFileSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { copyImage, insecureAcceptAnythingPolicy, PolicyContext } from '@img/core';
import { MemoryStore, randomImage } from '@img/testing';
import { newOciReference } from '@img/transport-oci';

const root = fileURLToPath(new URL('..', import.meta.url));
const work = process.argv[2] ?? (await mkdtemp(join(tmpdir(), 'img-demo-')));
const layout = join(work, 'layout');
const dir = join(work, 'dir');
const back = join(work, 'layout-back');

const sample = await randomImage({
  seed: 42,
  layers: 3,
  layerSize: 2 << 20,
  labels: { 'org.example.demo': 'img' },
});
const store = new MemoryStore('sample');
await copyImage(newOciReference(layout, 'demo'), store.add('demo', sample), {
  policy: new PolicyContext(insecureAcceptAnythingPolicy),
});

function img(...args) {
  console.log(`\n$ img ${args.join(' ')}`);
  execFileSync(process.execPath, [join(root, 'apps/cli/bin/run.js'), ...args], { stdio: 'inherit' });
}

console.log(`sample image written to oci:${layout}:demo`);
img('--insecure-policy', 'copy', '--progress=lines', `oci:${layout}:demo`, `dir:${dir}`);
img('--insecure-policy', 'copy', '--progress=lines', `dir:${dir}`, `oci:${back}:demo`);
img('--insecure-policy', 'copy', '--progress=lines', `oci:${layout}:demo`, `dir:${dir}`);
img('inspect', '--format', '{{.Digest}} {{.Labels}}', `oci:${back}:demo`);
console.log(`\nThe last copy found the image already at dir:${dir} and moved no blob.`);
