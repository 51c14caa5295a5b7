// The files of a docker-archive tarball, however they were reached: an archive on disk is scanned
// header by header and read by offset; a stream (`docker save` through the Engine API) is read
// once, small files kept in memory and big ones spooled to temp files, hashed on the way.
// Internal to the package.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Digest, TooLargeError } from '@img/core';
import { extract } from 'tar-stream';
import { entryPath, linkTarget, scanTar } from './tar-scan.js';

/** One regular file of an archive. */
export interface ArchiveFile {
  /** Its name in the archive (after links are followed). */
  readonly name: string;
  readonly size: number;
  /** The digest of its bytes when known without reading them again (hashed while spooled). */
  readonly digest?: Digest | undefined;
  /** A regular file holding exactly these bytes, when there is one (a spooled entry). */
  readonly path?: string | undefined;
  /** The bytes themselves, when the reader kept them in memory (small files of a stream). */
  readonly bytes?: Buffer | undefined;
  /** Its first bytes (up to 512). */
  head(): Promise<Buffer>;
  /** Its bytes, when no more than `limit`; TooLargeError otherwise. */
  read(limit: number): Promise<Buffer>;
  /** Streams its bytes. */
  open(signal?: AbortSignal): Readable;
}

/** The files of an archive by name; links are followed. */
export interface ArchiveContents {
  file(name: string): ArchiveFile | undefined;
  /** Every regular file's name. */
  names(): Iterable<string>;
}

/** Files by name plus the links between names, as both readers collect them. */
class FileTable implements ArchiveContents {
  readonly files = new Map<string, ArchiveFile>();
  readonly links = new Map<string, string>();

  file(name: string): ArchiveFile | undefined {
    let at = entryPath(name);
    // Links may chain; a cycle or a dangling link finds nothing.
    for (let hops = 0; at !== undefined && hops < 16; hops++) {
      const found = this.files.get(at);
      if (found) return found;
      at = this.links.get(at);
    }
    return undefined;
  }

  names(): Iterable<string> {
    return this.files.keys();
  }
}

function tooLarge(file: { name: string; size: number }, limit: number): TooLargeError {
  return new TooLargeError(`"${file.name}" in the archive`, limit);
}

/**
 * The contents of a tar file on disk, from a header scan: reads happen later, by offset, through
 * `handle` (which the caller keeps open while the contents are in use).
 */
export async function scanArchiveFile(path: string, handle: FileHandle): Promise<ArchiveContents> {
  const table = new FileTable();
  for await (const header of scanTar(handle)) {
    const name = entryPath(header.name);
    if (name === undefined) continue;
    if (header.type === '0' || header.type === '7') {
      const { size, offset } = header;
      table.files.set(name, {
        name,
        size,
        async head() {
          const buffer = Buffer.alloc(Math.min(512, size));
          await handle.read(buffer, 0, buffer.length, offset);
          return buffer;
        },
        async read(limit) {
          if (size > limit) throw tooLarge({ name, size }, limit);
          const buffer = Buffer.alloc(size);
          await handle.read(buffer, 0, size, offset);
          return buffer;
        },
        open(signal) {
          if (size === 0) return Readable.from([]);
          return createReadStream(path, {
            start: offset,
            end: offset + size - 1,
            highWaterMark: 1 << 20,
            ...(signal ? { signal } : {}),
          });
        },
      });
    } else if (header.type === '1' || header.type === '2') {
      const target = linkTarget(name, header.type === '1' ? 'link' : 'symlink', header.linkname);
      if (target !== undefined) table.links.set(name, target);
    }
  }
  return table;
}

/** Files up to this size are kept in memory when a stream is read; bigger ones are spooled. */
const inMemoryLimit = 64 * 1024;

function memoryFile(name: string, bytes: Buffer): ArchiveFile {
  return {
    name,
    size: bytes.length,
    bytes,
    digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
    head: async () => bytes.subarray(0, 512),
    async read(limit) {
      if (bytes.length > limit) throw tooLarge({ name, size: bytes.length }, limit);
      return bytes;
    },
    open: () => Readable.from([bytes]),
  };
}

/** Hashes what passes and keeps the first bytes. */
class Tap extends Transform {
  private readonly hash = createHash('sha256');
  private first: Buffer[] = [];
  private firstLength = 0;
  private result: Digest | undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    if (this.firstLength < 512) {
      this.first.push(chunk.subarray(0, 512 - this.firstLength));
      this.firstLength += Math.min(chunk.length, 512 - this.firstLength);
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.result = `sha256:${this.hash.digest('hex')}`;
    callback();
  }

  get digest(): Digest {
    if (!this.result) throw new Error('Tap: digest read before the end');
    return this.result;
  }

  get head(): Buffer {
    return Buffer.concat(this.first);
  }
}

function spooledFile(name: string, path: string, size: number, digest: Digest, head: Buffer): ArchiveFile {
  return {
    name,
    size,
    digest,
    path,
    head: async () => head,
    async read(limit) {
      if (size > limit) throw tooLarge({ name, size }, limit);
      const handle = await open(path, 'r');
      try {
        const buffer = Buffer.alloc(size);
        await handle.read(buffer, 0, size, 0);
        return buffer;
      } finally {
        await handle.close();
      }
    },
    open: (signal) => createReadStream(path, { highWaterMark: 1 << 20, ...(signal ? { signal } : {}) }),
  };
}

/**
 * Reads a tar stream once: files up to 64 KiB are kept in memory, bigger ones spooled to `dir` (the
 * caller removes it), each hashed as it passes. Reading stops, and the rest of the stream is
 * discarded, as soon as `isComplete` says everything needed has been seen.
 */
export async function readArchiveStream(
  input: Readable,
  dir: string,
  isComplete: (contents: ArchiveContents) => boolean,
  signal?: AbortSignal,
): Promise<ArchiveContents> {
  const table = new FileTable();
  const entries = extract();
  input.on('error', (error) => entries.destroy(error));
  input.pipe(entries);
  let spooled = 0;
  try {
    for await (const entry of entries) {
      signal?.throwIfAborted();
      const { header } = entry;
      const name = entryPath(header.name);
      const type = header.type ?? 'file';
      if (name !== undefined && (type === 'file' || type === 'contiguous-file')) {
        const size = header.size ?? 0;
        if (size <= inMemoryLimit) {
          const chunks: Buffer[] = [];
          for await (const chunk of entry) chunks.push(chunk as Buffer);
          table.files.set(name, memoryFile(name, Buffer.concat(chunks)));
        } else {
          const path = join(dir, `entry-${spooled++}`);
          const tap = new Tap();
          await pipeline(entry, tap, createWriteStream(path, { mode: 0o600 }), signal ? { signal } : {});
          table.files.set(name, spooledFile(name, path, size, tap.digest, tap.head));
        }
      } else {
        // tar-stream is sequential: every entry is drained before the next one comes.
        entry.resume();
        if (name !== undefined && (type === 'link' || type === 'symlink') && header.linkname) {
          const target = linkTarget(name, type, header.linkname);
          if (target !== undefined) table.links.set(name, target);
        }
      }
      if (isComplete(table)) break;
    }
  } finally {
    entries.destroy();
    input.unpipe(entries);
    input.destroy();
  }
  return table;
}
