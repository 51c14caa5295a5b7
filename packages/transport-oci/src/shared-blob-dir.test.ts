import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { computeDigest } from '@img/core';
import { describe, expect, it } from 'vitest';
import { newOciReference } from './index.js';
import { makeImage, putImage, useTempDirs } from './test-helpers.js';

const tempDir = useTempDirs();

describe('oci: sharedBlobDir', () => {
  it('writes blobs to the shared directory and leaves the layout blobs/ empty', async () => {
    const [dir, shared] = [await tempDir(), await tempDir()];
    const ctx = { transportOptions: { oci: { sharedBlobDir: shared } } };
    const image = await makeImage('app');
    const dest = await newOciReference(dir, 'v1').newImageDestination(ctx);
    await putImage(dest, image);
    await dest.commit();
    expect(await readdir(join(dir, 'blobs'))).toEqual([]);
    expect((await readdir(join(shared, 'sha256'))).length).toBe(4);
  });

  it('reads an image whose blobs are in the shared directory', async () => {
    const [dir, shared] = [await tempDir(), await tempDir()];
    const ctx = { transportOptions: { oci: { sharedBlobDir: shared } } };
    const image = await makeImage('app');
    const dest = await newOciReference(dir, 'v1').newImageDestination(ctx);
    await putImage(dest, image);
    await dest.commit();
    const src = await newOciReference(dir, 'v1').newImageSource(ctx);
    expect(computeDigest((await src.getManifest()).bytes)).toBe(image.digest);
    expect((await src.getBlob({ digest: image.layers[0]!.digest, size: -1 })).size).toBe(
      image.layers[0]!.bytes.length,
    );
  });

  it('never prunes the shared directory when an image is deleted', async () => {
    const [dir, shared] = [await tempDir(), await tempDir()];
    const ctx = { transportOptions: { oci: { sharedBlobDir: shared } } };
    const dest = await newOciReference(dir, 'v1').newImageDestination(ctx);
    await putImage(dest, await makeImage('app'));
    await dest.commit();
    await newOciReference(dir, 'v1').deleteImage(ctx);
    expect((await readdir(join(shared, 'sha256'))).length).toBe(4);
  });
});
