import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sandbox } from './helpers/cli.js';
import { writeOciImage } from './helpers/images.js';

interface Event {
  type: string;
  digest?: string;
  how?: string;
  substitute?: string;
  bytes?: number;
  bytesMoved?: number;
  imageSize?: number;
}

function events(stdout: string): Event[] {
  return stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Event);
}

const blobFile = (layout: string, digest: string) =>
  join(layout, 'blobs/sha256', digest.slice('sha256:'.length));

/** Moves files out of the way for the duration of `body`: a copy that read any of them fails. */
async function withHidden(box: Sandbox, files: string[], body: () => Promise<void>): Promise<void> {
  const hidden = box.path(`hidden-${Math.random().toString(36).slice(2)}`);
  await mkdir(hidden, { recursive: true });
  for (const [i, p] of files.entries()) await rename(p, join(hidden, String(i)));
  try {
    await body();
  } finally {
    for (const [i, p] of files.entries()) await rename(join(hidden, String(i)), p);
    await rm(hidden, { recursive: true, force: true });
  }
}

describe('the blob-info cache across img processes, local layouts', () => {
  let box: Sandbox;
  /** An OCI layout whose layers are uncompressed (as buildah writes them with --disable-compression). */
  let plain: string;
  let plainLayers: string[];
  let plainSize: number;
  let plainLayerBytes: number;
  beforeAll(async () => {
    box = await Sandbox.create();
    plain = box.path('plain');
    const image = await writeOciImage(plain, 'base', {
      seed: 51,
      layers: 3,
      layerSize: 150_000,
      compressed: false,
    });
    plainLayers = image.layers.map((l) => l.digest);
    plainSize = [...image.blobs.values()].reduce((n, b) => n + b.length, 0);
    plainLayerBytes = image.layers.reduce((n, l) => n + l.bytes.length, 0);
    // The same seed with one more layer: the first three layers are the base's.
    await writeOciImage(plain, 'derived', { seed: 51, layers: 4, layerSize: 150_000, compressed: false });
  });
  afterAll(() => box.cleanup());

  const copy = (...args: string[]) => box.img('--insecure-policy', 'copy', '--progress=json', ...args);

  it('moves 0 bytes on the second copy of an uncompressed image into oci:, reusing the gzip variants', async () => {
    const dest = box.path('dest-oci');
    const first = await copy(`oci:${plain}:base`, `oci:${dest}:v1`);
    expect(first.code, first.stderr).toBe(0);
    expect(events(first.stdout).find((e) => e.type === 'done')?.bytesMoved).toBe(plainSize);
    const filesAfterFirst = (await readdir(join(dest, 'blobs/sha256'))).sort();
    const index = await readFile(join(dest, 'index.json'), 'utf8');

    await withHidden(
      box,
      plainLayers.map((d) => blobFile(plain, d)),
      async () => {
        const second = await copy(`oci:${plain}:base`, `oci:${dest}:v1`);
        expect(second.code, second.stderr).toBe(0);
        const evs = events(second.stdout);
        expect(evs.filter((e) => e.type === 'blob-done')).toEqual([]);
        expect(evs.find((e) => e.type === 'done')?.bytesMoved).toBe(0);
        const reused = evs.filter((e) => e.type === 'blob-reused');
        // Layers are reused concurrently: the events come in the order the checks finish.
        expect(
          reused
            .filter((e) => e.how === 'substituted')
            .map((e) => e.digest)
            .sort(),
        ).toEqual([...plainLayers].sort());
      },
    );
    // Nothing new was written: the same blob files and the same manifest in index.json.
    expect((await readdir(join(dest, 'blobs/sha256'))).sort()).toEqual(filesAfterFirst);
    expect(await readFile(join(dest, 'index.json'), 'utf8')).toBe(index);
  });

  it('uploads only the new layer of an image whose base layers the oci: layout already has', async () => {
    const dest = box.path('dest-oci-partial');
    const base = await copy(`oci:${plain}:base`, `oci:${dest}:base`);
    expect(base.code, base.stderr).toBe(0);
    const derived = await copy(`oci:${plain}:derived`, `oci:${dest}:derived`);
    expect(derived.code, derived.stderr).toBe(0);
    const evs = events(derived.stdout);
    const copied = evs.filter((e) => e.type === 'blob-done');
    // The new (fourth) layer and the new config; the three base layers are found compressed.
    expect(copied).toHaveLength(2);
    expect(copied.map((e) => e.digest)).not.toContain(plainLayers[0]);
    expect(evs.filter((e) => e.type === 'blob-reused' && e.how === 'substituted')).toHaveLength(3);
    const done = evs.find((e) => e.type === 'done')!;
    expect(done.bytesMoved).toBe(copied.reduce((n, e) => n + e.bytes!, 0));
    expect(done.bytesMoved).toBeLessThan(done.imageSize! / 3);
  });

  it('moves 0 bytes on the second copy into dir:, even for an uncompressed source', async () => {
    const dest = box.path('dest-dir');
    const first = await copy(`oci:${plain}:base`, `dir:${dest}`);
    expect(first.code, first.stderr).toBe(0);
    await withHidden(
      box,
      plainLayers.map((d) => blobFile(plain, d)),
      async () => {
        const second = await copy(`oci:${plain}:base`, `dir:${dest}`);
        expect(second.code, second.stderr).toBe(0);
        const evs = events(second.stdout);
        expect(evs.filter((e) => e.type === 'blob-done')).toEqual([]);
        expect(evs.find((e) => e.type === 'done')?.bytesMoved).toBe(0);
      },
    );
  });

  it('uploads only the new layer into a dir: that holds the base image', async () => {
    const dest = box.path('dest-dir-partial');
    expect((await copy(`oci:${plain}:base`, `dir:${dest}`)).code).toBe(0);
    const derived = await copy(`oci:${plain}:derived`, `dir:${dest}`);
    expect(derived.code, derived.stderr).toBe(0);
    const evs = events(derived.stdout);
    expect(evs.filter((e) => e.type === 'blob-done')).toHaveLength(2);
    expect(evs.filter((e) => e.type === 'blob-reused')).toHaveLength(3);
  });

  it('keeps its cache in the directory given, and without the cache the layers are compressed again', async () => {
    const dest = box.path('dest-oci-nocache');
    const cacheDir = box.path('own-cache');
    const first = await copy('--blob-cache-dir', cacheDir, `oci:${plain}:base`, `oci:${dest}:v1`);
    expect(first.code, first.stderr).toBe(0);
    expect(existsSync(join(cacheDir, 'img-blob-info-cache-v1.sqlite'))).toBe(true);
    // A fresh cache knows no gzip variant: every layer is read and compressed again (the config is present).
    const second = await copy(
      '--blob-cache-dir',
      box.path('empty-cache'),
      `oci:${plain}:base`,
      `oci:${dest}:v1`,
    );
    expect(second.code, second.stderr).toBe(0);
    expect(events(second.stdout).find((e) => e.type === 'done')?.bytesMoved).toBe(plainLayerBytes);
    // The first cache still knows them.
    const third = await copy('--blob-cache-dir', cacheDir, `oci:${plain}:base`, `oci:${dest}:v1`);
    expect(events(third.stdout).find((e) => e.type === 'done')?.bytesMoved).toBe(0);
  });

  it('moves a corrupt cache file aside with one warning line, and the copy succeeds', async () => {
    const cacheDir = box.path('corrupt-cache');
    await mkdir(cacheDir, { recursive: true });
    await writeFile(join(cacheDir, 'img-blob-info-cache-v1.sqlite'), 'not a database '.repeat(500));
    const result = await copy(
      '--blob-cache-dir',
      cacheDir,
      `oci:${plain}:base`,
      `oci:${box.path('dest-corrupt')}:v1`,
    );
    expect(result.code, result.stderr).toBe(0);
    const warnings = result.stderr.split('\n').filter((l) => l.startsWith('Warning:'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/blob-info cache .* moved it to .*\.corrupt-/);
    expect((await readdir(cacheDir)).some((n) => n.includes('.corrupt-'))).toBe(true);
  });
});
