import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BlobUnknownError,
  computeDigest,
  DigestingStream,
  InvalidLayoutError,
  InvalidReferenceError,
  ManifestUnknownError,
  MediaTypes,
  TooLargeError,
  verifyBytes,
} from '@img/core';
import { describe, expect, it } from 'vitest';
import { newOciIndexReference, newOciReference } from './index.js';
import { makeImage, makeIndex, putImage, readAll, type TestImage, useTempDirs } from './test-helpers.js';

const tempDir = useTempDirs();

async function writeImage(dir: string, tag: string, image: TestImage) {
  const dest = await newOciReference(dir, tag).newImageDestination({});
  await putImage(dest, image);
  await dest.commit();
  await dest.close();
}

describe('oci: source', () => {
  it('reads back the manifest byte for byte, with its media type', async () => {
    const dir = await tempDir();
    const image = await makeImage('app');
    await writeImage(dir, 'v1', image);
    const src = await newOciReference(dir, 'v1').newImageSource({});
    const manifest = await src.getManifest();
    expect(Buffer.from(manifest.bytes)).toEqual(image.manifest);
    expect(manifest.mediaType).toBe(MediaTypes.ociManifest);
    expect(computeDigest(manifest.bytes)).toBe(image.digest);
  });

  it('streams every blob back with its size, digest-verified', async () => {
    const dir = await tempDir();
    const image = await makeImage('app');
    await writeImage(dir, 'v1', image);
    const src = await newOciReference(dir, 'v1').newImageSource({});
    for (const blob of [...image.layers, image.config]) {
      const { stream, size } = await src.getBlob({ digest: blob.digest, size: blob.bytes.length });
      const verified = stream.pipe(new DigestingStream({ expectedDigest: blob.digest, expectedSize: size }));
      expect(await readAll(verified)).toEqual(blob.bytes);
      expect(size).toBe(blob.bytes.length);
    }
  });

  it('gives the path of a blob file for cloning', async () => {
    const dir = await tempDir();
    const image = await makeImage('app');
    await writeImage(dir, 'v1', image);
    const src = await newOciReference(dir, 'v1').newImageSource({});
    const path = await src.getBlobPath!({ digest: image.config.digest, size: -1 });
    expect(await readFile(path!)).toEqual(image.config.bytes);
  });

  it('picks the only image when no name is given', async () => {
    const dir = await tempDir();
    const image = await makeImage('only');
    await writeImage(dir, 'v1', image);
    const src = await newOciReference(dir).newImageSource({});
    expect(computeDigest((await src.getManifest()).bytes)).toBe(image.digest);
  });

  it('refuses to guess between several images when no name is given', async () => {
    const dir = await tempDir();
    await writeImage(dir, 'a', await makeImage('a'));
    await writeImage(dir, 'b', await makeImage('b'));
    await expect(newOciReference(dir).newImageSource({})).rejects.toThrow(InvalidReferenceError);
    await expect(newOciReference(dir).newImageSource({})).rejects.toThrow(/holds 2 images/);
  });

  it('picks an entry by position with @N', async () => {
    const dir = await tempDir();
    await writeImage(dir, 'a', await makeImage('a'));
    const b = await makeImage('b');
    await writeImage(dir, 'b', b);
    const src = await newOciIndexReference(dir, 1).newImageSource({});
    expect(computeDigest((await src.getManifest()).bytes)).toBe(b.digest);
  });

  it('fails with ManifestUnknownError for a position past the end', async () => {
    const dir = await tempDir();
    await writeImage(dir, 'a', await makeImage('a'));
    await expect(newOciIndexReference(dir, 1).newImageSource({})).rejects.toThrow(ManifestUnknownError);
  });

  it('fails with ManifestUnknownError for a name the layout does not have', async () => {
    const dir = await tempDir();
    await writeImage(dir, 'a', await makeImage('a'));
    await expect(newOciReference(dir, 'missing').newImageSource({})).rejects.toThrow(ManifestUnknownError);
  });

  it('fails with ManifestUnknownError for a layout that does not exist', async () => {
    const dir = join(await tempDir(), 'nothing');
    await expect(newOciReference(dir, 'v1').newImageSource({})).rejects.toThrow(ManifestUnknownError);
  });

  it('fails with InvalidLayoutError for a layout path that is a file', async () => {
    const file = join(await tempDir(), 'file');
    await writeFile(file, 'hello');
    const error = await newOciReference(file, 'v1')
      .newImageSource({})
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidLayoutError);
    expect((error as Error).message).toBe(`invalid OCI layout "${file}": it is a file, not a directory`);
  });

  it('fails with InvalidLayoutError for a directory without oci-layout', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'index.json'), '{"schemaVersion":2,"manifests":[]}');
    await expect(newOciReference(dir, 'v1').newImageSource({})).rejects.toThrow(/no oci-layout file/);
  });

  it('fails with InvalidLayoutError for an index.json that is not JSON', async () => {
    const dir = await tempDir();
    await writeImage(dir, 'v1', await makeImage('a'));
    await writeFile(join(dir, 'index.json'), 'garbage');
    await expect(newOciReference(dir, 'v1').newImageSource({})).rejects.toThrow(InvalidLayoutError);
  });

  it('fails with BlobUnknownError for a blob the layout lacks', async () => {
    const dir = await tempDir();
    await writeImage(dir, 'v1', await makeImage('a'));
    const src = await newOciReference(dir, 'v1').newImageSource({});
    await expect(src.getBlob({ digest: computeDigest('absent'), size: -1 })).rejects.toThrow(
      BlobUnknownError,
    );
  });

  it('does not fetch the URLs of a foreign layer missing locally', async () => {
    const dir = await tempDir();
    await writeImage(dir, 'v1', await makeImage('a'));
    const src = await newOciReference(dir, 'v1').newImageSource({});
    const foreign = { digest: computeDigest('foreign'), size: 7, urls: ['http://127.0.0.1:9/layer'] };
    await expect(src.getBlob(foreign)).rejects.toThrow(/foreign layer/);
  });

  it('fails with ManifestUnknownError when the manifest blob is missing', async () => {
    const dir = await tempDir();
    const image = await makeImage('a');
    await writeImage(dir, 'v1', image);
    await rm(join(dir, 'blobs', 'sha256', image.digest.slice(7)));
    const src = await newOciReference(dir, 'v1').newImageSource({});
    await expect(src.getManifest()).rejects.toThrow(ManifestUnknownError);
  });

  it('fails with TooLargeError for a manifest over 4 MiB', async () => {
    const dir = await tempDir();
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    const digest = computeDigest(big);
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), big);
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    const entry = { mediaType: MediaTypes.ociManifest, digest, size: big.length };
    await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [entry] }));
    const src = await newOciReference(dir).newImageSource({});
    await expect(src.getManifest()).rejects.toThrow(TooLargeError);
  });

  it('reads the instances of an index with their media type', async () => {
    const dir = await tempDir();
    const amd = await makeImage('amd', 1, 'amd64');
    const arm = await makeImage('arm', 1, 'arm64');
    const index = makeIndex([amd, arm]);
    const dest = await newOciReference(dir, 'multi').newImageDestination({});
    await putImage(dest, amd, true);
    await putImage(dest, arm, true);
    await dest.putManifest(index.bytes);
    await dest.commit();
    const src = await newOciReference(dir, 'multi').newImageSource({});
    const top = await src.getManifest();
    expect(top.mediaType).toBe(MediaTypes.ociIndex);
    const instance = await src.getManifest(arm.digest);
    verifyBytes(instance.bytes, arm.digest);
    expect(instance.mediaType).toBe(MediaTypes.ociManifest);
  });

  it('has no signatures', async () => {
    const dir = await tempDir();
    await writeImage(dir, 'v1', await makeImage('a'));
    const src = await newOciReference(dir, 'v1').newImageSource({});
    expect(await src.getSignatures()).toEqual([]);
    expect(src.hasThreadSafeGetBlob).toBe(true);
  });
});
