// Test-only helpers: real stores in temp dirs, images with every kind of tar entry, podman/skopeo runs.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { computeDigest, type Digest, MediaTypes } from '@img/core';
import { lsetxattr } from './native.js';
import { newStorageReference, type StorageReference } from './reference.js';

const run = promisify(execFile);

/** A temp store: a short graph root and run root under /tmp, and the flags podman needs for it. */
export interface TempStore {
  root: string;
  graphRoot: string;
  runRoot: string;
  driver: 'vfs' | 'overlay';
  spec: string;
  ref(name: string): StorageReference;
  podman(...args: string[]): Promise<string>;
  cleanup(): Promise<void>;
}

/** Makes an empty store in a temp dir; `cleanup` unmounts what podman left and removes it. */
export async function tempStore(driver: 'vfs' | 'overlay' = 'vfs'): Promise<TempStore> {
  const root = await mkdtemp('/tmp/ist-');
  const graphRoot = join(root, 'g');
  const runRoot = join(root, 'r');
  const base = ['--root', graphRoot, '--runroot', runRoot, '--storage-driver', driver];
  return {
    root,
    graphRoot,
    runRoot,
    driver,
    spec: `[${driver}@${graphRoot}+${runRoot}]`,
    ref: (name) => newStorageReference(name, undefined, { driver, graphRoot, runRoot }),
    podman: async (...args) => (await run('podman', [...base, ...args], { maxBuffer: 64 << 20 })).stdout,
    cleanup: async () => {
      await run('podman', [...base, 'image', 'unmount', '--all']).catch(() => {});
      for (const dir of [join(graphRoot, 'overlay'), graphRoot])
        await run('umount', ['-l', dir]).catch(() => {});
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Runs skopeo with its output returned. */
export async function skopeo(...args: string[]): Promise<string> {
  return (await run('skopeo', args, { maxBuffer: 64 << 20 })).stdout;
}

/** One blob of a built image. */
export interface BuiltBlob {
  bytes: Buffer;
  digest: Digest;
  diffID: Digest;
  mediaType: string;
}

/** An image built with GNU tar from real trees (shaped like @img/testing's TestImage). */
export interface BuiltImage {
  manifest: Buffer;
  manifestDigest: Digest;
  mediaType: string;
  config: Buffer;
  configDigest: Digest;
  layers: BuiltBlob[];
  blobs: Map<Digest, Buffer>;
}

async function tarTree(dir: string): Promise<Buffer> {
  const { stdout } = await run(
    'tar',
    [
      '--format=posix',
      '--xattrs',
      '--xattrs-include=user.*',
      '--numeric-owner',
      '--sort=name',
      '-C',
      dir,
      '-cf',
      '-',
      'data',
      'etc',
    ].filter((a) => a !== 'etc' || dir.endsWith('l0')),
    { encoding: 'buffer', maxBuffer: 64 << 20 },
  );
  return stdout;
}

/**
 * A 3-layer image: a base with a regular file, a hard link, a symlink, a fifo, a char device, a file
 * owned by 1234:5678, a user xattr, a non-UTF-8 name and a long name; then a whiteout; then an opaque
 * directory. Layers are gzip-compressed with zlib's defaults.
 */
export async function richImage(work: string): Promise<BuiltImage> {
  const l0 = join(work, 'l0');
  const d = join(l0, 'data');
  await mkdir(join(d, 'sub'), { recursive: true });
  await mkdir(join(l0, 'etc'), { recursive: true });
  await writeFile(join(d, 'hello.txt'), 'hello\n');
  await run('ln', [join(d, 'hello.txt'), join(d, 'hardlink')]);
  await symlink('hello.txt', join(d, 'link'));
  await writeFile(join(d, 'empty'), '');
  await writeFile(join(d, 'sub', 'big.txt'), 'x'.repeat(100_000));
  await writeFile(join(d, 'sub', 'old.txt'), 'old');
  await writeFile(join(d, 'owned'), 'owned');
  await run('chown', ['1234:5678', join(d, 'owned')]);
  await writeFile(join(d, 'xattr'), 'x');
  lsetxattr(Buffer.from(join(d, 'xattr')), 'user.test', Buffer.from('hello'));
  await writeFile(Buffer.from(`${d}/caf\xe9`, 'latin1'), 'café');
  await writeFile(join(d, `${'n'.repeat(150)}.txt`), 'long');
  await run('mkfifo', [join(d, 'fifo')]);
  await run('mknod', [join(d, 'nulldev'), 'c', '1', '3']);
  await writeFile(join(l0, 'etc', 'app.conf'), 'a=1\n');
  await run('chmod', ['4755', join(l0, 'etc', 'app.conf')]);

  const l1 = join(work, 'l1');
  await mkdir(join(l1, 'data'), { recursive: true });
  await writeFile(join(l1, 'data', '.wh.empty'), '');
  const l2 = join(work, 'l2');
  await mkdir(join(l2, 'data', 'sub'), { recursive: true });
  await writeFile(join(l2, 'data', 'sub', '.wh..wh..opq'), '');
  await writeFile(join(l2, 'data', 'sub', 'new.txt'), 'new');

  const tars = [await tarTree(l0), await tarTree(l1), await tarTree(l2)];
  return imageFromTars(tars);
}

/**
 * An OCI image from layer tars, with a config naming their diff IDs. Layers are gzip with zlib's
 * defaults unless `gzipLevel` says otherwise (another level stands for a foreign compressor: the
 * store cannot rebuild those bytes).
 */
export function imageFromTars(
  tars: Buffer[],
  labels: Record<string, string> = {},
  gzipLevel?: number,
): BuiltImage {
  const layers = tars.map((tar) => {
    const bytes = gzipLevel === undefined ? gzipSync(tar) : gzipSync(tar, { level: gzipLevel });
    return {
      bytes,
      digest: computeDigest(bytes),
      diffID: computeDigest(tar),
      mediaType: MediaTypes.ociLayerGzip,
    };
  });
  const config = Buffer.from(
    JSON.stringify({
      created: '2026-01-02T03:04:05Z',
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/usr/bin'], Labels: labels },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffID) },
      history: layers.map((_, i) => ({ created: '2026-01-02T03:04:05Z', created_by: `layer ${i}` })),
    }),
  );
  const configDigest = computeDigest(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: configDigest, size: config.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.bytes.length })),
    }),
  );
  const blobs = new Map<Digest, Buffer>([[configDigest, config]]);
  for (const l of layers) blobs.set(l.digest, l.bytes);
  return {
    manifest,
    manifestDigest: computeDigest(manifest),
    mediaType: MediaTypes.ociManifest,
    config,
    configDigest,
    layers,
    blobs,
  };
}

/** Writes an image as an OCI layout at `dir`, tagged `tag`. */
export async function writeOciLayout(dir: string, image: BuiltImage, tag: string): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const [digest, bytes] of [...image.blobs, [image.manifestDigest, image.manifest] as const]) {
    await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
  }
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: image.mediaType,
          digest: image.manifestDigest,
          size: image.manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
}
