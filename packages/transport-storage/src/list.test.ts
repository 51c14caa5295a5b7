import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copyImage, insecureAcceptAnythingPolicy, PolicyContext } from '@img/core';
import { MemoryStore, randomIndex, readImage } from '@img/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bigDataFileName, type ImageRecord } from './store.js';
import { type TempStore, tempStore } from './test-fixtures.js';

const policy = new PolicyContext(insecureAcceptAnythingPolicy);

describe('containers-storage keeps the list an image came from', () => {
  let store: TempStore;
  const memory = new MemoryStore('mem-list');

  beforeAll(async () => {
    store = await tempStore('vfs');
  });
  afterAll(() => store.cleanup());

  const images = async () =>
    JSON.parse(await readFile(join(store.graphRoot, 'vfs-images', 'images.json'), 'utf8')) as ImageRecord[];

  it('stores a one-instance list copied with --all as manifest-<list digest> beside the image', async () => {
    const index = await randomIndex(['linux/amd64'], { seed: 5 });
    const result = await copyImage(store.ref('localhost/listed:v1'), memory.add('one', index as never), {
      policy,
      imageListSelection: 'all',
    });
    expect(result.manifestDigest).toBe(index.manifestDigest);
    const [record] = await images();
    const instance = index.images[0]!;
    expect(record!.id).toBe(instance.configDigest.slice(7));
    expect(record!.digest).toBe(instance.manifestDigest);
    expect(record!['big-data-digests']).toMatchObject({
      [`manifest-${index.manifestDigest}`]: index.manifestDigest,
      [`manifest-${instance.manifestDigest}`]: instance.manifestDigest,
      manifest: instance.manifestDigest,
    });
    const stored = await readFile(
      join(store.graphRoot, 'vfs-images', record!.id, bigDataFileName(`manifest-${index.manifestDigest}`)),
    );
    expect(Buffer.compare(stored, index.manifest)).toBe(0);
    // podman finds the image by the list's digest too.
    const listed = JSON.parse(await store.podman('images', '--format', 'json')) as Array<{
      RepoDigests: string[];
    }>;
    expect(listed[0]!.RepoDigests).toContain(`localhost/listed@${index.manifestDigest}`);
    // img reads the list back through name@list-digest, and the instance under its digest.
    const src = await store.ref(`localhost/listed@${index.manifestDigest}`).newImageSource({});
    try {
      expect(Buffer.compare(Buffer.from((await src.getManifest()).bytes), index.manifest)).toBe(0);
      const inst = await src.getManifest(instance.manifestDigest);
      expect(Buffer.compare(Buffer.from(inst.bytes), instance.manifest)).toBe(0);
    } finally {
      await src.close();
    }
    const back = await readImage(store.ref('localhost/listed:v1'));
    expect(back.manifestDigest).toBe(instance.manifestDigest);
  });

  it('answers a repeated --all copy from the list alone, reading no blob', async () => {
    const index = await randomIndex(['linux/amd64'], { seed: 5 });
    const src = memory.add('again', index as never);
    const before = await readFile(join(store.graphRoot, 'vfs-images', 'images.json'), 'utf8');
    memory.resetCounters();
    const again = await copyImage(store.ref('localhost/listed:v1'), src, {
      policy,
      imageListSelection: 'all',
    });
    expect(again.alreadyPresent).toBe(true);
    expect(memory.counters.getBlob).toBe(0);
    expect(await readFile(join(store.graphRoot, 'vfs-images', 'images.json'), 'utf8')).toBe(before);
  });

  it('refuses --all of a list with several instances in one line', async () => {
    const index = await randomIndex(['linux/amd64', 'linux/arm64/v8'], { seed: 6 });
    const copy = copyImage(store.ref('localhost/many:v1'), memory.add('many', index as never), {
      policy,
      imageListSelection: 'all',
    });
    await expect(copy).rejects.toThrow(/stores one image; the list has several instances/);
    expect((await images()).flatMap((i) => i.names ?? [])).not.toContain('localhost/many:v1');
  });
});
