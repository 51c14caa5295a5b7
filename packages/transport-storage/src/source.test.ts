import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import {
  type BlobInfo,
  computeDigest,
  copyImage,
  insecureAcceptAnythingPolicy,
  MediaTypes,
  PolicyContext,
} from '@img/core';
import { MemoryStore } from '@img/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageImageSource } from './source.js';
import {
  type BuiltImage,
  imageFromTars,
  skopeo,
  type TempStore,
  tempStore,
  writeOciLayout,
} from './test-fixtures.js';

const policy = new PolicyContext(insecureAcceptAnythingPolicy);

/** A tar of one regular file, built by hand so the test needs no tar tool. */
function tarOf(name: string, content: string): Buffer {
  const body = Buffer.from(content);
  const header = Buffer.alloc(512);
  header.write(name, 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\x0000', 257);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const pad = Buffer.alloc((512 - (body.length % 512)) % 512);
  return Buffer.concat([header, body, pad, Buffer.alloc(1024)]);
}

async function sha256Of(stream: Readable): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

describe('the storage source offers layers it cannot rebuild compressed as uncompressed tars', () => {
  let store: TempStore;
  let work: string;
  const tars = [tarOf('a.txt', 'alpha '.repeat(5000)), tarOf('b.txt', 'beta '.repeat(7000))];
  // Level 9 stands for a foreign gzip: zlib's defaults do not reproduce it.
  const foreign: BuiltImage = imageFromTars(tars, { kind: 'foreign' }, 9);
  const native: BuiltImage = imageFromTars(tars, { kind: 'native' });
  const memory = new MemoryStore('mem-source');

  beforeAll(async () => {
    store = await tempStore('vfs');
    work = await mkdtemp('/tmp/iss-');
    await copyImage(store.ref('localhost/foreign:v1'), memory.add('foreign', foreign as never), { policy });
    await copyImage(store.ref('localhost/native:v1'), memory.add('native', native as never), { policy });
  });
  afterAll(async () => {
    await store.cleanup();
    await rm(work, { recursive: true, force: true });
  });

  it('lists each compressed layer by its diff digest, uncompressed size and the tar media type', async () => {
    const src = await StorageImageSource.open(store.ref('localhost/foreign:v1'), {});
    try {
      expect(await src.layerInfosForCopy()).toEqual(
        tars.map((t) => ({ digest: computeDigest(t), size: t.length, mediaType: MediaTypes.ociLayer })),
      );
    } finally {
      await src.close();
    }
  });

  it('serves a diff digest as the exact uncompressed layer', async () => {
    const src = await StorageImageSource.open(store.ref('localhost/foreign:v1'), {});
    const infos = (await src.layerInfosForCopy()) as BlobInfo[];
    for (const [i, info] of infos.entries()) {
      const blob = await src.getBlob(info);
      expect(blob.size).toBe(tars[i]!.length);
      const chunks: Buffer[] = [];
      for await (const c of blob.stream) chunks.push(c as Buffer);
      expect(Buffer.compare(Buffer.concat(chunks), tars[i]!)).toBe(0);
    }
  });

  it('cannot rebuild the foreign gzip blob, and still rebuilds a zlib-made one byte for byte', async () => {
    const foreignSrc = await StorageImageSource.open(store.ref('localhost/foreign:v1'), {});
    const layer = foreign.layers[0]!;
    const got = await sha256Of((await foreignSrc.getBlob({ digest: layer.digest, size: -1 })).stream);
    expect(got.digest).not.toBe(layer.digest);

    const nativeSrc = await StorageImageSource.open(store.ref('localhost/native:v1'), {});
    for (const l of native.layers) {
      const blob = await nativeSrc.getBlob({ digest: l.digest, size: l.bytes.length });
      // The layers are shared with the foreign image (same IDs), whose record keeps its own compressed
      // digest: the size of this blob is then unknown, its bytes still exact.
      expect([l.bytes.length, -1]).toContain(blob.size);
      expect(await sha256Of(blob.stream)).toEqual({ digest: l.digest, size: l.bytes.length });
    }
  });

  it('uses Docker’s tar media type for a Docker manifest', async () => {
    // skopeo converts to schema 2 on the way in, gzip by Go: the layers are podman-made here.
    const layout = join(work, 'layout');
    await writeOciLayout(layout, foreign, 'v1');
    await skopeo(
      'copy',
      '--format',
      'v2s2',
      `oci:${layout}:v1`,
      `containers-storage:${store.spec}localhost/docker:v1`,
    );
    const src = await StorageImageSource.open(store.ref('localhost/docker:v1'), {});
    const manifest = JSON.parse(Buffer.from((await src.getManifest()).bytes).toString('utf8'));
    expect(manifest.mediaType).toBe(MediaTypes.dockerV2Schema2);
    const infos = (await src.layerInfosForCopy()) as BlobInfo[];
    expect(infos.map((i) => i.mediaType)).toEqual([MediaTypes.dockerLayer, MediaTypes.dockerLayer]);
    expect(infos.map((i) => i.digest)).toEqual(foreign.layers.map((l) => l.diffID));
    const back = await sha256Of((await src.getBlob(infos[1]!)).stream);
    expect(back).toEqual({ digest: foreign.layers[1]!.diffID, size: tars[1]!.length });
  });

  it('reads a layer Go’s gzip compressed (skopeo wrote it) through its diff digest', async () => {
    // An uncompressed layout, then skopeo's own gzip on the way to a second layout, then into the store.
    const plain = join(work, 'plain');
    const gz = join(work, 'go-gzip');
    const uncompressed = imageFromTars(tars, { kind: 'go' });
    const manifest = JSON.parse(uncompressed.manifest.toString('utf8'));
    const blobs = new Map(uncompressed.blobs);
    manifest.layers = tars.map((t) => {
      blobs.set(computeDigest(t), t);
      return { mediaType: MediaTypes.ociLayer, digest: computeDigest(t), size: t.length };
    });
    const bytes = Buffer.from(JSON.stringify(manifest));
    await writeOciLayout(
      plain,
      { ...uncompressed, manifest: bytes, manifestDigest: computeDigest(bytes), blobs },
      'v1',
    );
    await skopeo('copy', '--dest-compress', `oci:${plain}:v1`, `oci:${gz}:v1`);
    await skopeo('copy', `oci:${gz}:v1`, `containers-storage:${store.spec}localhost/go:v1`);

    const src = await StorageImageSource.open(store.ref('localhost/go:v1'), {});
    const stored = JSON.parse(Buffer.from((await src.getManifest()).bytes).toString('utf8'));
    expect(stored.layers.map((l: BlobInfo) => l.mediaType)).toEqual([
      MediaTypes.ociLayerGzip,
      MediaTypes.ociLayerGzip,
    ]);
    // The compressed blob skopeo made: rebuilding it with zlib does not give its digest.
    const goBlob = await readFile(join(gz, 'blobs', 'sha256', stored.layers[0].digest.slice(7)));
    expect(goBlob.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    const rebuilt = await sha256Of((await src.getBlob({ digest: stored.layers[0].digest, size: -1 })).stream);
    expect(rebuilt.digest).not.toBe(stored.layers[0].digest);
    // Its diff digest reads back exactly.
    const infos = (await src.layerInfosForCopy()) as BlobInfo[];
    for (const [i, info] of infos.entries()) {
      expect(info).toEqual({
        digest: computeDigest(tars[i]!),
        size: tars[i]!.length,
        mediaType: MediaTypes.ociLayer,
      });
      const chunks: Buffer[] = [];
      for await (const c of (await src.getBlob(info)).stream) chunks.push(c as Buffer);
      expect(Buffer.compare(Buffer.concat(chunks), tars[i]!)).toBe(0);
    }
  });

  it('answers undefined when the manifest already lists every layer uncompressed', async () => {
    const src = await StorageImageSource.open(store.ref('localhost/go:v1'), {});
    const infos = (await src.layerInfosForCopy()) as BlobInfo[];
    // Copy those uncompressed layers back into the store under a manifest naming them.
    const plain = imageFromTars(tars, { kind: 'go' });
    const manifest = JSON.parse(plain.manifest.toString('utf8'));
    manifest.layers = infos;
    const bytes = Buffer.from(JSON.stringify(manifest));
    const blobs = new Map(plain.blobs);
    for (const t of tars) blobs.set(computeDigest(t), t);
    const image = { ...plain, manifest: bytes, manifestDigest: computeDigest(bytes), blobs };
    await copyImage(store.ref('localhost/plain:v1'), memory.add('plain', image as never), { policy });
    const again = await StorageImageSource.open(store.ref('localhost/plain:v1'), {});
    expect(await again.layerInfosForCopy()).toBeUndefined();
    expect(await text((await again.getBlob(infos[0]!)).stream)).toBe(tars[0]!.toString('latin1'));
  });
});
