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
    try {
      expect(computeDigest((await src.getManifest()).bytes)).toBe(image.digest);
      const blob = await src.getBlob({ digest: image.layers[0]!.digest, size: -1 });
      blob.stream.destroy();
      expect(blob.size).toBe(image.layers[0]!.bytes.length);
    } finally {
      await src.close();
    }
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

  it("removes no blob from the layout's own blobs/ when an image is deleted", async () => {
    const [dir, shared] = [await tempDir(), await tempDir()];
    // Two images sharing their layers, written into the layout's own blobs/ (no shared directory).
    const a = await makeImage('app');
    const b = { ...a, config: { ...a.config, bytes: Buffer.from(`${a.config.bytes} `) } };
    b.config.digest = computeDigest(b.config.bytes);
    const manifestB = JSON.parse(a.manifest.toString());
    manifestB.config.digest = b.config.digest;
    manifestB.config.size = b.config.bytes.length;
    b.manifest = Buffer.from(JSON.stringify(manifestB));
    b.digest = computeDigest(b.manifest);
    for (const [tag, image] of [
      ['a', a],
      ['b', b],
    ] as const) {
      const dest = await newOciReference(dir, tag).newImageDestination({});
      await putImage(dest, image);
      await dest.commit();
    }
    // The shared directory holds image a only, as another layout put it there.
    const copy = await newOciReference(await tempDir(), 'a').newImageDestination({
      transportOptions: { oci: { sharedBlobDir: shared } },
    });
    await putImage(copy, a);
    const before = (await readdir(join(dir, 'blobs', 'sha256'))).sort();
    await newOciReference(dir, 'a').deleteImage({ transportOptions: { oci: { sharedBlobDir: shared } } });
    expect((await readdir(join(dir, 'blobs', 'sha256'))).sort()).toEqual(before);
    const src = await newOciReference(dir, 'b').newImageSource({});
    try {
      for (const layer of b.layers) {
        const blob = await src.getBlob({ digest: layer.digest, size: -1 });
        blob.stream.destroy();
        expect(blob.size).toBe(layer.bytes.length);
      }
    } finally {
      await src.close();
    }
  });
});
