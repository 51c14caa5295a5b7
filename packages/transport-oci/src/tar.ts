// Tar archives of OCI layouts: streaming extraction and packing with tar-stream, and a header-only
// scan (reading 512-byte headers and seeking over data) for questions that need no blob bytes.
// Internal to the package.
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, type FileHandle, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  type Digest,
  digestAlgorithm,
  digestHex,
  isDigest,
  type OperationOptions,
  tempPathFor,
} from '@img/core';
import { extract, type Header, pack } from 'tar-stream';
import type { BlobLookup } from './layout.js';

/** Entry times in written archives: fixed, so the same image always gives the same bytes. */
const epoch = new Date(0);

/**
 * The name of an entry relative to the layout root, or undefined when it would land outside it
 * (absolute, `..`) or names the root itself.
 */
export function entryPath(name: string): string | undefined {
  const normal = posix.normalize(name.replace(/^(?:\.\/)+/, ''));
  const trimmed = normal.endsWith('/') ? normal.slice(0, -1) : normal;
  if (trimmed === '' || trimmed === '.' || trimmed.startsWith('/')) return undefined;
  if (trimmed === '..' || trimmed.startsWith('../')) return undefined;
  return trimmed;
}

/**
 * Unpacks the tar at `file` into the directory `dir`, streaming each file to disk (nothing is held
 * in memory). Only regular files, hard links to them and directories are created; entries that
 * would land outside `dir`, symbolic links and devices are drained and skipped.
 */
export async function extractArchive(
  file: string,
  dir: string,
  options: OperationOptions = {},
): Promise<void> {
  const input = createReadStream(file);
  const entries = extract();
  input.on('error', (error) => entries.destroy(error));
  input.pipe(entries);
  try {
    for await (const entry of entries) {
      options.signal?.throwIfAborted();
      const name = entryPath(entry.header.name);
      const target = name === undefined ? undefined : join(dir, name);
      const type = entry.header.type ?? 'file';
      if (target && (type === 'file' || type === 'contiguous-file')) {
        await mkdir(dirname(target), { recursive: true });
        await pipeline(entry, createWriteStream(target, { mode: 0o644 }), { signal: options.signal });
        continue;
      }
      // tar-stream is sequential: every entry must be drained before the next one arrives.
      entry.resume();
      if (target && type === 'directory') await mkdir(target, { recursive: true });
      if (target && type === 'link' && entry.header.linkname) {
        const source = entryPath(entry.header.linkname);
        if (source !== undefined) {
          await mkdir(dirname(target), { recursive: true });
          await copyFile(join(dir, source), target);
        }
      }
    }
  } finally {
    input.destroy();
  }
}

/**
 * The entries of a layout directory in archive order: oci-layout, index.json, then blobs/ sorted;
 * directory names end with a slash, as tar(1) writes them.
 */
async function layoutEntries(dir: string): Promise<Array<{ name: string; directory: boolean }>> {
  const out = [
    { name: 'oci-layout', directory: false },
    { name: 'index.json', directory: false },
    { name: 'blobs/', directory: true },
  ];
  for (const algorithm of (await readdir(join(dir, 'blobs'))).sort()) {
    const names = await readdir(join(dir, 'blobs', algorithm)).catch(() => undefined);
    if (!names) continue;
    out.push({ name: `blobs/${algorithm}/`, directory: true });
    // Only digest-named files: a staging file of an interrupted upload never enters the archive.
    for (const name of names.sort()) {
      if (isDigest(`${algorithm}:${name}`))
        out.push({ name: `blobs/${algorithm}/${name}`, directory: false });
    }
  }
  return out;
}

/**
 * Writes the layout at `dir` as a tar at `target`: the archive is streamed to a temp file beside
 * it (each blob streamed in, never buffered) and renamed over `target` when complete.
 */
export async function packLayout(dir: string, target: string, options: OperationOptions = {}): Promise<void> {
  const tmp = tempPathFor(target);
  const archive = pack();
  const stop = new AbortController();
  const written = pipeline(archive, createWriteStream(tmp, { flags: 'wx', mode: 0o644 }), {
    signal: options.signal,
  });
  written.catch((error: unknown) => stop.abort(error));
  try {
    for (const { name, directory } of await layoutEntries(dir)) {
      stop.signal.throwIfAborted();
      const header: Partial<Header> & { name: string } = {
        name,
        mtime: epoch,
        uid: 0,
        gid: 0,
        uname: '',
        gname: '',
      };
      if (directory) {
        await finishEntry(archive, { ...header, type: 'directory', mode: 0o755 });
        continue;
      }
      const path = join(dir, name);
      const { size } = await stat(path);
      await finishEntry(archive, { ...header, type: 'file', mode: 0o644, size }, path, stop.signal);
    }
    archive.finalize();
    await written;
    await rename(tmp, target);
  } catch (error) {
    archive.destroy(error as Error);
    await written.catch(() => {});
    await rm(tmp, { force: true });
    throw stop.signal.aborted ? stop.signal.reason : error;
  }
}

/**
 * Adds one entry to a pack stream, streaming the file at `path` into it with back-pressure. Fails,
 * and destroys the entry, when the file cannot be read, the signal fires or the pack is destroyed.
 */
async function finishEntry(
  archive: ReturnType<typeof pack>,
  header: Partial<Header> & { name: string },
  path?: string,
  signal?: AbortSignal,
): Promise<void> {
  let settle: (error?: Error | null) => void = () => {};
  const done = new Promise<void>((resolve, reject) => {
    settle = (error) => (error ? reject(error) : resolve());
  });
  // The entry can fail while this function is awaiting something else (the pack destroyed under
  // it): that rejection is awaited below, so it must not count as unhandled meanwhile.
  done.catch(() => {});
  const sink = archive.entry(header, (error) => settle(error));
  // tar-stream reports a failed entry both to the callback and as an 'error' event on the sink; the
  // callback is where it is handled, and an 'error' event without a listener would crash the process.
  sink.on('error', () => {});
  try {
    if (path) {
      for await (const chunk of createReadStream(path, {
        highWaterMark: 1 << 20,
        ...(signal ? { signal } : {}),
      })) {
        // `done` settles early only when the entry failed: then the drain would never come.
        if (!sink.write(chunk)) await Promise.race([once(sink, 'drain', signal ? { signal } : {}), done]);
      }
    }
    sink.end(undefined);
  } catch (error) {
    sink.destroy(error as Error);
    throw error;
  }
  await done;
}

/** One entry as a header-only scan sees it. */
export interface TarHeader {
  /** The full name (ustar prefix, PAX `path` or GNU long name applied). */
  name: string;
  /** The type flag: `0` for a regular file, `5` a directory, … */
  type: string;
  /** Bytes of data. */
  size: number;
  /** Where the data starts in the file. */
  offset: number;
}

function field(block: Buffer, start: number, length: number): string {
  const raw = block.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? length : end).toString('utf8');
}

function numeric(block: Buffer, start: number, length: number): number {
  const first = block[start]!;
  // GNU base-256 for values that do not fit the octal field; positive values only.
  if (first & 0x80) {
    let value = first & 0x7f;
    for (let i = start + 1; i < start + length; i++) value = value * 256 + block[i]!;
    return value;
  }
  const text = field(block, start, length).trim();
  return text === '' ? 0 : Number.parseInt(text, 8);
}

function checksumMatches(block: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum === numeric(block, 148, 8);
}

function paxRecords(data: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const length = Number.parseInt(data.subarray(at, space).toString('ascii'), 10);
    if (space < 0 || !Number.isSafeInteger(length) || length <= 0) break;
    const record = data.subarray(space + 1, at + length - 1).toString('utf8');
    const equals = record.indexOf('=');
    if (equals > 0) records.set(record.slice(0, equals), record.slice(equals + 1));
    at += length;
  }
  return records;
}

/**
 * Yields the entries of a tar file by reading headers only and seeking over data, so a question
 * about names and sizes never reads a blob. Throws on a header whose checksum is wrong, and on an
 * entry whose data runs past the end of the file (a truncated archive: sizes come from headers).
 */
export async function* scanTar(handle: FileHandle): AsyncGenerator<TarHeader> {
  const { size: fileSize } = await handle.stat();
  const block = Buffer.alloc(512);
  let offset = 0;
  let longName: string | undefined;
  let pax = new Map<string, string>();
  for (;;) {
    const { bytesRead } = await handle.read(block, 0, 512, offset);
    if (bytesRead < 512 || block.every((b) => b === 0)) return;
    if (!checksumMatches(block)) throw new Error(`not a tar header at offset ${offset}`);
    const type = block[156] === 0 ? '0' : String.fromCharCode(block[156]!);
    const headerSize = numeric(block, 124, 12);
    const dataOffset = offset + 512;
    const checkComplete = (size: number) => {
      if (dataOffset + size > fileSize) {
        throw new Error(
          `truncated tar: the entry at offset ${offset} has ${size} bytes, the file ends at ${fileSize}`,
        );
      }
    };
    const readData = async (limit: number): Promise<Buffer> => {
      if (headerSize > limit)
        throw new Error(`tar metadata entry of ${headerSize} bytes at offset ${offset}`);
      const data = Buffer.alloc(headerSize);
      await handle.read(data, 0, headerSize, dataOffset);
      return data;
    };
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      checkComplete(headerSize);
      if (type === 'x') pax = paxRecords(await readData(1 << 20));
      if (type === 'L') longName = field(await readData(1 << 20), 0, headerSize);
      offset = dataOffset + Math.ceil(headerSize / 512) * 512;
      continue;
    }
    const paxSize = pax.get('size');
    const size = paxSize === undefined ? headerSize : Number(paxSize);
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new Error(`tar entry at offset ${offset} has an invalid size "${paxSize ?? headerSize}"`);
    }
    checkComplete(size);
    let name = field(block, 0, 100);
    // POSIX ustar splits long names into a prefix; GNU tar uses those bytes for other fields.
    if (block.subarray(257, 263).toString('latin1') === 'ustar\0') {
      const prefix = field(block, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    yield { name: pax.get('path') ?? longName ?? name, type, size, offset: dataOffset };
    longName = undefined;
    pax = new Map();
    offset = dataOffset + Math.ceil(size / 512) * 512;
  }
}

/** A {@link BlobLookup} over the regular files an archive scan found, reading data by offset. */
export function archiveBlobLookup(handle: FileHandle, files: ReadonlyMap<string, TarHeader>): BlobLookup {
  const find = (digest: Digest) => files.get(`blobs/${digestAlgorithm(digest)}/${digestHex(digest)}`);
  return {
    async size(digest) {
      return find(digest)?.size;
    },
    async read(digest, limit) {
      const entry = find(digest);
      if (!entry || entry.size > limit) return undefined;
      const data = Buffer.alloc(entry.size);
      await handle.read(data, 0, entry.size, entry.offset);
      return data;
    },
  };
}
