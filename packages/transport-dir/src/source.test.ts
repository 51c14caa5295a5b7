import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BlobUnknownError,
  computeDigest,
  digestHex,
  type ImageSource,
  InvalidLayoutError,
  ManifestUnknownError,
  MediaTypes,
  maxManifestSize,
  NotSupportedError,
  TooLargeError,
} from '@img/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newDirReference } from './index.js';

const version = 'Directory Transport Version: 1.1\n';
const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
const configDigest = computeDigest(config);
const layer = Buffer.from('not really a tarball, but bytes are bytes');
const layerDigest = computeDigest(layer);
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaTypes.dockerV2Schema2,
    config: { mediaType: MediaTypes.dockerConfig, digest: configDigest, size: config.length },
    layers: [{ mediaType: MediaTypes.dockerLayerGzip, digest: layerDigest, size: layer.length }],
  }),
);
const manifestDigest = computeDigest(manifest);
const openPgp = (n: number) => Uint8Array.from([0xa3, 0x01, n]);

/** Writes a directory from an object of file name → content (changesets' testdir). */
async function testdir(dir: string, files: Record<string, string | Uint8Array>): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  return dir;
}

async function readAll(source: ImageSource, digest: `${string}:${string}`): Promise<Buffer> {
  const { stream } = await source.getBlob({ digest, size: -1 });
  return Buffer.concat(await stream.toArray());
}

describe('DirImageSource', () => {
  let tmp: string;
  let image: string;
  let source: ImageSource;

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'img-dir-src-'));
    image = await testdir(join(tmp, 'image'), {
      version,
      'manifest.json': manifest,
      [digestHex(configDigest)]: config,
      [digestHex(layerDigest)]: layer,
      'signature-1': openPgp(1),
      'signature-2': openPgp(2),
      // A gap: readers stop at the first missing number, so this one is never read.
      'signature-4': openPgp(4),
    });
    source = await newDirReference(image).newImageSource({});
  });

  afterEach(async () => {
    await source.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it('returns manifest.json byte for byte, with its media type guessed from the bytes', async () => {
    const got = await source.getManifest();
    expect(Buffer.from(got.bytes).equals(manifest)).toBe(true);
    expect(got.mediaType).toBe(MediaTypes.dockerV2Schema2);
    expect(computeDigest(got.bytes)).toBe(manifestDigest);
  });

  it('streams a blob named by its hex digest, with its size', async () => {
    const { stream, size } = await source.getBlob({ digest: layerDigest, size: -1 });
    expect(size).toBe(layer.length);
    expect(Buffer.concat(await stream.toArray()).equals(layer)).toBe(true);
  });

  it('fails with BlobUnknownError for a blob it does not have', async () => {
    const missing = computeDigest('missing');
    await expect(source.getBlob({ digest: missing, size: -1 })).rejects.toThrow(BlobUnknownError);
    await expect(source.getBlob({ digest: missing, size: -1 })).rejects.toThrow(
      `blob unknown: ${missing} in dir:${image}`,
    );
  });

  it('gives the path of a blob file for kernel-side copies', async () => {
    expect(await source.getBlobPath!({ digest: configDigest, size: -1 })).toBe(
      join(image, digestHex(configDigest)),
    );
  });

  it('reads signature-N in order up to the first missing one', async () => {
    const signatures = await source.getSignatures();
    expect(signatures).toEqual([
      { format: 'simple-signing', bytes: openPgp(1) },
      { format: 'simple-signing', bytes: openPgp(2) },
    ]);
  });

  it('says it may be read concurrently', () => {
    expect(source.hasThreadSafeGetBlob).toBe(true);
  });

  it('reads concurrent blobs correctly', async () => {
    const [a, b] = await Promise.all([readAll(source, configDigest), readAll(source, layerDigest)]);
    expect(a.equals(config) && b.equals(layer)).toBe(true);
  });
});

describe('DirImageSource on other layouts', () => {
  let tmp: string;
  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'img-dir-src-'));
  });
  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('reads an instance manifest and its signatures from <hex>.manifest.json and <hex>.signature-N', async () => {
    const hex = digestHex(manifestDigest);
    const dir = await testdir(join(tmp, 'list'), {
      version,
      [`${hex}.manifest.json`]: manifest,
      [`${hex}.signature-1`]: openPgp(7),
    });
    const source = await newDirReference(dir).newImageSource({});
    expect(Buffer.from((await source.getManifest(manifestDigest)).bytes).equals(manifest)).toBe(true);
    expect(await source.getSignatures(manifestDigest)).toEqual([
      { format: 'simple-signing', bytes: openPgp(7) },
    ]);
  });

  it('reads a sha512 blob from sha512-<hex>, as containers/image names non-sha256 digests', async () => {
    const digest = computeDigest(layer, 'sha512');
    const dir = await testdir(join(tmp, 'sha512'), {
      version: 'Directory Transport Version: 1.2\n',
      [`sha512-${digestHex(digest)}`]: layer,
    });
    const source = await newDirReference(dir).newImageSource({});
    expect((await readAll(source, digest)).equals(layer)).toBe(true);
  });

  it('reads a directory without a version file (written before version files existed)', async () => {
    const dir = await testdir(join(tmp, 'old'), { 'manifest.json': manifest });
    const source = await newDirReference(dir).newImageSource({});
    expect(Buffer.from((await source.getManifest()).bytes).equals(manifest)).toBe(true);
  });

  it('fails with ManifestUnknownError naming the reference for a directory without manifest.json', async () => {
    const dir = await testdir(join(tmp, 'empty'), { version });
    const source = await newDirReference(dir).newImageSource({});
    await expect(source.getManifest()).rejects.toThrow(ManifestUnknownError);
    await expect(source.getManifest()).rejects.toThrow(`manifest unknown: dir:${dir}`);
  });

  it('fails with ManifestUnknownError for an instance it does not have', async () => {
    const dir = await testdir(join(tmp, 'image'), { version, 'manifest.json': manifest });
    const source = await newDirReference(dir).newImageSource({});
    await expect(source.getManifest(computeDigest('other'))).rejects.toThrow(ManifestUnknownError);
  });

  it('refuses a manifest over 4 MiB with TooLargeError', async () => {
    const dir = await testdir(join(tmp, 'big'), {
      version,
      'manifest.json': Buffer.alloc(maxManifestSize + 1, 32),
    });
    const source = await newDirReference(dir).newImageSource({});
    await expect(source.getManifest()).rejects.toThrow(TooLargeError);
  });

  it('returns no signatures when there are none', async () => {
    const dir = await testdir(join(tmp, 'unsigned'), { version, 'manifest.json': manifest });
    const source = await newDirReference(dir).newImageSource({});
    expect(await source.getSignatures()).toEqual([]);
  });

  it('refuses a newer layout version with NotSupportedError', async () => {
    const dir = await testdir(join(tmp, 'future'), {
      version: 'Directory Transport Version: 1.3\n',
      'manifest.json': manifest,
    });
    await expect(newDirReference(dir).newImageSource({})).rejects.toThrow(NotSupportedError);
  });

  it('refuses a version file that is not one with InvalidLayoutError', async () => {
    const dir = await testdir(join(tmp, 'bogus'), { version: 'hello\n', 'manifest.json': manifest });
    await expect(newDirReference(dir).newImageSource({})).rejects.toThrow(InvalidLayoutError);
  });

  it('fails with InvalidLayoutError for a signature file in no known format', async () => {
    const dir = await testdir(join(tmp, 'badsig'), {
      version,
      'manifest.json': manifest,
      'signature-1': 'hello',
    });
    const source = await newDirReference(dir).newImageSource({});
    await expect(source.getSignatures()).rejects.toThrow(InvalidLayoutError);
  });
});
