import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DigestingStream } from './digest.js';
import { DigestMismatchError, SizeMismatchError } from './errors.js';
import { offloadedHash } from './hash-pool.js';

/** `bytes` cut into chunks of uneven sizes (1 byte up to 300 KiB), none aligned to a batch. */
function unevenChunks(bytes: Buffer): Buffer[] {
  const sizes = [1, 7, 65536, 300 << 10, 4095, 131072 + 3];
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, bytes.length - at);
    chunks.push(bytes.subarray(at, at + n));
    at += n;
  }
  return chunks;
}

const sha256 = (bytes: Buffer, algorithm = 'sha256') =>
  `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}` as const;

async function feed(bytes: Buffer, algorithm: 'sha256' | 'sha512' = 'sha256'): Promise<string> {
  const hash = await offloadedHash(algorithm);
  for (const chunk of unevenChunks(bytes)) await hash.update(chunk);
  return `${algorithm}:${await hash.digest()}`;
}

describe('offloadedHash', () => {
  it('gives the digest of every byte, across batch boundaries, for sha256 and sha512', async () => {
    const bytes = randomBytes((5 << 20) + 12345);
    expect(await feed(bytes)).toBe(sha256(bytes));
    expect(await feed(bytes, 'sha512')).toBe(sha256(bytes, 'sha512'));
  });

  it('keeps concurrent streams apart on the one worker', async () => {
    const inputs = [randomBytes(3 << 20), randomBytes(1), Buffer.alloc(0), randomBytes((2 << 20) + 1)];
    const digests = await Promise.all(inputs.map((bytes) => feed(bytes)));
    expect(digests).toEqual(inputs.map((bytes) => sha256(bytes)));
  });

  it('is not affected by later writes to a chunk it was given (each chunk is copied at once)', async () => {
    const bytes = randomBytes(1 << 20);
    const expected = sha256(bytes);
    const hash = await offloadedHash('sha256');
    await hash.update(bytes);
    bytes.fill(0);
    expect(`sha256:${await hash.digest()}`).toBe(expected);
  });

  it('makes the caller wait once a few batches are in flight, and never loses one', async () => {
    const hash = await offloadedHash('sha256');
    const bytes = randomBytes(8 << 20);
    let waits = 0;
    for (let at = 0; at < bytes.length; at += 1 << 20) {
      const behind = hash.update(bytes.subarray(at, at + (1 << 20)));
      if (behind !== undefined) {
        waits++;
        await behind;
      }
    }
    expect(waits).toBeGreaterThan(0);
    expect(`sha256:${await hash.digest()}`).toBe(sha256(bytes));
  });

  it('lets the process exit when a stream is abandoned mid-way', async () => {
    // A child process that starts a hash, abandons it without a digest, and has nothing else to do.
    const url = new URL('../dist/index.js', import.meta.url).href;
    const script = `
      const { offloadedHash } = await import(${JSON.stringify(url)});
      const a = await offloadedHash('sha256');
      await a.update(Buffer.alloc(3 << 20, 1));
      const b = await offloadedHash('sha256');
      b.update(Buffer.alloc(100, 2));
      b.dispose();
      console.log('done');
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      timeout: 20_000,
    });
    expect(stdout.trim()).toBe('done');
  });
});

describe('DigestingStream with an offloaded hash', () => {
  it('passes every byte on unchanged and verifies the digest', async () => {
    const bytes = randomBytes((3 << 20) + 77);
    const stream = new DigestingStream({
      expectedDigest: sha256(bytes),
      expectedSize: bytes.length,
      hash: await offloadedHash('sha256'),
    });
    const out: Buffer[] = [];
    await pipeline(Readable.from(unevenChunks(bytes)), stream, async (source) => {
      for await (const chunk of source) out.push(chunk as Buffer);
    });
    expect(Buffer.concat(out).equals(bytes)).toBe(true);
    expect(stream.digest).toBe(sha256(bytes));
  });

  it('fails before its end when one byte differs', async () => {
    const bytes = randomBytes(2 << 20);
    const expected = sha256(bytes);
    bytes[bytes.length - 1]! ^= 1;
    const stream = new DigestingStream({
      expectedDigest: expected,
      expectedSize: bytes.length,
      hash: await offloadedHash('sha256'),
    });
    let ended = false;
    await expect(
      pipeline(Readable.from(unevenChunks(bytes)), stream, async (source) => {
        for await (const _ of source);
        ended = true;
      }),
    ).rejects.toBeInstanceOf(DigestMismatchError);
    expect(ended).toBe(false);
  });

  it('fails at once on more bytes than expected', async () => {
    const bytes = randomBytes(2 << 20);
    const stream = new DigestingStream({
      expectedDigest: sha256(bytes),
      expectedSize: bytes.length - 1,
      hash: await offloadedHash('sha256'),
    });
    await expect(
      pipeline(Readable.from(unevenChunks(bytes)), stream, async (source) => {
        for await (const _ of source);
      }),
    ).rejects.toBeInstanceOf(SizeMismatchError);
  });
});
