import { spawnSync } from 'node:child_process';
import { mkdir, open, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  computeDigest,
  DigestingStream,
  InvalidLayoutError,
  ManifestUnknownError,
  MediaTypes,
  type SystemContext,
} from '@img/core';
import { pack } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { newOciArchiveReference } from './index.js';
import { scanTar } from './tar.js';
import { makeImage, makeTar, putImage, readAll, type TestImage, useTempDirs } from './test-helpers.js';

const tempDir = useTempDirs();

async function writeArchive(file: string, tag: string, image: TestImage, ctx: SystemContext = {}) {
  const dest = await newOciArchiveReference(file, tag).newImageDestination(ctx);
  await putImage(dest, image);
  await dest.commit();
  await dest.close();
}

async function entryNames(file: string): Promise<string[]> {
  const handle = await open(file, 'r');
  try {
    const names: string[] = [];
    for await (const entry of scanTar(handle)) names.push(entry.name);
    return names;
  } finally {
    await handle.close();
  }
}

describe('oci-archive:', () => {
  it('reads back what it wrote, byte for byte and digest-verified', async () => {
    const file = join(await tempDir(), 'image.tar');
    const image = await makeImage('app');
    await writeArchive(file, 'v1', image);
    const src = await newOciArchiveReference(file, 'v1').newImageSource({ tmpDir: await tempDir() });
    try {
      const manifest = await src.getManifest();
      expect(Buffer.from(manifest.bytes)).toEqual(image.manifest);
      expect(manifest.mediaType).toBe(MediaTypes.ociManifest);
      for (const blob of [...image.layers, image.config]) {
        const { stream } = await src.getBlob({ digest: blob.digest, size: blob.bytes.length });
        const bytes = await readAll(stream.pipe(new DigestingStream({ expectedDigest: blob.digest })));
        expect(bytes).toEqual(blob.bytes);
      }
    } finally {
      await src.close();
    }
  });

  it('writes oci-layout and index.json first, then the blobs', async () => {
    const file = join(await tempDir(), 'image.tar');
    const image = await makeImage('app', 1);
    await writeArchive(file, 'v1', image);
    const blobs = [image.digest, image.config.digest, image.layers[0]!.digest]
      .map((d) => `blobs/sha256/${d.slice(7)}`)
      .sort();
    expect(await entryNames(file)).toEqual(['oci-layout', 'index.json', 'blobs/', 'blobs/sha256/', ...blobs]);
  });

  it('writes the same bytes for the same image', async () => {
    const dir = await tempDir();
    const image = await makeImage('app');
    await writeArchive(join(dir, 'a.tar'), 'v1', image);
    await writeArchive(join(dir, 'b.tar'), 'v1', image);
    expect(await readFile(join(dir, 'a.tar'))).toEqual(await readFile(join(dir, 'b.tar')));
  });

  it('replaces the archive with one holding only the image written', async () => {
    const file = join(await tempDir(), 'image.tar');
    await writeArchive(file, 'v1', await makeImage('first'));
    const second = await makeImage('second');
    await writeArchive(file, 'v2', second);
    const src = await newOciArchiveReference(file).newImageSource({});
    try {
      expect(computeDigest((await src.getManifest()).bytes)).toBe(second.digest);
    } finally {
      await src.close();
    }
    await expect(newOciArchiveReference(file, 'v1').newImageSource({})).rejects.toThrow(ManifestUnknownError);
  });

  it('reuses a blob of the archive it replaces by copying it from there', async () => {
    const file = join(await tempDir(), 'image.tar');
    const image = await makeImage('app');
    await writeArchive(file, 'v1', image);
    const dest = await newOciArchiveReference(file, 'v2').newImageDestination({});
    try {
      const layer = image.layers[0]!;
      const reused = await dest.tryReusingBlob({ digest: layer.digest, size: layer.bytes.length });
      expect(reused).toEqual({ digest: layer.digest, size: layer.bytes.length });
      for (const other of [image.layers[1]!, image.config]) {
        expect(await dest.tryReusingBlob({ digest: other.digest, size: other.bytes.length })).toBeDefined();
      }
      await dest.putManifest(image.manifest);
      await dest.commit();
    } finally {
      await dest.close();
    }
    const src = await newOciArchiveReference(file, 'v2').newImageSource({});
    try {
      const { stream } = await src.getBlob({ digest: image.layers[0]!.digest, size: -1 });
      expect(await readAll(stream)).toEqual(image.layers[0]!.bytes);
    } finally {
      await src.close();
    }
  });

  it('does not reuse a blob whose copy in the archive does not match its digest', async () => {
    const file = join(await tempDir(), 'bad.tar');
    const image = await makeImage('app');
    const layer = image.layers[0]!;
    const forged = 'x'.repeat(layer.bytes.length);
    await writeFile(file, await makeTar({ [`blobs/sha256/${layer.digest.slice(7)}`]: forged }));
    const dest = await newOciArchiveReference(file, 'v1').newImageDestination({});
    try {
      expect(await dest.tryReusingBlob({ digest: layer.digest, size: layer.bytes.length })).toBeUndefined();
    } finally {
      await dest.close();
    }
  });

  it('leaves no archive and no temp files when closed without commit', async () => {
    const dir = await tempDir();
    const tmpDir = await tempDir();
    const dest = await newOciArchiveReference(join(dir, 'image.tar'), 'v1').newImageDestination({ tmpDir });
    await putImage(dest, await makeImage('app'));
    await dest.close();
    expect(await readdir(dir)).toEqual([]);
    expect(await readdir(tmpDir)).toEqual([]);
  });

  it('rejects a commit that fails while packing, leaving no temp file beside the archive, and close removes the temp dir', async () => {
    const dir = await tempDir();
    const tmpDir = await tempDir();
    const image = await makeImage('app');
    const dest = await newOciArchiveReference(join(dir, 'image.tar'), 'v1').newImageDestination({ tmpDir });
    await putImage(dest, image);
    // The layer in the temp layout becomes unreadable, so packing fails in the middle of the archive.
    const [staging] = await readdir(tmpDir);
    const layer = join(tmpDir, staging!, 'blobs', 'sha256', image.layers[1]!.digest.slice(7));
    await rm(layer);
    await mkdir(layer);
    await expect(dest.commit()).rejects.toMatchObject({ code: 'EISDIR' });
    expect(await readdir(dir)).toEqual([]);
    await dest.close();
    expect(await readdir(tmpDir)).toEqual([]);
  });

  it('leaves the archive as it was when committed without a manifest', async () => {
    const file = join(await tempDir(), 'image.tar');
    await writeArchive(file, 'v1', await makeImage('app'));
    const before = await readFile(file);
    const dest = await newOciArchiveReference(file, 'v1').newImageDestination({});
    await dest.commit();
    await dest.close();
    expect(await readFile(file)).toEqual(before);
  });

  it('unpacks into ctx.tmpDir and removes the directory on close', async () => {
    const file = join(await tempDir(), 'image.tar');
    await writeArchive(file, 'v1', await makeImage('app'));
    const tmpDir = await tempDir();
    const src = await newOciArchiveReference(file, 'v1').newImageSource({ tmpDir });
    expect(await readdir(tmpDir)).toHaveLength(1);
    await src.close();
    expect(await readdir(tmpDir)).toEqual([]);
  });

  it('names its temp dir with its pid and, on open, removes only the temp dirs of processes gone', async () => {
    const file = join(await tempDir(), 'image.tar');
    await writeArchive(file, 'v1', await makeImage('app'));
    const tmpDir = await tempDir();
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    const left = [`img-oci-archive-${process.ppid}-aB3dE6`, 'img-oci-archive-aB3dE6', 'unrelated'];
    for (const name of [`img-oci-archive-${dead}-aB3dE6`, ...left]) {
      await mkdir(join(tmpDir, name, 'blobs'), { recursive: true });
    }
    const src = await newOciArchiveReference(file, 'v1').newImageSource({ tmpDir });
    try {
      const names = await readdir(tmpDir);
      expect(names.filter((n) => !left.includes(n))).toEqual([
        expect.stringMatching(new RegExp(`^img-oci-archive-${process.pid}-[A-Za-z0-9]{6}$`)),
      ]);
      expect(names).toEqual(expect.arrayContaining(left));
    } finally {
      await src.close();
    }
    const dest = await newOciArchiveReference(file, 'v1').newImageDestination({ tmpDir });
    await dest.close();
    expect((await readdir(tmpDir)).sort()).toEqual([...left].sort());
  });

  it('fails with ManifestUnknownError for an archive that does not exist', async () => {
    const file = join(await tempDir(), 'missing.tar');
    await expect(newOciArchiveReference(file).newImageSource({})).rejects.toThrow(ManifestUnknownError);
  });

  it('fails with InvalidLayoutError for a file that is not a tar, and cleans up', async () => {
    const file = join(await tempDir(), 'junk.tar');
    await writeFile(file, 'x'.repeat(2048));
    const tmpDir = await tempDir();
    await expect(newOciArchiveReference(file).newImageSource({ tmpDir })).rejects.toThrow(InvalidLayoutError);
    expect(await readdir(tmpDir)).toEqual([]);
  });

  it('fails with InvalidLayoutError when the archive path is a directory', async () => {
    const dir = await tempDir();
    await expect(newOciArchiveReference(dir).newImageSource({})).rejects.toThrow(/is a directory/);
    await expect(newOciArchiveReference(dir, 'v1').newImageDestination({})).rejects.toThrow(
      InvalidLayoutError,
    );
  });

  it('does not write entries that would land outside the unpack directory', async () => {
    const base = await tempDir();
    const file = join(base, 'evil.tar');
    await mkdir(join(base, 'unpack'));
    await writeFile(
      file,
      await makeTar({ '../escaped': 'x', 'oci-layout': '{"imageLayoutVersion":"1.0.0"}' }),
    );
    await expect(
      newOciArchiveReference(file).newImageSource({ tmpDir: join(base, 'unpack') }),
    ).rejects.toThrow(/no index.json/);
    expect((await readdir(base)).sort()).toEqual(['evil.tar', 'unpack']);
  });

  it('fails with InvalidLayoutError naming the archive and the entry when an entry lies under a file', async () => {
    const file = join(await tempDir(), 'notdir.tar');
    await writeFile(
      file,
      await makeTar({ 'oci-layout': '{"imageLayoutVersion":"1.0.0"}', blobs: 'x', 'blobs/sha256/aa': 'y' }),
    );
    const tmpDir = await tempDir();
    const error = await newOciArchiveReference(file)
      .newImageSource({ tmpDir })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidLayoutError);
    expect((error as Error).message).toBe(
      `invalid OCI archive "${file}": cannot unpack "blobs/sha256": ENOTDIR: not a directory`,
    );
    expect((error as Error).cause).toMatchObject({ code: 'ENOTDIR' });
    expect(await readdir(tmpDir)).toEqual([]);
  });

  it('fails with InvalidLayoutError naming the archive when a hard link points at a missing entry', async () => {
    const file = join(await tempDir(), 'link.tar');
    const archive = pack();
    archive.entry({ name: 'oci-layout', mtime: new Date(0) }, '{"imageLayoutVersion":"1.0.0"}');
    archive.entry({
      name: 'blobs/sha256/aa',
      type: 'link',
      linkname: 'blobs/sha256/later',
      mtime: new Date(0),
    });
    archive.finalize();
    await writeFile(file, await readAll(Readable.from(archive)));
    const tmpDir = await tempDir();
    const error = await newOciArchiveReference(file)
      .newImageSource({ tmpDir })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidLayoutError);
    expect((error as Error).message).toBe(
      `invalid OCI archive "${file}": cannot unpack "blobs/sha256/later": ENOENT: no such file or directory`,
    );
    expect((error as Error).cause).toMatchObject({ code: 'ENOENT' });
    expect(await readdir(tmpDir)).toEqual([]);
  });

  it('names the archive, not the temp directory, in layout errors', async () => {
    const file = join(await tempDir(), 'partial.tar');
    await writeFile(file, await makeTar({ 'index.json': '{"schemaVersion":2,"manifests":[]}' }));
    await expect(newOciArchiveReference(file).newImageSource({})).rejects.toThrow(
      `invalid OCI layout "${file}": there is no oci-layout file`,
    );
  });
});

describe('oci-archive: alreadyContainsManifest', () => {
  it('is true when the archive holds the name, digest and blobs', async () => {
    const file = join(await tempDir(), 'image.tar');
    const image = await makeImage('app');
    await writeArchive(file, 'v1', image);
    const dest = await newOciArchiveReference(file, 'v1').newImageDestination({});
    try {
      expect(await dest.alreadyContainsManifest!(image.digest, image.manifest)).toEqual({ present: true });
    } finally {
      await dest.close();
    }
  });

  it('is false under another name', async () => {
    const file = join(await tempDir(), 'image.tar');
    const image = await makeImage('app');
    await writeArchive(file, 'v1', image);
    const dest = await newOciArchiveReference(file, 'v2').newImageDestination({});
    try {
      expect((await dest.alreadyContainsManifest!(image.digest, image.manifest)).present).toBe(false);
    } finally {
      await dest.close();
    }
  });

  it('is false when there is no archive yet', async () => {
    const image = await makeImage('app');
    const dest = await newOciArchiveReference(join(await tempDir(), 'new.tar'), 'v1').newImageDestination({});
    try {
      expect((await dest.alreadyContainsManifest!(image.digest, image.manifest)).present).toBe(false);
    } finally {
      await dest.close();
    }
  });

  it('is false for a file that is not a tar', async () => {
    const file = join(await tempDir(), 'junk.tar');
    await writeFile(file, 'x'.repeat(4096));
    const image = await makeImage('app');
    const dest = await newOciArchiveReference(file, 'v1').newImageDestination({});
    try {
      expect((await dest.alreadyContainsManifest!(image.digest, image.manifest)).present).toBe(false);
    } finally {
      await dest.close();
    }
  });

  it('is false for an archive cut short in the middle of its last blob', async () => {
    const file = join(await tempDir(), 'image.tar');
    const image = await makeImage('app');
    await writeArchive(file, 'v1', image);
    const handle = await open(file, 'r');
    let last: { offset: number; size: number } | undefined;
    try {
      for await (const entry of scanTar(handle)) last = entry;
    } finally {
      await handle.close();
    }
    await truncate(file, last!.offset + Math.floor(last!.size / 2));
    const dest = await newOciArchiveReference(file, 'v1').newImageDestination({});
    try {
      expect((await dest.alreadyContainsManifest!(image.digest, image.manifest)).present).toBe(false);
    } finally {
      await dest.close();
    }
  });

  it('is false for an unnamed reference into an archive of two images', async () => {
    const file = join(await tempDir(), 'two.tar');
    const a = await makeImage('a', 1);
    const b = await makeImage('b', 1);
    const entry = (image: TestImage, name: string) => ({
      mediaType: MediaTypes.ociManifest,
      digest: image.digest,
      size: image.manifest.length,
      annotations: { 'org.opencontainers.image.ref.name': name },
    });
    const blobs: Record<string, Buffer> = {};
    for (const image of [a, b]) {
      for (const blob of [image.config, ...image.layers])
        blobs[`blobs/sha256/${blob.digest.slice(7)}`] = blob.bytes;
      blobs[`blobs/sha256/${image.digest.slice(7)}`] = image.manifest;
    }
    await writeFile(
      file,
      await makeTar({
        'oci-layout': '{"imageLayoutVersion":"1.0.0"}',
        'index.json': JSON.stringify({ schemaVersion: 2, manifests: [entry(a, 'a'), entry(b, 'b')] }),
        ...blobs,
      }),
    );
    const dest = await newOciArchiveReference(file).newImageDestination({});
    try {
      expect((await dest.alreadyContainsManifest!(a.digest, a.manifest)).present).toBe(false);
    } finally {
      await dest.close();
    }
    const named = await newOciArchiveReference(file, 'a').newImageDestination({});
    try {
      expect((await named.alreadyContainsManifest!(a.digest, a.manifest)).present).toBe(true);
    } finally {
      await named.close();
    }
  });

  it('is false when the archive lacks a layer the manifest needs', async () => {
    const file = join(await tempDir(), 'image.tar');
    const image = await makeImage('app');
    const layer = image.layers[0]!;
    const index = {
      schemaVersion: 2,
      manifests: [
        {
          mediaType: MediaTypes.ociManifest,
          digest: image.digest,
          size: image.manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': 'v1' },
        },
      ],
    };
    await writeFile(
      file,
      await makeTar({
        'oci-layout': '{"imageLayoutVersion":"1.0.0"}',
        'index.json': JSON.stringify(index),
        [`blobs/sha256/${image.digest.slice(7)}`]: image.manifest.toString(),
        [`blobs/sha256/${image.config.digest.slice(7)}`]: image.config.bytes.toString(),
        [`blobs/sha256/${layer.digest.slice(7)}`]: 'not the layer',
      }),
    );
    const dest = await newOciArchiveReference(file, 'v1').newImageDestination({});
    try {
      expect((await dest.alreadyContainsManifest!(image.digest, image.manifest)).present).toBe(false);
    } finally {
      await dest.close();
    }
  });
});
