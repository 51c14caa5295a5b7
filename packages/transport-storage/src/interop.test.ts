import { lstat, mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { copyImage, insecureAcceptAnythingPolicy, PolicyContext } from '@img/core';
import { MemoryStore, readImage } from '@img/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lgetxattr } from './native.js';
import {
  type BuiltImage,
  richImage,
  skopeo,
  type TempStore,
  tempStore,
  writeOciLayout,
} from './test-fixtures.js';

const policy = new PolicyContext(insecureAcceptAnythingPolicy);

describe.each(['vfs', 'overlay'] as const)('containers-storage (%s) with podman and skopeo', (driver) => {
  let store: TempStore;
  let work: string;
  let image: BuiltImage;
  const memory = new MemoryStore('mem-storage');

  beforeAll(async () => {
    store = await tempStore(driver);
    work = await mkdtemp('/tmp/isw-');
    image = await richImage(work);
  });
  afterAll(async () => {
    await store.cleanup();
    await rm(work, { recursive: true, force: true });
  });

  it('writes an image that podman lists and inspects with the same ID, digest and layers', async () => {
    const ref = store.ref('localhost/rich:v1');
    const result = await copyImage(ref, memory.add('rich', image as never), { policy });
    expect(result.manifestDigest).toBe(image.manifestDigest);
    const listed = JSON.parse(await store.podman('images', '--format', 'json')) as Array<{
      Id: string;
      Names: string[];
      Digest: string;
    }>;
    expect(listed).toHaveLength(1);
    expect(listed[0]!.Id).toBe(image.configDigest.slice(7));
    expect(listed[0]!.Names).toEqual(['localhost/rich:v1']);
    expect(listed[0]!.Digest).toBe(image.manifestDigest);
    const [inspect] = JSON.parse(await store.podman('image', 'inspect', 'localhost/rich:v1')) as Array<{
      RootFS: { Layers: string[] };
      Size: number;
    }>;
    expect(inspect!.RootFS.Layers).toEqual(image.layers.map((l) => l.diffID));
  });

  it('keeps owners, modes, devices, links, xattrs and non-UTF-8 names on disk', async () => {
    const mount = (await store.podman('image', 'mount', 'localhost/rich:v1')).trim();
    try {
      const d = join(mount, 'data');
      expect(await readFile(join(d, 'hello.txt'), 'utf8')).toBe('hello\n');
      expect((await lstat(join(d, 'hardlink'))).nlink).toBe(2);
      expect(await readlink(join(d, 'link'))).toBe('hello.txt');
      const owned = await lstat(join(d, 'owned'));
      expect([owned.uid, owned.gid]).toEqual([1234, 5678]);
      const dev = await lstat(join(d, 'nulldev'));
      expect(dev.isCharacterDevice()).toBe(true);
      expect(dev.rdev).toBe(259);
      expect((await lstat(join(d, 'fifo'))).isFIFO()).toBe(true);
      expect(String(lgetxattr(Buffer.from(join(d, 'xattr')), 'user.test'))).toBe('hello');
      expect(await readFile(Buffer.from(`${d}/caf\xe9`, 'latin1'), 'utf8')).toBe('café');
      expect((await lstat(join(mount, 'etc', 'app.conf'))).mode & 0o7777).toBe(0o4755);
      // The whiteout removed "empty"; the opaque directory hides the base layer's sub/ files.
      await expect(lstat(join(d, 'empty'))).rejects.toThrow();
      await expect(lstat(join(d, 'sub', 'big.txt'))).rejects.toThrow();
      expect(await readFile(join(d, 'sub', 'new.txt'), 'utf8')).toBe('new');
    } finally {
      await store.podman('image', 'unmount', 'localhost/rich:v1');
    }
  });

  it('writes layers skopeo exports with the recorded diff digests', async () => {
    const out = join(work, `export-${driver}`);
    await skopeo('copy', `containers-storage:${store.spec}localhost/rich:v1`, `oci:${out}:x`);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8'));
    const manifest = JSON.parse(
      await readFile(join(out, 'blobs', 'sha256', index.manifests[0].digest.slice(7)), 'utf8'),
    );
    const config = JSON.parse(
      await readFile(join(out, 'blobs', 'sha256', manifest.config.digest.slice(7)), 'utf8'),
    );
    expect(config.rootfs.diff_ids).toEqual(image.layers.map((l) => l.diffID));
  });

  it('reads back, byte for byte, what it wrote', async () => {
    const back = await readImage(store.ref('localhost/rich:v1'));
    expect(back.manifestDigest).toBe(image.manifestDigest);
    expect(back.layers.map((l) => l.digest)).toEqual(image.layers.map((l) => l.digest));
  });

  it('reads an image skopeo wrote, with equal digests', async () => {
    const layout = join(work, `layout-${driver}`);
    await writeOciLayout(layout, image, 'v2');
    await skopeo('copy', `oci:${layout}:v2`, `containers-storage:${store.spec}localhost/by-skopeo:v2`);
    const back = await readImage(store.ref('localhost/by-skopeo:v2'));
    expect(back.manifestDigest).toBe(image.manifestDigest);
    expect(back.configDigest).toBe(image.configDigest);
    expect(back.layers.map((l) => l.digest)).toEqual(image.layers.map((l) => l.digest));
  });

  it('moves and writes nothing when the image is copied again', async () => {
    const src = memory.add('again', image as never);
    const layersBefore = await readFile(join(store.graphRoot, `${driver}-layers`, 'layers.json'), 'utf8');
    memory.resetCounters();
    const again = await copyImage(store.ref('localhost/rich:v1'), src, { policy });
    expect(again.alreadyPresent).toBe(true);
    expect(memory.counters.getBlob).toBe(0);
    expect(await readFile(join(store.graphRoot, `${driver}-layers`, 'layers.json'), 'utf8')).toBe(
      layersBefore,
    );
    // Under a new name: every blob is reused and only the name is added.
    await copyImage(store.ref('localhost/other:v9'), src, { policy });
    expect(memory.counters.getBlob).toBe(0);
    const listed = JSON.parse(await store.podman('images', '--format', 'json')) as Array<{ Names: string[] }>;
    expect(listed[0]!.Names.sort()).toEqual([
      'localhost/by-skopeo:v2',
      'localhost/other:v9',
      'localhost/rich:v1',
    ]);
  });
});
