import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  computeDigest,
  DigestMismatchError,
  InvalidLayoutError,
  ManifestTypeRejectedError,
  MediaTypes,
  NotSupportedError,
} from '@img/core';
import { describe, expect, it } from 'vitest';
import { newOciIndexReference, newOciReference } from './index.js';
import { makeImage, makeIndex, putImage, useTempDirs } from './test-helpers.js';

const tempDir = useTempDirs();

async function readIndex(dir: string) {
  return JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as {
    schemaVersion: number;
    manifests: Array<{
      mediaType: string;
      digest: string;
      size: number;
      annotations?: Record<string, string>;
    }>;
  };
}

async function writeTagged(dir: string, tag: string, name = tag) {
  const image = await makeImage(name);
  const dest = await newOciReference(dir, tag).newImageDestination({});
  await putImage(dest, image);
  await dest.commit();
  await dest.close();
  return image;
}

describe('oci: destination', () => {
  it('writes oci-layout, the blobs and an index.json entry with the ref name', async () => {
    const dir = await tempDir();
    const image = await writeTagged(dir, 'v1');
    expect(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8'))).toEqual({
      imageLayoutVersion: '1.0.0',
    });
    expect((await readIndex(dir)).manifests).toEqual([
      {
        mediaType: MediaTypes.ociManifest,
        digest: image.digest,
        size: image.manifest.length,
        annotations: { 'org.opencontainers.image.ref.name': 'v1' },
      },
    ]);
    const blob = await readFile(join(dir, 'blobs', 'sha256', image.layers[0]!.digest.slice(7)));
    expect(computeDigest(blob)).toBe(image.layers[0]!.digest);
  });

  it('keeps two tags as two entries of one layout', async () => {
    const dir = await tempDir();
    const one = await writeTagged(dir, 'one');
    const two = await writeTagged(dir, 'two');
    expect(
      (await readIndex(dir)).manifests.map((m) => [
        m.annotations?.['org.opencontainers.image.ref.name'],
        m.digest,
      ]),
    ).toEqual([
      ['one', one.digest],
      ['two', two.digest],
    ]);
  });

  it('replaces only the entry of the tag written again', async () => {
    const dir = await tempDir();
    const one = await writeTagged(dir, 'one');
    await writeTagged(dir, 'two');
    const newer = await writeTagged(dir, 'two', 'two-rebuilt');
    const entries = (await readIndex(dir)).manifests;
    expect(entries.map((m) => m.digest)).toEqual([one.digest, newer.digest]);
  });

  it('writes an unnamed entry without annotations', async () => {
    const dir = await tempDir();
    const image = await makeImage('plain');
    const dest = await newOciReference(dir).newImageDestination({});
    await putImage(dest, image);
    await dest.commit();
    expect((await readIndex(dir)).manifests).toEqual([
      { mediaType: MediaTypes.ociManifest, digest: image.digest, size: image.manifest.length },
    ]);
  });

  it('leaves index.json unchanged when closed without commit', async () => {
    const dir = await tempDir();
    await writeTagged(dir, 'v1');
    const before = await readFile(join(dir, 'index.json'));
    const dest = await newOciReference(dir, 'v1').newImageDestination({});
    await putImage(dest, await makeImage('other'));
    await dest.close();
    expect(await readFile(join(dir, 'index.json'))).toEqual(before);
  });

  it('writes no index.json into a new layout closed without commit', async () => {
    const dir = join(await tempDir(), 'new');
    const dest = await newOciReference(dir, 'v1').newImageDestination({});
    await putImage(dest, await makeImage('x'));
    await dest.close();
    await expect(stat(join(dir, 'index.json'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('reuses a blob that is present with the right size, without reading it', async () => {
    const dir = await tempDir();
    const image = await writeTagged(dir, 'v1');
    const dest = await newOciReference(dir, 'v2').newImageDestination({});
    const layer = image.layers[0]!;
    expect(await dest.tryReusingBlob({ digest: layer.digest, size: layer.bytes.length })).toEqual({
      digest: layer.digest,
      size: layer.bytes.length,
    });
  });

  it('does not reuse a blob whose file has another size', async () => {
    const dir = await tempDir();
    const image = await writeTagged(dir, 'v1');
    const layer = image.layers[0]!;
    await writeFile(join(dir, 'blobs', 'sha256', layer.digest.slice(7)), 'truncated');
    const dest = await newOciReference(dir, 'v2').newImageDestination({});
    expect(await dest.tryReusingBlob({ digest: layer.digest, size: layer.bytes.length })).toBeUndefined();
  });

  it('does not reuse a blob that is absent', async () => {
    const dest = await newOciReference(await tempDir(), 'v1').newImageDestination({});
    expect(await dest.tryReusingBlob({ digest: computeDigest('nothing'), size: 7 })).toBeUndefined();
  });

  it('fails putBlob with a wrong digest and leaves no file behind', async () => {
    const dir = await tempDir();
    const dest = await newOciReference(dir, 'v1').newImageDestination({});
    const claimed = computeDigest('something else');
    await expect(
      dest.putBlob(Readable.from([Buffer.from('content')]), { digest: claimed, size: -1 }),
    ).rejects.toThrow(DigestMismatchError);
    expect(await readdir(join(dir, 'blobs', 'sha256'))).toEqual([]);
  });

  it('fails putBlob when the stream errors and leaves no file behind', async () => {
    const dir = await tempDir();
    const dest = await newOciReference(dir, 'v1').newImageDestination({});
    const broken = new Readable({
      read() {
        this.destroy(new Error('connection reset'));
      },
    });
    await expect(dest.putBlob(broken, { size: -1 })).rejects.toThrow('connection reset');
    expect(await readdir(dir)).toEqual(['blobs']);
    expect(await readdir(join(dir, 'blobs', 'sha256'))).toEqual([]);
  });

  it('stores a blob put without a digest under the digest of its bytes', async () => {
    const dir = await tempDir();
    const dest = await newOciReference(dir, 'v1').newImageDestination({});
    const bytes = Buffer.from('recompressed');
    const stored = await dest.putBlob(Readable.from([bytes]), { size: -1 });
    expect(stored).toEqual({ digest: computeDigest(bytes), size: bytes.length });
    expect(await readdir(join(dir, 'blobs', 'sha256'))).toEqual([computeDigest(bytes).slice(7)]);
    expect(await readFile(join(dir, 'blobs', 'sha256', computeDigest(bytes).slice(7)))).toEqual(bytes);
  });

  it('copies a blob from a file with putBlobFromFile', async () => {
    const dir = await tempDir();
    const source = join(await tempDir(), 'blob');
    await writeFile(source, 'file content');
    const dest = await newOciReference(dir, 'v1').newImageDestination({});
    const digest = computeDigest('file content');
    await dest.putBlobFromFile!(source, { digest, size: 12 });
    expect(await readFile(join(dir, 'blobs', 'sha256', digest.slice(7)), 'utf8')).toBe('file content');
  });

  it('refuses a Docker schema 2 manifest so that the engine converts it', async () => {
    const dest = await newOciReference(await tempDir(), 'v1').newImageDestination({});
    const docker = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.dockerV2Schema2,
        config: { mediaType: MediaTypes.dockerConfig, digest: computeDigest('c'), size: 1 },
        layers: [],
      }),
    );
    await expect(dest.putManifest(docker)).rejects.toThrow(ManifestTypeRejectedError);
  });

  it('refuses an instance manifest whose bytes do not match its digest', async () => {
    const dest = await newOciReference(await tempDir(), 'v1').newImageDestination({});
    const image = await makeImage('a');
    await expect(dest.putManifest(image.manifest, computeDigest('other'))).rejects.toThrow(
      DigestMismatchError,
    );
  });

  it('refuses signatures', async () => {
    const dest = await newOciReference(await tempDir(), 'v1').newImageDestination({});
    await expect(
      dest.putSignatures([{ format: 'simple-signing', bytes: new Uint8Array([1]) }]),
    ).rejects.toThrow(NotSupportedError);
    await expect(dest.putSignatures([])).resolves.toBeUndefined();
  });

  it('states its capabilities as containers/image does', async () => {
    const dest = await newOciReference(await tempDir(), 'v1').newImageDestination({});
    expect(dest.supportedManifestMediaTypes).toEqual([MediaTypes.ociManifest, MediaTypes.ociIndex]);
    expect(dest.desiredLayerCompression).toBe('compress');
    expect([dest.supportsSignatures, dest.mustMatchRuntimeOS, dest.hasThreadSafePutBlob]).toEqual([
      false,
      false,
      true,
    ]);
  });

  it('records only the index of a multi-platform image in index.json', async () => {
    const dir = await tempDir();
    const amd = await makeImage('amd', 1, 'amd64');
    const arm = await makeImage('arm', 1, 'arm64');
    const index = makeIndex([amd, arm]);
    const dest = await newOciReference(dir, 'multi').newImageDestination({});
    await putImage(dest, amd, true);
    await putImage(dest, arm, true);
    await dest.putManifest(index.bytes);
    await dest.commit();
    const entries = (await readIndex(dir)).manifests;
    expect(entries.map((m) => [m.mediaType, m.digest])).toEqual([[MediaTypes.ociIndex, index.digest]]);
  });

  it('refuses a layout path that is a file', async () => {
    const file = join(await tempDir(), 'file');
    await writeFile(file, 'not a layout');
    await expect(newOciReference(file, 'v1').newImageDestination({})).rejects.toThrow(InvalidLayoutError);
  });

  it('refuses a layout whose index.json is not JSON', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'index.json'), '{oops');
    await expect(newOciReference(dir, 'v1').newImageDestination({})).rejects.toThrow(
      /index.json is not valid JSON/,
    );
  });

  it('refuses a destination chosen by position', async () => {
    await expect(newOciIndexReference(await tempDir(), 0).newImageDestination({})).rejects.toThrow(
      /by position/,
    );
  });

  it('asks for layers as they come with acceptUncompressedLayers', async () => {
    const ctx = { transportOptions: { oci: { acceptUncompressedLayers: true } } };
    const dest = await newOciReference(await tempDir(), 'v1').newImageDestination(ctx);
    expect(dest.desiredLayerCompression).toBe('preserve');
  });

  it('refuses malformed transport options', async () => {
    const ctx = { transportOptions: { oci: { sharedBlobDir: 42 } } };
    await expect(newOciReference(await tempDir(), 'v1').newImageDestination(ctx)).rejects.toThrow(TypeError);
  });

  it('keeps both tags when two commits into one layout run at the same time', async () => {
    const dir = await tempDir();
    const [a, b] = [await makeImage('a'), await makeImage('b')];
    const destA = await newOciReference(dir, 'a').newImageDestination({});
    const destB = await newOciReference(dir, 'b').newImageDestination({});
    await putImage(destA, a);
    await putImage(destB, b);
    await Promise.all([destA.commit(), destB.commit()]);
    const names = (await readIndex(dir)).manifests.map((m) => [
      m.annotations?.['org.opencontainers.image.ref.name'],
      m.digest,
    ]);
    expect(names.sort()).toEqual([
      ['a', a.digest],
      ['b', b.digest],
    ]);
    expect(await readdir(dir)).not.toContain('index.json.lock');
  });

  it('keeps unknown fields of index.json when it adds an entry', async () => {
    const dir = await tempDir();
    await writeTagged(dir, 'v1');
    const index = await readIndex(dir);
    await writeFile(join(dir, 'index.json'), JSON.stringify({ ...index, annotations: { keep: 'me' } }));
    await writeTagged(dir, 'v2');
    expect(JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')).annotations).toEqual({ keep: 'me' });
  });
});

describe('oci: alreadyContainsManifest', () => {
  it('is true for the tag, digest and blobs already present', async () => {
    const dir = await tempDir();
    const image = await writeTagged(dir, 'v1');
    const dest = await newOciReference(dir, 'v1').newImageDestination({});
    expect(await dest.alreadyContainsManifest!(image.digest, image.manifest)).toEqual({ present: true });
  });

  it('is false under another tag', async () => {
    const dir = await tempDir();
    const image = await writeTagged(dir, 'v1');
    const dest = await newOciReference(dir, 'v2').newImageDestination({});
    expect((await dest.alreadyContainsManifest!(image.digest, image.manifest)).present).toBe(false);
  });

  it('is true for an unnamed reference when the only entry has the digest', async () => {
    const dir = await tempDir();
    const image = await writeTagged(dir, 'v1');
    const dest = await newOciReference(dir).newImageDestination({});
    expect((await dest.alreadyContainsManifest!(image.digest, image.manifest)).present).toBe(true);
  });

  it('is false for an unnamed reference into a layout of several images', async () => {
    const dir = await tempDir();
    const image = await writeTagged(dir, 'v1');
    await writeTagged(dir, 'v2');
    const dest = await newOciReference(dir).newImageDestination({});
    expect((await dest.alreadyContainsManifest!(image.digest, image.manifest)).present).toBe(false);
  });

  it('is false for an image a reader of the name would not get, and while the name is on several entries', async () => {
    const dir = await tempDir();
    const first = await writeTagged(dir, 'x', 'first');
    const second = await writeTagged(dir, 'y', 'second');
    // Both entries named x: a reader of x gets the first one.
    const index = await readIndex(dir);
    index.manifests[1]!.annotations = { 'org.opencontainers.image.ref.name': 'x' };
    await writeFile(join(dir, 'index.json'), JSON.stringify(index));
    const dest = await newOciReference(dir, 'x').newImageDestination({});
    expect((await dest.alreadyContainsManifest!(second.digest, second.manifest)).present).toBe(false);
    expect((await dest.alreadyContainsManifest!(first.digest, first.manifest)).present).toBe(false);
  });

  it('is false when the tag points at another digest', async () => {
    const dir = await tempDir();
    await writeTagged(dir, 'v1');
    const other = await makeImage('other');
    const dest = await newOciReference(dir, 'v1').newImageDestination({});
    expect((await dest.alreadyContainsManifest!(other.digest, other.manifest)).present).toBe(false);
  });

  it('is false when a layer blob is missing', async () => {
    const dir = await tempDir();
    const image = await writeTagged(dir, 'v1');
    await rm(join(dir, 'blobs', 'sha256', image.layers[1]!.digest.slice(7)));
    const dest = await newOciReference(dir, 'v1').newImageDestination({});
    expect((await dest.alreadyContainsManifest!(image.digest, image.manifest)).present).toBe(false);
  });

  it('is false when the config blob has the wrong size', async () => {
    const dir = await tempDir();
    const image = await writeTagged(dir, 'v1');
    await writeFile(join(dir, 'blobs', 'sha256', image.config.digest.slice(7)), '{}');
    const dest = await newOciReference(dir, 'v1').newImageDestination({});
    expect((await dest.alreadyContainsManifest!(image.digest, image.manifest)).present).toBe(false);
  });

  it('is false for a layout without index.json', async () => {
    const image = await makeImage('a');
    const dest = await newOciReference(await tempDir(), 'v1').newImageDestination({});
    expect((await dest.alreadyContainsManifest!(image.digest, image.manifest)).present).toBe(false);
  });

  it('follows the instances of an index and is false when one of their layers is missing', async () => {
    const dir = await tempDir();
    const amd = await makeImage('amd', 1, 'amd64');
    const arm = await makeImage('arm', 1, 'arm64');
    const index = makeIndex([amd, arm]);
    const dest = await newOciReference(dir, 'multi').newImageDestination({});
    await putImage(dest, amd, true);
    await putImage(dest, arm, true);
    await dest.putManifest(index.bytes);
    await dest.commit();
    const check = await newOciReference(dir, 'multi').newImageDestination({});
    expect((await check.alreadyContainsManifest!(index.digest, index.bytes)).present).toBe(true);
    await rm(join(dir, 'blobs', 'sha256', arm.layers[0]!.digest.slice(7)));
    expect((await check.alreadyContainsManifest!(index.digest, index.bytes)).present).toBe(false);
  });
});
