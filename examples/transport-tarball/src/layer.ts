import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type * as ImgCore from '@img/core';
import type { TarballCore } from './core.js';

/** OCI media types of the layer blobs this transport produces. */
export const layerMediaType = {
  plain: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

/** One tarball as a layer: the file's bytes are the blob, unchanged. */
export interface TarballLayer {
  path: string;
  /** The digest and size of the file: the blob. */
  digest: ImgCore.Digest;
  size: number;
  /** The digest of the uncompressed tar: the config's diff_id. */
  diffID: ImgCore.Digest;
  compression: 'plain' | 'gzip';
  /** The file's modification time, the image's creation time. */
  mtime: Date;
}

const blockSize = 512;

/**
 * Whether a 512-byte block starts a tar archive: an all-zero block (an empty archive) or a header
 * whose checksum (the byte sum with the checksum field read as spaces) matches its octal field.
 */
export function isTarHeader(block: Uint8Array): boolean {
  if (block.length < blockSize) return false;
  if (block.every((b) => b === 0)) return true;
  const field = Buffer.from(block.subarray(148, 156))
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < blockSize; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum === Number.parseInt(field, 8);
}

/**
 * Reads a tarball once: the digest and size of its bytes, whether it is gzip-compressed, and the
 * digest of the tar inside. Fails with ManifestUnknownError when the file does not exist and with
 * InvalidLayoutError when it is neither a tar archive nor a gzip-compressed one.
 */
export async function readTarballLayer(
  core: TarballCore,
  path: string,
  imageName: string,
  signal?: AbortSignal,
): Promise<TarballLayer> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new core.ManifestUnknownError(imageName, { cause: error });
    }
    throw error;
  }
  if (!info.isFile()) throw new core.InvalidLayoutError(`${imageName}: ${path} is not a regular file`);

  const gzip = await startsWithGzipMagic(path);
  const blobHash = createHash('sha256');
  const tarHash = createHash('sha256');
  let size = 0;
  let first = Buffer.alloc(0);
  const countAndHash = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      blobHash.update(chunk);
      done(null, chunk);
    },
  });
  const tarSink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (first.length < blockSize)
        first = Buffer.concat([first, chunk.subarray(0, blockSize - first.length)]);
      tarHash.update(chunk);
      done();
    },
  });
  const input = createReadStream(path, signal ? { signal } : {});
  try {
    if (gzip) await pipeline(input, countAndHash, createGunzip(), tarSink);
    else await pipeline(input, countAndHash, tarSink);
  } catch (error) {
    if (gzip && String((error as { code?: unknown }).code).startsWith('Z_') && !signal?.aborted) {
      throw new core.InvalidLayoutError(`${imageName}: ${path} is not valid gzip data`, { cause: error });
    }
    throw error;
  }
  if (!isTarHeader(first)) {
    throw new core.InvalidLayoutError(
      `${imageName}: ${path} is not a tar archive (plain or gzip-compressed)`,
    );
  }
  return {
    path,
    digest: `sha256:${blobHash.digest('hex')}` as ImgCore.Digest,
    size,
    diffID: `sha256:${tarHash.digest('hex')}` as ImgCore.Digest,
    compression: gzip ? 'gzip' : 'plain',
    mtime: info.mtime,
  };
}

/** Whether a file starts with gzip's magic bytes. */
async function startsWithGzipMagic(path: string): Promise<boolean> {
  const file = await open(path, 'r');
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await file.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await file.close();
  }
}
