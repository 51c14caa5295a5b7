import { createHash } from 'node:crypto';
import { PassThrough, type Readable, Transform, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { CompressionName } from '../blob-info-cache.js';
import type { Digest } from '../digest.js';

/** The compression of a blob from its first bytes (gzip and zstd magic numbers). */
export function sniffCompression(head: Uint8Array): CompressionName {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd)
    return 'zstd';
  return 'none';
}

/**
 * Reads the first bytes of a stream to tell its compression, and returns a stream that still yields
 * every byte (the peeked ones first).
 */
export async function peekCompression(
  stream: Readable,
): Promise<{ compression: CompressionName; stream: Readable }> {
  const iterator = stream[Symbol.asyncIterator]();
  const first = await iterator.next();
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  if (first.done) {
    out.end();
    return { compression: 'none', stream: out };
  }
  const head = first.value as Buffer;
  const forward = async () => {
    out.write(head);
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      if (!out.write(next.value)) await new Promise((resolve) => out.once('drain', resolve));
    }
    out.end();
  };
  forward().catch((error: unknown) => out.destroy(error as Error));
  return { compression: sniffCompression(head), stream: out };
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
    this.gunzip = compressed ? createGunzip() : undefined;
    if (this.gunzip) {
      const g = this.gunzip;
      g.on('data', (chunk: Buffer) => this.hash.update(chunk));
      this.done = new Promise((resolve, reject) => {
        g.on('end', resolve);
        g.on('error', reject);
      });
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
