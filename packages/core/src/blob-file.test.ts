import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyBlobFile, removeStaleTempFiles, tempPathFor, writeBatched, writeBlobFile } from './blob-file.js';
import { computeDigest, DigestingStream, markVerified, verifiedDigestOf } from './digest.js';
import { DigestMismatchError, SizeMismatchError } from './errors.js';
import { offloadedHashThreshold, workerHashThreshold } from './hash-pool.js';

describe('blob files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'img-blob-file-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  for (const [label, size] of [
    ['small', 4096],
    ['large (hashed on a worker)', workerHashThreshold + 12345],
  ] as const) {
    it(`copies a ${label} blob file byte for byte after verifying it`, async () => {
      const bytes = randomBytes(size);
      const source = join(dir, `source-${size}`);
      await writeFile(source, bytes);
      const target = join(dir, `copy-${size}`);
      let progress = 0;
      const info = await copyBlobFile(
        source,
        target,
        { digest: computeDigest(bytes), size },
        {
          onProgress: (n) => {
            progress = n;
          },
        },
      );
      expect(info).toEqual({ digest: computeDigest(bytes), size });
      expect((await readFile(target)).equals(bytes)).toBe(true);
      expect(progress).toBeGreaterThan(0);
    });

    it(`refuses a ${label} blob file whose digest differs and leaves nothing behind`, async () => {
      const bytes = randomBytes(size);
      const source = join(dir, `bad-${size}`);
      await writeFile(source, bytes);
      const target = join(dir, `bad-copy-${size}`);
      await expect(
        copyBlobFile(source, target, { digest: computeDigest('something else'), size }),
      ).rejects.toBeInstanceOf(DigestMismatchError);
      const left = (await readdir(dir)).filter((n) => n.startsWith(`bad-copy-${size}`));
      expect(left).toEqual([]);
    });

    it(`refuses a ${label} blob file of the wrong size`, async () => {
      const bytes = randomBytes(size);
      const source = join(dir, `short-${size}`);
      await writeFile(source, bytes);
      await expect(
        copyBlobFile(source, join(dir, `short-copy-${size}`), {
          digest: computeDigest(bytes),
          size: size + 1,
        }),
      ).rejects.toBeInstanceOf(SizeMismatchError);
    });
  }

  it('aborts a large copy when its signal fires', async () => {
    const source = join(dir, 'abort');
    await writeFile(source, randomBytes(workerHashThreshold * 4));
    const controller = new AbortController();
    const copying = copyBlobFile(
      source,
      join(dir, 'abort-copy'),
      { digest: computeDigest('x'), size: workerHashThreshold * 4 },
      {
        signal: controller.signal,
      },
    );
    controller.abort();
    await expect(copying).rejects.toThrow();
    expect((await readdir(dir)).filter((n) => n.startsWith('abort-copy'))).toEqual([]);
  });

  it('writes a verified stream and refuses one with the wrong digest', async () => {
    const bytes = randomBytes(1000);
    const good = join(dir, 'stream-good');
    expect(
      await writeBlobFile(Readable.from([bytes]), good, { digest: computeDigest(bytes), size: 1000 }),
    ).toEqual({
      digest: computeDigest(bytes),
      size: 1000,
    });
    const bad = join(dir, 'stream-bad');
    await expect(
      writeBlobFile(Readable.from([bytes]), bad, { digest: computeDigest('no') }),
    ).rejects.toBeInstanceOf(DigestMismatchError);
    expect((await readdir(dir)).filter((n) => n.startsWith('stream-bad'))).toEqual([]);
  });

  it('writes a large stream of small chunks whole, in batched writes', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 123);
    const chunks: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += 65536) chunks.push(bytes.subarray(at, at + 65536));
    const target = join(dir, 'stream-large');
    expect(
      await writeBlobFile(Readable.from(chunks), target, { digest: computeDigest(bytes), size: -1 }),
    ).toEqual({
      digest: computeDigest(bytes),
      size: bytes.length,
    });
    expect((await readFile(target)).equals(bytes)).toBe(true);
  });

  it('writes a large blob on the stream worker thread, byte for byte', async () => {
    const bytes = randomBytes(offloadedHashThreshold + 3 * 1024 * 1024 + 17);
    const chunks: Buffer[] = [];
    for (let at = 0, n = 1; at < bytes.length; at += n, n = (n * 7 + 1) % 200_000)
      chunks.push(bytes.subarray(at, at + n));
    const target = join(dir, 'stream-offloaded');
    const digest = computeDigest(bytes);
    expect(await writeBlobFile(Readable.from(chunks), target, { digest, size: bytes.length })).toEqual({
      digest,
      size: bytes.length,
    });
    expect((await readFile(target)).equals(bytes)).toBe(true);
  });

  it('aborts a large offloaded write: no temp file is left, and nothing is written after it settles', async () => {
    const controller = new AbortController();
    async function* endless() {
      for (let i = 0; ; i++) {
        if (i === 40) controller.abort();
        yield randomBytes(256 << 10);
      }
    }
    const target = join(dir, 'aborted-offloaded');
    await expect(
      writeBlobFile(Readable.from(endless()), target, { size: 64 << 20 }, { signal: controller.signal }),
    ).rejects.toThrow(/abort/i);
    // A file opened now likely gets the descriptor number the temp file had.
    const other = join(dir, 'opened-after-abort');
    const handle = await open(other, 'w');
    try {
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect((await stat(other)).size).toBe(0);
    } finally {
      await handle.close();
    }
    expect((await readdir(dir)).filter((name) => name.startsWith('aborted-offloaded'))).toEqual([]);
  });

  it('fails an offloaded write with the error of the write', async () => {
    const target = join(dir, 'read-only');
    await writeFile(target, '');
    const handle = await open(target, 'r');
    try {
      await expect(
        writeBatched(handle, Readable.from([randomBytes(1 << 20)]), 512 << 10, { offload: true }),
      ).rejects.toThrow(/EBADF|bad file descriptor/i);
    } finally {
      await handle.close();
    }
    expect((await stat(target)).size).toBe(0);
  });

  it('settles an offloaded write whose source fails only when no write is left running', async () => {
    const target = join(dir, 'source-fails');
    const handle = await open(target, 'w');
    let sent = 0;
    async function* failing() {
      for (let i = 0; i < 16; i++) {
        sent += 256 << 10;
        yield randomBytes(256 << 10);
      }
      throw new Error('source broke');
    }
    try {
      await expect(writeBatched(handle, failing(), 512 << 10, { offload: true })).rejects.toThrow(
        'source broke',
      );
      const size = (await stat(target)).size;
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await stat(target)).size).toBe(size);
      expect(size).toBe(sent);
    } finally {
      await handle.close();
    }
  });

  it('does not hash a stream marked verified again, and still fails with it', async () => {
    const bytes = randomBytes(100_000);
    const digest = computeDigest(bytes);
    const verified = () =>
      pipeline(
        Readable.from([bytes]),
        new DigestingStream({ expectedDigest: digest, expectedSize: bytes.length }),
        () => {},
      );
    const good = join(dir, 'marked-good');
    expect(
      await writeBlobFile(markVerified(verified(), { digest, size: bytes.length }), good, {
        digest,
        size: bytes.length,
      }),
    ).toEqual({ digest, size: bytes.length });
    expect((await readFile(good)).equals(bytes)).toBe(true);

    // The mark covers only the digest and size it names: a writer asked for others hashes itself.
    const other = computeDigest('other');
    await expect(
      writeBlobFile(markVerified(verified(), { digest, size: bytes.length }), join(dir, 'marked-other'), {
        digest: other,
        size: bytes.length,
      }),
    ).rejects.toBeInstanceOf(DigestMismatchError);

    // The verifying stage fails before the end: nothing is left at the path.
    const lying = pipeline(
      Readable.from([bytes]),
      new DigestingStream({ expectedDigest: other, expectedSize: bytes.length }),
      () => {},
    );
    await expect(
      writeBlobFile(markVerified(lying, { digest: other, size: bytes.length }), join(dir, 'marked-bad'), {
        digest: other,
        size: bytes.length,
      }),
    ).rejects.toBeInstanceOf(DigestMismatchError);
    expect(
      (await readdir(dir)).filter((n) => n.startsWith('marked-bad') || n.startsWith('marked-other')),
    ).toEqual([]);
  });

  it('removes the temp files of dead processes and nothing else', async () => {
    const sub = join(dir, 'stale');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(sub);
    const mine = tempPathFor(join(sub, 'blob-a'));
    const dead = join(sub, 'blob-b.4194303.abc123.tmp');
    const foreign = join(sub, 'notes.tmp');
    for (const f of [mine, dead, foreign]) await writeFile(f, 'x');
    expect(await removeStaleTempFiles(sub)).toBe(1);
    expect((await readdir(sub)).sort()).toEqual([mine.split('/').at(-1), 'notes.tmp'].sort());
  });
});

describe('verified streams', () => {
  it('tells a writer the digest only when the mark covers what it checks', () => {
    const digest = computeDigest('x');
    const stream = markVerified(Readable.from([]), { digest, size: 1 });
    expect(verifiedDigestOf(stream, { digest, size: 1 })).toBe(digest);
    expect(verifiedDigestOf(stream, { digest, size: -1 })).toBe(digest);
    expect(verifiedDigestOf(stream, { digest })).toBe(digest);
    expect(verifiedDigestOf(stream, { digest, size: 2 })).toBeUndefined();
    expect(verifiedDigestOf(stream, { digest: computeDigest('y'), size: 1 })).toBeUndefined();
    expect(verifiedDigestOf(stream, { size: 1 })).toBeUndefined();
    expect(verifiedDigestOf(Readable.from([]), { digest, size: 1 })).toBeUndefined();
    const sizeUnknown = markVerified(Readable.from([]), { digest, size: -1 });
    expect(verifiedDigestOf(sizeUnknown, { digest, size: 1 })).toBeUndefined();
    expect(verifiedDigestOf(sizeUnknown, { digest, size: -1 })).toBe(digest);
  });
});
