import { lstat, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  copyImage,
  DigestMismatchError,
  ImgError,
  insecureAcceptAnythingPolicy,
  PolicyContext,
} from '@img/core';
import { MemoryStore, readImage } from '@img/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageFromTars, type TempStore, tempStore } from './test-fixtures.js';

const policy = new PolicyContext(insecureAcceptAnythingPolicy);

/** A raw ustar archive: tar-stream would clean the names these tests need as they are. */
function tar(
  entries: Array<{ name: string; type?: 'file' | 'symlink'; linkname?: string; body?: string }>,
): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100, 'latin1');
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124);
    h.write('00000000000\0', 136);
    h.write(e.type === 'symlink' ? '2' : '0', 156);
    if (e.linkname) h.write(e.linkname, 157, 100, 'latin1');
    h.write('ustar\0', 257);
    h.write('00', 263);
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

describe('bad layers', () => {
  let store: TempStore;
  const memory = new MemoryStore('mem-bad');
  beforeAll(async () => {
    store = await tempStore('vfs');
  });
  afterAll(async () => {
    await store.cleanup();
  });

  async function layerCount(): Promise<number> {
    try {
      return JSON.parse(await readFile(join(store.graphRoot, 'vfs-layers', 'layers.json'), 'utf8')).length;
    } catch {
      return 0;
    }
  }

  it.each([
    ['a ../ entry', [{ name: '../escape.txt', body: 'x' }]],
    ['an absolute entry', [{ name: '/abs.txt', body: 'x' }]],
    [
      'a symlink pointing above the root',
      [{ name: 'up', type: 'symlink' as const, linkname: '../../../../../tmp' }],
    ],
  ])('refuses %s and touches nothing outside the layer', async (_, entries) => {
    const image = imageFromTars([tar(entries)]);
    await expect(
      copyImage(store.ref('localhost/bad:v1'), memory.add('bad', image as never), { policy }),
    ).rejects.toSatisfy((e: unknown) => e instanceof ImgError);
    await expect(lstat(join(store.graphRoot, 'vfs', 'escape.txt'))).rejects.toThrow();
    await expect(lstat('/abs.txt')).rejects.toThrow();
    expect(await layerCount()).toBe(0);
    await expect(readImage(store.ref('localhost/bad:v1'))).rejects.toBeInstanceOf(ImgError);
  });

  it('resolves a symlinked directory inside the layer, as a chroot would', async () => {
    const image = imageFromTars([
      tar([
        { name: 'esc', type: 'symlink', linkname: '/' },
        { name: 'esc/inside.txt', body: 'kept' },
      ]),
    ]);
    await copyImage(store.ref('localhost/chroot:v1'), memory.add('chroot', image as never), { policy });
    const layer = image.layers[0]!.diffID.slice(7);
    expect(await readFile(join(store.graphRoot, 'vfs', 'dir', layer, 'inside.txt'), 'utf8')).toBe('kept');
    const back = await readImage(store.ref('localhost/chroot:v1'));
    expect(back.layers[0]!.digest).toBe(image.layers[0]!.digest);
  });

  it('fails a layer whose digest does not match and keeps no layer or image for it', async () => {
    const image = imageFromTars([
      tar([{ name: 'f.txt', body: 'one' }]),
      tar([{ name: 'g.txt', body: 'two' }]),
    ]);
    const before = await layerCount();
    const bad = Buffer.from(image.layers[1]!.bytes);
    bad[bad.length - 12]! ^= 0xff;
    image.blobs.set(image.layers[1]!.digest, bad);
    await expect(
      copyImage(store.ref('localhost/corrupt:v1'), memory.add('corrupt', image as never), { policy }),
    ).rejects.toBeInstanceOf(DigestMismatchError);
    // The first layer is complete and reusable; the failed one left nothing.
    expect(await layerCount()).toBe(before + 1);
    expect(await store.podman('images', '--format', '{{.Repository}}')).not.toContain('corrupt');
  });

  it("fails with cp's own line when the parent layer's directory cannot be copied, and keeps no layer for it", async () => {
    const base = tar([{ name: 'base.txt', body: 'base' }]);
    const one = imageFromTars([base]);
    await copyImage(store.ref('localhost/base:v1'), memory.add('base', one as never), { policy });
    const baseDir = join(store.graphRoot, 'vfs', 'dir', one.layers[0]!.diffID.slice(7));
    await rm(baseDir, { recursive: true });
    const before = await layerCount();
    const two = imageFromTars([base, tar([{ name: 'top.txt', body: 'top' }])]);
    const error = await copyImage(store.ref('localhost/top:v1'), memory.add('top', two as never), {
      policy,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImgError);
    expect((error as Error).message).toBe(
      `copying the parent layer failed: cp: cannot stat '${baseDir}': No such file or directory`,
    );
    expect(await layerCount()).toBe(before);
  });

  it('says so in one line when cp is not on PATH', async () => {
    const base = tar([{ name: 'base2.txt', body: 'base2' }]);
    await copyImage(store.ref('localhost/base2:v1'), memory.add('base2', imageFromTars([base]) as never), {
      policy,
    });
    const before = await layerCount();
    const two = imageFromTars([base, tar([{ name: 'top2.txt', body: 'top2' }])]);
    const path = process.env.PATH;
    process.env.PATH = join(store.graphRoot, 'no-such-bin');
    try {
      const error = await copyImage(store.ref('localhost/top2:v1'), memory.add('top2', two as never), {
        policy,
      }).catch((e: unknown) => e);
      expect((error as Error).message).toBe(
        'copying the parent layer failed: cp (GNU coreutils) was not found on PATH',
      );
    } finally {
      process.env.PATH = path;
    }
    expect(await layerCount()).toBe(before);
  });
});
