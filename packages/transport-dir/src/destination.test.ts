import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import {
  computeDigest,
  type Digest,
  DigestMismatchError,
  digestHex,
  type ImageDestination,
  InvalidLayoutError,
  MediaTypes,
  type Signature,
} from '@img/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newDirReference } from './index.js';

interface TestBlob {
  digest: Digest;
  size: number;
  bytes: Buffer;
}

interface TestImage {
  manifest: Buffer;
  digest: Digest;
  blobs: TestBlob[];
}

function testBlob(bytes: Buffer, algorithm: 'sha256' | 'sha512' = 'sha256'): TestBlob {
  return { digest: computeDigest(bytes, algorithm), size: bytes.length, bytes };
}

/** A small OCI image: gzip layers made here and a config whose diff_ids match them. */
function testImage(seed: string, layers = 2, algorithm: 'sha256' | 'sha512' = 'sha256'): TestImage {
  const raw = Array.from({ length: layers }, (_, i) => Buffer.from(`${seed} layer ${i}\n`.repeat(50)));
  const layerBlobs = raw.map((r) => testBlob(gzipSync(r), algorithm));
  const config = testBlob(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Labels: { seed } },
        rootfs: { type: 'layers', diff_ids: raw.map((r) => computeDigest(r)) },
      }),
    ),
    algorithm,
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: config.digest, size: config.size },
      layers: layerBlobs.map((l) => ({ mediaType: MediaTypes.ociLayerGzip, digest: l.digest, size: l.size })),
    }),
  );
  return { manifest, digest: computeDigest(manifest), blobs: [config, ...layerBlobs] };
}

/** An OCI index of images, as bytes. */
function testIndex(images: TestImage[]): TestImage {
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: images.map((image, i) => ({
        mediaType: MediaTypes.ociManifest,
        digest: image.digest,
        size: image.manifest.length,
        platform: { architecture: ['amd64', 'arm64', 's390x'][i], os: 'linux' },
      })),
    }),
  );
  return { manifest, digest: computeDigest(manifest), blobs: [] };
}

const simpleSignature = (n: number): Signature => ({
  format: 'simple-signing',
  bytes: Uint8Array.from([0xa3, 0x01, n, 0x42]),
});

const sigstoreSignature: Signature = {
  format: 'sigstore',
  bytes: new TextEncoder().encode('{"critical":{"identity":{"docker-reference":"example.com/app"}}}'),
  mimeType: 'application/vnd.dev.cosign.simplesigning.v1+json',
  annotations: { 'dev.cosignproject.cosign/signature': 'MEUCIQDx' },
};

/** Copies `image` into `dest` in the order the copy engine uses: blobs, manifest, signatures, commit. */
async function putImage(
  dest: ImageDestination,
  image: TestImage,
  signatures?: Signature[],
  instance?: Digest,
) {
  for (const blob of image.blobs) {
    await dest.putBlob(Readable.from([blob.bytes]), { digest: blob.digest, size: blob.size });
  }
  await dest.putManifest(image.manifest, instance);
  if (signatures) await dest.putSignatures(signatures, instance);
}

async function writeImage(dir: string, image: TestImage, signatures?: Signature[]): Promise<void> {
  const dest = await newDirReference(dir).newImageDestination({});
  try {
    await putImage(dest, image, signatures);
    await dest.commit();
  } finally {
    await dest.close();
  }
}

async function files(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

/** Inode and modification time of every file, to tell which ones were written. */
async function fileStamps(dir: string): Promise<Map<string, string>> {
  const stamps = new Map<string, string>();
  for (const name of await files(dir)) {
    const s = await stat(join(dir, name), { bigint: true });
    stamps.set(name, `${s.ino}:${s.mtimeNs}`);
  }
  return stamps;
}

function imageFiles(image: TestImage, extra: string[] = []): string[] {
  return ['manifest.json', 'version', ...image.blobs.map((b) => digestHex(b.digest)), ...extra].sort();
}

describe('DirImageDestination', () => {
  let tmp: string;
  let dir: string;

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'img-dir-dest-'));
    dir = join(tmp, 'image');
  });

  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('declares what it accepts: any manifest type, layers as they are, signatures, out-of-order puts', async () => {
    const dest = await newDirReference(dir).newImageDestination({});
    expect(dest.supportedManifestMediaTypes).toEqual([]);
    expect(dest.desiredLayerCompression).toBe('preserve');
    expect(dest.supportsSignatures).toBe(true);
    expect(dest.hasThreadSafePutBlob).toBe(true);
    expect(dest.supportsOutOfOrderPuts).toBe(true);
    expect(dest.mustMatchRuntimeOS).toBe(false);
    await dest.close();
  });

  it('writes an image that reads back byte for byte', async () => {
    const image = testImage('a');
    await writeImage(dir, image);
    const source = await newDirReference(dir).newImageSource({});
    const manifest = await source.getManifest();
    expect(Buffer.from(manifest.bytes).equals(image.manifest)).toBe(true);
    expect(manifest.mediaType).toBe(MediaTypes.ociManifest);
    for (const blob of image.blobs) {
      const { stream, size } = await source.getBlob({ digest: blob.digest, size: blob.size });
      expect(size).toBe(blob.size);
      expect(Buffer.concat(await stream.toArray()).equals(blob.bytes)).toBe(true);
    }
    await source.close();
  });

  it('lays the image out as containers/image does: version 1.1, manifest.json, one file per blob by hex', async () => {
    const image = testImage('a');
    await writeImage(dir, image);
    expect(await files(dir)).toEqual(imageFiles(image));
    expect(await readFile(join(dir, 'version'), 'utf8')).toBe('Directory Transport Version: 1.1\n');
  });

  it('names sha512 blobs sha512-<hex> and writes layout version 1.2', async () => {
    const image = testImage('a', 1, 'sha512');
    await writeImage(dir, image);
    expect(await files(dir)).toEqual(
      ['manifest.json', 'version', ...image.blobs.map((b) => `sha512-${digestHex(b.digest)}`)].sort(),
    );
    expect(await readFile(join(dir, 'version'), 'utf8')).toBe('Directory Transport Version: 1.2\n');
  });

  it('round-trips simple signing and sigstore signatures as signature-1..N', async () => {
    const image = testImage('a');
    await writeImage(dir, image, [simpleSignature(1), sigstoreSignature]);
    expect(await files(dir)).toEqual(imageFiles(image, ['signature-1', 'signature-2']));
    expect(await readFile(join(dir, 'signature-1'))).toEqual(Buffer.from(simpleSignature(1).bytes));
    expect((await readFile(join(dir, 'signature-2'), 'latin1')).startsWith('\0sigstore-json\n{')).toBe(true);
    const source = await newDirReference(dir).newImageSource({});
    expect(await source.getSignatures()).toEqual([simpleSignature(1), sigstoreSignature]);
  });

  it('removes signature files beyond the new count when fewer signatures are written', async () => {
    const image = testImage('a');
    await writeImage(dir, image, [simpleSignature(1), simpleSignature(2), simpleSignature(3)]);
    await writeImage(dir, image, [simpleSignature(9)]);
    expect(await files(dir)).toEqual(imageFiles(image, ['signature-1']));
    const source = await newDirReference(dir).newImageSource({});
    expect(await source.getSignatures()).toEqual([simpleSignature(9)]);
  });

  it('writes a list: instance manifests as <hex>.manifest.json and instance signatures as <hex>.signature-N', async () => {
    const amd64 = testImage('amd64');
    const arm64 = testImage('arm64');
    const index = testIndex([amd64, arm64]);
    const dest = await newDirReference(dir).newImageDestination({});
    await putImage(dest, amd64, [simpleSignature(1)], amd64.digest);
    await putImage(dest, arm64, undefined, arm64.digest);
    await putImage(dest, index, [simpleSignature(2)]);
    await dest.commit();
    await dest.close();
    const amdHex = digestHex(amd64.digest);
    expect(await files(dir)).toEqual(
      [
        ...imageFiles(index),
        ...amd64.blobs.map((b) => digestHex(b.digest)),
        ...arm64.blobs.map((b) => digestHex(b.digest)),
        `${amdHex}.manifest.json`,
        `${amdHex}.signature-1`,
        `${digestHex(arm64.digest)}.manifest.json`,
        'signature-1',
      ].sort(),
    );
    const source = await newDirReference(dir).newImageSource({});
    expect(Buffer.from((await source.getManifest(arm64.digest)).bytes).equals(arm64.manifest)).toBe(true);
    expect(await source.getSignatures(amd64.digest)).toEqual([simpleSignature(1)]);
  });

  it('fails a putBlob whose bytes do not match the digest and leaves no file', async () => {
    const dest = await newDirReference(dir).newImageDestination({});
    const before = await files(dir);
    const claimed = computeDigest('something else');
    await expect(
      dest.putBlob(Readable.from([Buffer.from('bytes')]), { digest: claimed, size: -1 }),
    ).rejects.toThrow(DigestMismatchError);
    expect(await files(dir)).toEqual(before);
    await dest.close();
  });

  it('stores a blob put without a digest (a recompressed stream) under the digest of its bytes', async () => {
    const dest = await newDirReference(dir).newImageDestination({});
    const bytes = Buffer.from('anonymous');
    const info = await dest.putBlob(Readable.from([bytes]), { size: bytes.length });
    expect(info).toMatchObject({ digest: computeDigest(bytes), size: bytes.length });
    expect(await readFile(join(dir, digestHex(computeDigest(bytes))))).toEqual(bytes);
    expect(await files(dir)).toEqual(['version', digestHex(computeDigest(bytes))].sort());
    await dest.close();
  });

  it('copies a blob from a file with putBlobFromFile', async () => {
    const bytes = Buffer.from('from a file');
    const from = join(tmp, 'blob');
    await writeFile(from, bytes);
    const dest = await newDirReference(dir).newImageDestination({});
    await dest.putBlobFromFile!(from, { digest: computeDigest(bytes), size: bytes.length });
    expect(await readFile(join(dir, digestHex(computeDigest(bytes))))).toEqual(bytes);
    await dest.close();
  });

  it('reuses a blob present with the right size, and not one of another size', async () => {
    const image = testImage('a');
    await writeImage(dir, image);
    const dest = await newDirReference(dir).newImageDestination({});
    const [config] = image.blobs;
    expect(await dest.tryReusingBlob({ digest: config!.digest, size: config!.size })).toMatchObject({
      digest: config!.digest,
      size: config!.size,
    });
    expect(await dest.tryReusingBlob({ digest: config!.digest, size: -1 })).toMatchObject({
      size: config!.size,
    });
    expect(await dest.tryReusingBlob({ digest: config!.digest, size: config!.size + 1 })).toBeUndefined();
    expect(await dest.tryReusingBlob({ digest: computeDigest('absent'), size: -1 })).toBeUndefined();
    await dest.close();
  });

  it('makes nothing visible before commit: close() without commit leaves the previous image intact', async () => {
    const old = testImage('old');
    await writeImage(dir, old, [simpleSignature(1)]);
    const dest = await newDirReference(dir).newImageDestination({});
    const next = testImage('new');
    await putImage(dest, next, [simpleSignature(2), simpleSignature(3)]);
    await dest.close();

    const source = await newDirReference(dir).newImageSource({});
    expect(Buffer.from((await source.getManifest()).bytes).equals(old.manifest)).toBe(true);
    expect(await source.getSignatures()).toEqual([simpleSignature(1)]);
    for (const blob of old.blobs) {
      const { stream } = await source.getBlob({ digest: blob.digest, size: blob.size });
      expect(Buffer.concat(await stream.toArray()).equals(blob.bytes)).toBe(true);
    }
    // The new blobs stay (reusable by the next attempt); no staged temp file does.
    expect(await files(dir)).toEqual(
      imageFiles(old, ['signature-1', ...next.blobs.map((b) => digestHex(b.digest))]),
    );
  });

  it('replaces a different image at commit: stale blobs and the old signatures are removed', async () => {
    const old = testImage('old', 3);
    await writeImage(dir, old, [simpleSignature(1), simpleSignature(2)]);
    const next = testImage('new', 1);
    await writeImage(dir, next);
    expect(await files(dir)).toEqual(imageFiles(next));
    const source = await newDirReference(dir).newImageSource({});
    expect(Buffer.from((await source.getManifest()).bytes).equals(next.manifest)).toBe(true);
    expect(await source.getSignatures()).toEqual([]);
  });

  it('replaces a list with a single image at commit: instance manifests and signatures are removed', async () => {
    const amd64 = testImage('amd64');
    const index = testIndex([amd64]);
    const dest = await newDirReference(dir).newImageDestination({});
    await putImage(dest, amd64, [simpleSignature(1)], amd64.digest);
    await putImage(dest, index);
    await dest.commit();
    await dest.close();
    const single = testImage('single');
    await writeImage(dir, single);
    expect(await files(dir)).toEqual(imageFiles(single));
  });

  it('keeps blobs shared by the old and the new image', async () => {
    const old = testImage('shared', 2);
    await writeImage(dir, old);
    const next: TestImage = { ...testImage('other', 1) };
    // The new image reuses the old image's first layer.
    const manifest = JSON.parse(next.manifest.toString()) as { layers: unknown[] };
    const sharedLayer = old.blobs[1]!;
    manifest.layers.push({
      mediaType: MediaTypes.ociLayerGzip,
      digest: sharedLayer.digest,
      size: sharedLayer.size,
    });
    next.manifest = Buffer.from(JSON.stringify(manifest));
    next.digest = computeDigest(next.manifest);
    next.blobs = [...next.blobs, sharedLayer];
    await writeImage(dir, next);
    expect(await files(dir)).toEqual(imageFiles(next));
  });

  it('says an image is already present when its manifest and every blob are, with the stored signatures', async () => {
    const image = testImage('a');
    await writeImage(dir, image, [simpleSignature(1), sigstoreSignature]);
    const dest = await newDirReference(dir).newImageDestination({});
    expect(await dest.alreadyContainsManifest!(image.digest, image.manifest)).toEqual({
      present: true,
      signatures: [simpleSignature(1), sigstoreSignature],
    });
    await dest.close();
  });

  it('says an image with another manifest digest is not present', async () => {
    await writeImage(dir, testImage('a'));
    const other = testImage('b');
    const dest = await newDirReference(dir).newImageDestination({});
    expect(await dest.alreadyContainsManifest!(other.digest, other.manifest)).toEqual({ present: false });
    await dest.close();
  });

  it('says an image whose blob is missing is not present', async () => {
    const image = testImage('a');
    await writeImage(dir, image);
    await rm(join(dir, digestHex(image.blobs[2]!.digest)));
    const dest = await newDirReference(dir).newImageDestination({});
    expect(await dest.alreadyContainsManifest!(image.digest, image.manifest)).toEqual({ present: false });
    await dest.close();
  });

  it('says an image whose blob has the wrong size is not present', async () => {
    const image = testImage('a');
    await writeImage(dir, image);
    await writeFile(join(dir, digestHex(image.blobs[1]!.digest)), 'truncated');
    const dest = await newDirReference(dir).newImageDestination({});
    expect(await dest.alreadyContainsManifest!(image.digest, image.manifest)).toEqual({ present: false });
    await dest.close();
  });

  it('says a list is present only when every instance manifest and its blobs are', async () => {
    const amd64 = testImage('amd64');
    const arm64 = testImage('arm64');
    const index = testIndex([amd64, arm64]);
    const dest = await newDirReference(dir).newImageDestination({});
    await putImage(dest, amd64, undefined, amd64.digest);
    await putImage(dest, arm64, undefined, arm64.digest);
    await putImage(dest, index);
    await dest.commit();
    expect(await dest.alreadyContainsManifest!(index.digest, index.manifest)).toMatchObject({
      present: true,
    });
    await rm(join(dir, digestHex(arm64.blobs[1]!.digest)));
    expect(await dest.alreadyContainsManifest!(index.digest, index.manifest)).toEqual({ present: false });
    await rm(join(dir, `${digestHex(amd64.digest)}.manifest.json`));
    expect(await dest.alreadyContainsManifest!(index.digest, index.manifest)).toEqual({ present: false });
    await dest.close();
  });

  it('says nothing is present in an empty directory', async () => {
    const image = testImage('a');
    const dest = await newDirReference(dir).newImageDestination({});
    expect(await dest.alreadyContainsManifest!(image.digest, image.manifest)).toEqual({ present: false });
    await dest.close();
  });

  it('out of order: signatures put on a present image and committed write only the signature files', async () => {
    const image = testImage('a');
    await writeImage(dir, image, [simpleSignature(1)]);
    const before = await fileStamps(dir);

    const dest = await newDirReference(dir).newImageDestination({});
    expect(await dest.alreadyContainsManifest!(image.digest, image.manifest)).toMatchObject({
      present: true,
    });
    await dest.putSignatures([simpleSignature(1), sigstoreSignature]);
    await dest.commit();
    await dest.close();

    const after = await fileStamps(dir);
    expect([...after.keys()]).toEqual(imageFiles(image, ['signature-1', 'signature-2']));
    for (const [name, stamp] of after) {
      if (!name.startsWith('signature-')) expect(stamp, name).toBe(before.get(name));
    }
    const source = await newDirReference(dir).newImageSource({});
    expect(await source.getSignatures()).toEqual([simpleSignature(1), sigstoreSignature]);
  });

  it('out of order: a putManifest of the same bytes with the signatures does not rewrite the manifest', async () => {
    const image = testImage('a');
    await writeImage(dir, image);
    const before = await fileStamps(dir);

    const dest = await newDirReference(dir).newImageDestination({});
    await dest.putManifest(image.manifest);
    await dest.putSignatures([sigstoreSignature]);
    await dest.commit();
    await dest.close();

    const after = await fileStamps(dir);
    expect([...after.keys()]).toEqual(imageFiles(image, ['signature-1']));
    for (const [name, stamp] of after) {
      if (name !== 'signature-1') expect(stamp, name).toBe(before.get(name));
    }
  });

  it('out of order: fewer signatures on a present image remove the extra signature files only', async () => {
    const image = testImage('a');
    await writeImage(dir, image, [simpleSignature(1), simpleSignature(2)]);
    const dest = await newDirReference(dir).newImageDestination({});
    await dest.putSignatures([]);
    await dest.commit();
    await dest.close();
    expect(await files(dir)).toEqual(imageFiles(image));
  });

  it('refuses to commit when there is no manifest at all', async () => {
    const dest = await newDirReference(dir).newImageDestination({});
    await dest.putSignatures([simpleSignature(1)]);
    await expect(dest.commit()).rejects.toThrow(`manifest unknown: dir:${dir}`);
    await dest.close();
    expect(await files(dir)).toEqual(['version']);
  });

  it('refuses a path that is a file with a one-line InvalidLayoutError', async () => {
    const file = join(tmp, 'file');
    await writeFile(file, 'precious');
    const error = await newDirReference(file)
      .newImageDestination({})
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidLayoutError);
    expect((error as Error).message).toBe(`cannot write dir:${file}: "${file}" is not a directory`);
    expect(await readFile(file, 'utf8')).toBe('precious');
  });

  it('refuses a non-empty directory that holds no image, and leaves it untouched', async () => {
    await mkdir(dir);
    await writeFile(join(dir, 'notes.txt'), 'precious');
    await mkdir(join(dir, 'sub'));
    const before = await fileStamps(dir);
    const error = await newDirReference(dir)
      .newImageDestination({})
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidLayoutError);
    expect((error as Error).message).toBe(
      `cannot write dir:${dir}: "${dir}" is not empty and holds no image (no "version" file); refusing to overwrite it`,
    );
    expect(await fileStamps(dir)).toEqual(before);
  });

  it('refuses a directory whose version file is not a dir: version file', async () => {
    await mkdir(dir);
    await writeFile(join(dir, 'version'), 'v2\n');
    await expect(newDirReference(dir).newImageDestination({})).rejects.toThrow(InvalidLayoutError);
    expect(await files(dir)).toEqual(['version']);
  });

  it('accepts an existing empty directory and creates missing parents', async () => {
    await mkdir(dir);
    await writeImage(dir, testImage('a'));
    const nested = join(tmp, 'x', 'y', 'z');
    await writeImage(nested, testImage('b'));
    expect(await files(nested)).toEqual(imageFiles(testImage('b')));
  });

  it('leaves files it does not know alone when it replaces an image', async () => {
    await writeImage(dir, testImage('old'));
    await writeFile(join(dir, 'README'), 'mine');
    const next = testImage('new');
    await writeImage(dir, next);
    expect(await files(dir)).toEqual(imageFiles(next, ['README']));
  });
});
