import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { CompressionName } from '../blob-info-cache.js';
import type { Digest } from '../digest.js';

/** node:zlib, loaded when first used: ~2 ms of start-up that a copy moving no blob need not pay. */
export const zlib = (): typeof import('node:zlib') => process.getBuiltinModule('node:zlib');

/** The compression of a blob from its first bytes (gzip and zstd magic numbers). */
export function sniffCompression(head: Uint8Array): CompressionName {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd)
    return 'zstd';
  return 'none';
}

/**
 * A pass-through that also computes the digest of the decompressed bytes (a layer's DiffID) on the
 * side; `uncompressedDigest` resolves once the stream has ended. For an uncompressed input it is the
 * digest of the bytes themselves.
 */
export class UncompressedDigester extends Transform {
  private readonly hash = createHash('sha256');
  private readonly gunzip;
  private readonly done: Promise<void>;
  uncompressedDigest: Digest | undefined;

  constructor(compressed: boolean) {
    super();
    this.gunzip = compressed ? zlib().createGunzip() : undefined;
    if (this.gunzip) {
      const g = this.gunzip;
      g.on('data', (chunk: Buffer) => this.hash.update(chunk));
      this.done = new Promise((resolve, reject) => {
        g.on('end', resolve);
        g.on('error', reject);
      });
      // Handled at flush; until then a rejection must not count as unhandled. A corrupt stream also
      // fails the copy at once rather than at its end.
      this.done.catch(() => {});
      g.on('error', (error) => this.destroy(error));
    } else {
      this.done = Promise.resolve();
    }
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.gunzip) this.gunzip.write(chunk);
    else this.hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.gunzip?.end();
    this.done.then(
      () => {
        this.uncompressedDigest = `sha256:${this.hash.digest('hex')}`;
        callback();
      },
      (error: Error) => callback(error),
    );
  }
}
