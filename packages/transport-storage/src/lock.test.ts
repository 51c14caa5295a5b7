import { spawn } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { copyImage, insecureAcceptAnythingPolicy, PolicyContext } from '@img/core';
import { MemoryStore, randomImage } from '@img/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { withLock } from './lock.js';
import { type TempStore, tempStore } from './test-fixtures.js';

const policy = new PolicyContext(insecureAcceptAnythingPolicy);

describe('locks shared with podman', () => {
  let store: TempStore | undefined;
  afterEach(async () => {
    await store?.cleanup();
    store = undefined;
  });

  it('holds podman off while img has layers.lock, and writes new last-writer tokens', async () => {
    store = await tempStore('vfs');
    const image = await randomImage({ seed: 3, layers: 2 });
    await copyImage(store.ref('localhost/locked:v1'), new MemoryStore('mem-lock').add('x', image), {
      policy,
    });
    const lockPath = join(store.graphRoot, 'vfs-layers', 'layers.lock');
    const imagesToken = await readFile(join(store.graphRoot, 'vfs-images', 'images.lock'));
    expect(imagesToken.length).toBe(64);
    expect(imagesToken.readUInt32LE(16)).toBe(process.pid);

    let podmanDone = 0;
    let released = 0;
    let listing: Promise<string> | undefined;
    await withLock(lockPath, true, async () => {
      listing = store!.podman('images', '--format', '{{.ID}}').then((out) => {
        podmanDone = Date.now();
        return out;
      });
      await new Promise((r) => setTimeout(r, 1500));
      released = Date.now();
      // Not finished while the lock is held.
      expect(podmanDone).toBe(0);
    });
    const out = await listing!;
    expect(out.trim()).toBe(image.configDigest.slice(7, 19));
    expect(podmanDone).toBeGreaterThanOrEqual(released);
  });

  it('leaves a store podman cleans up when img is killed in the middle of a layer', async () => {
    store = await tempStore('vfs');
    // .mts: the temp dir has no package.json saying "module", and the script uses import.
    const script = join(store.root, 'kill.mts');
    // A child that starts a layer from a stream that never ends, then waits to be killed.
    await writeFile(
      script,
      `import { Readable } from 'node:stream';
import { createLayer } from '${join(import.meta.dirname, 'layers.ts')}';
import { Store } from '${join(import.meta.dirname, 'store.ts')}';
const store = new Store({ driver: 'vfs', graphRoot: ${JSON.stringify(store.graphRoot)}, runRoot: ${JSON.stringify(store.runRoot)}, options: [], unsupported: undefined, configFile: undefined });
const endless = new Readable({ read() {} });
endless.push(Buffer.alloc(512 * 4));
void createLayer(store, endless, { parent: undefined });
`,
    );
    // Node itself with tsx's loader, not the tsx CLI: the CLI runs the script in a child process of
    // its own, which a SIGKILL of the CLI would leave running (and holding the store's locks).
    const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm')).href;
    const child = spawn(process.execPath, ['--import', tsxLoader, script], { stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', r));
    const layersJson = join(store.graphRoot, 'vfs-layers', 'layers.json');
    // tsx compiles the child on its first run: on a loaded machine that alone can take seconds.
    for (let i = 0; i < 400; i++) {
      const text = await readFile(layersJson, 'utf8').catch(() => '');
      if (text.includes('incomplete')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await readFile(layersJson, 'utf8')).toContain('"incomplete":true');
    child.kill('SIGKILL');
    await exited;
    expect(await store.podman('images', '--format', '{{.ID}}')).toBe('');
    expect(JSON.parse(await readFile(layersJson, 'utf8'))).toEqual([]);
    expect(await readdir(join(store.graphRoot, 'vfs', 'dir'))).toEqual([]);
  }, 60_000);
});
