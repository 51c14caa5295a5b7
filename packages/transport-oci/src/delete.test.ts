import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { computeDigest, ManifestUnknownError } from '@img/core';
import { describe, expect, it } from 'vitest';
import { newOciReference } from './index.js';
import { makeImage, makeIndex, putImage, type TestImage, useTempDirs } from './test-helpers.js';

const tempDir = useTempDirs();

async function writeImage(dir: string, tag: string, image: TestImage) {
  const dest = await newOciReference(dir, tag).newImageDestination({});
  await putImage(dest, image);
  await dest.commit();
  await dest.close();
}

async function blobNames(dir: string): Promise<string[]> {
  return (await readdir(join(dir, 'blobs', 'sha256'))).sort();
}

const hex = (digest: string) => digest.slice('sha256:'.length);

describe('oci: deleteImage', () => {
  it('removes the entry and the blobs only that image used', async () => {
    const dir = await tempDir();
    const a = await makeImage('a');
    const b = await makeImage('b');
    await writeImage(dir, 'a', a);
    await writeImage(dir, 'b', b);
    await newOciReference(dir, 'a').deleteImage({});
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    expect(index.manifests.map((m: { digest: string }) => m.digest)).toEqual([b.digest]);
    const expected = [b.digest, b.config.digest, ...b.layers.map((l) => l.digest)].map(hex).sort();
    expect(await blobNames(dir)).toEqual(expected);
  });

  it('keeps blobs another tag of the same image still uses', async () => {
    const dir = await tempDir();
    const a = await makeImage('a');
    await writeImage(dir, 'one', a);
    await writeImage(dir, 'two', a);
    const before = await blobNames(dir);
    await newOciReference(dir, 'one').deleteImage({});
    expect(await blobNames(dir)).toEqual(before);
  });

  it('removes the instances of a deleted index', async () => {
    const dir = await tempDir();
    const amd = await makeImage('amd', 1, 'amd64');
    const arm = await makeImage('arm', 1, 'arm64');
    const index = makeIndex([amd, arm]);
    const dest = await newOciReference(dir, 'multi').newImageDestination({});
    await putImage(dest, amd, true);
    await putImage(dest, arm, true);
    await dest.putManifest(index.bytes);
    await dest.commit();
    await newOciReference(dir, 'multi').deleteImage({});
    expect(await blobNames(dir)).toEqual([]);
  });

  it('removes no blob when a remaining entry cannot be followed', async () => {
    const dir = await tempDir();
    const a = await makeImage('a');
    await writeImage(dir, 'a', a);
    const opaque = Buffer.from('not a manifest');
    const opaqueDigest = computeDigest(opaque);
    await writeFile(join(dir, 'blobs', 'sha256', hex(opaqueDigest)), opaque);
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    index.manifests.push({ mediaType: 'application/x-unknown', digest: opaqueDigest, size: opaque.length });
    await writeFile(join(dir, 'index.json'), JSON.stringify(index));
    const before = await blobNames(dir);
    await newOciReference(dir, 'a').deleteImage({});
    expect(await blobNames(dir)).toEqual(before);
  });

  it('keeps an entry committed while the delete runs, and its blobs', async () => {
    const dir = await tempDir();
    const [a, b, c] = [await makeImage('a'), await makeImage('b'), await makeImage('c')];
    await writeImage(dir, 'a', a);
    await writeImage(dir, 'b', b);
    const dest = await newOciReference(dir, 'c').newImageDestination({});
    await putImage(dest, c);
    await Promise.all([newOciReference(dir, 'a').deleteImage({}), dest.commit()]);
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    expect(index.manifests.map((m: { digest: string }) => m.digest).sort()).toEqual(
      [b.digest, c.digest].sort(),
    );
    const expected = [b, c].flatMap((i) => [i.digest, i.config.digest, ...i.layers.map((l) => l.digest)]);
    expect(await blobNames(dir)).toEqual(expected.map(hex).sort());
  });

  it('fails with ManifestUnknownError for a name the layout does not have', async () => {
    const dir = await tempDir();
    await writeImage(dir, 'a', await makeImage('a'));
    await expect(newOciReference(dir, 'b').deleteImage({})).rejects.toThrow(ManifestUnknownError);
  });
});
