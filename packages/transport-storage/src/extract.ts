import { createHash } from 'node:crypto';
import {
  chmod,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  readlink,
  rm,
  symlink,
} from 'node:fs/promises';
import { posix } from 'node:path';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ZlibOptions } from 'node:zlib';
import {
  type Digest,
  DigestingStream,
  ImgError,
  NotSupportedError,
  verifiedDigestOf,
  writeBatched,
} from '@img/core';
import { lsetxattr, makedev, mknod } from './native.js';
import { Compression } from './store.js';
import { Crc64, cleanEntryPath, TarSplitWriter } from './tar-split.js';
import { zlib } from './zlib.js';

/** A layer tar that cannot be applied: a bad header, a path outside the layer, a duplicate entry. */
export class InvalidLayerError extends ImgError {
  static override readonly code = 'IMG_INVALID_LAYER';
}

/** What applying a layer learnt about it: the values of its layers.json record. */
export interface AppliedLayer {
  diffDigest: Digest;
  diffSize: number;
  compressedDigest: Digest;
  compressedSize: number;
  compression: number;
  uidset: number[];
  gidset: number[];
}

/** Options of {@link applyLayer}. */
export interface ApplyLayerOptions {
  /** The blob's digest and size as the manifest gives them; verified while streaming. */
  expectedDigest?: Digest | undefined;
  expectedSize?: number | undefined;
  driver: 'vfs' | 'overlay';
  /** The directory the files go to (vfs: already holding a copy of the parent; overlay: an empty diff/). */
  filesDir: string;
  /** Where the tar-split file is written. */
  tarSplitPath: string;
  signal?: AbortSignal | undefined;
}

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

/** A chunked byte source that hashes and counts every byte it pulls. */
/** Passes bytes through, counting them: the digest side of a stream verified upstream. */
class ByteCounter extends Transform {
  bytes = 0;
  constructor(readonly digest: Digest) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

/** Output chunk size of the layer's gunzip. */
const inflateChunkBytes = 1 << 20;
/** File contents are written in batches of about this size, one batch in flight while the next fills. */
const writeBatchBytes = 1 << 20;

class ByteReader {
  private chunks: Buffer[] = [];
  private have = 0;
  private ended = false;
  constructor(
    private readonly it: AsyncIterator<Buffer>,
    private readonly onBytes: (chunk: Buffer) => void,
  ) {}

  private async more(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.it.next();
    if (next.done) {
      this.ended = true;
      return false;
    }
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
    this.onBytes(chunk);
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.have += chunk.length;
    }
    return true;
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.have -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.have -= n;
    return out;
  }

  /** Up to `n` bytes (fewer only at the end of the stream). */
  async read(n: number): Promise<Buffer> {
    while (this.have < n && (await this.more())) {}
    return this.take(Math.min(n, this.have));
  }

  /** Exactly `n` bytes as chunks; fails on a short stream. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.have === 0 && !(await this.more()))
        throw new InvalidLayerError('layer tar ends in the middle of a file');
      if (this.have === 0) continue;
      const k = Math.min(left, this.chunks[0]!.length);
      left -= k;
      yield this.take(k);
    }
  }
}

function cString(buf: Buffer): Buffer {
  const nul = buf.indexOf(0);
  return nul === -1 ? buf : buf.subarray(0, nul);
}

function parseNumeric(field: Buffer): number {
  if (field[0]! & 0x80) {
    // Base-256 (GNU): big-endian, the top bit of the first byte is the marker.
    let v = field[0]! & 0x3f;
    if (field[0]! & 0x40) throw new InvalidLayerError('negative number in layer tar header');
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i]!;
    return v;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new InvalidLayerError(`invalid number "${text}" in layer tar header`);
  return Number.parseInt(text, 8);
}

function checksumOk(block: Buffer): boolean {
  const stored = parseNumeric(block.subarray(148, 156));
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space === -1) break;
    const len = Number.parseInt(data.subarray(pos, space).toString('latin1'), 10);
    if (!(len > 0) || pos + len > data.length) throw new InvalidLayerError('invalid PAX record in layer tar');
    const record = data.subarray(space + 1, pos + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq !== -1) out.set(record.subarray(0, eq).toString('utf8'), Buffer.from(record.subarray(eq + 1)));
    pos += len;
  }
  return out;
}

const pad = (n: number) => (512 - (n % 512)) % 512;

interface Entry {
  type: string;
  /** The name as in the archive (raw bytes as a latin1 string). */
  name: string;
  linkname: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  atime: number;
  devmajor: number;
  devminor: number;
  xattrs: Array<[string, Buffer]>;
}

const latin1 = (b: Buffer) => b.toString('latin1');

/**
 * Applies one tar entry at a time to a layer directory as containers/storage's pkg/archive does,
 * with chroot semantics: every path stays under the root, symbolic links in parent paths are
 * resolved inside it, `..` and absolute names are refused.
 */
class Applier {
  /** Paths (relative, latin1) created or replaced by this layer, for opaque directories on vfs. */
  private readonly unpacked = new Set<string>();
  /** Relative paths known to be real directories (not symlinks) during this extraction. */
  private readonly realDirs = new Set<string>(['']);
  private readonly dirTimes: Array<[string, number, number]> = [];
  private readonly rootLatin1: string;

  constructor(
    root: string,
    private readonly driver: 'vfs' | 'overlay',
  ) {
    this.rootLatin1 = Buffer.from(root, 'utf8').toString('latin1');
  }

  private p(rel: string): Buffer {
    return Buffer.from(rel === '' ? this.rootLatin1 : `${this.rootLatin1}/${rel}`, 'latin1');
  }

  private forget(rel: string): void {
    for (const d of this.realDirs) if (d === rel || d.startsWith(`${rel}/`)) this.realDirs.delete(d);
  }

  /** Resolves a directory path inside the root (creating missing parts when `create`), following symlinks as a chroot would. */
  private async resolveDir(rel: string, create: boolean): Promise<string> {
    let path = rel;
    for (let hops = 0; ; ) {
      const parts = path === '' ? [] : path.split('/');
      let cur = '';
      let restarted = false;
      for (let i = 0; i < parts.length; i++) {
        const cand = cur === '' ? parts[i]! : `${cur}/${parts[i]}`;
        if (this.realDirs.has(cand)) {
          cur = cand;
          continue;
        }
        let st: Awaited<ReturnType<typeof lstat>> | undefined;
        try {
          st = await lstat(this.p(cand));
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !create) throw error;
        }
        if (!st) {
          await mkdir(this.p(cand), { mode: 0o755 });
          this.realDirs.add(cand);
          cur = cand;
          continue;
        }
        if (st.isDirectory()) {
          this.realDirs.add(cand);
          cur = cand;
          continue;
        }
        if (st.isSymbolicLink()) {
          if (++hops > 40) throw new InvalidLayerError(`too many symbolic links under "${rel}" in the layer`);
          const target = latin1(await readlink(this.p(cand), { encoding: 'buffer' }));
          const rest = parts.slice(i + 1).join('/');
          const base = target.startsWith('/') ? target : `${cur}/${target}`;
          // As in a chroot, ".." at the root stays at the root.
          path = posix
            .normalize(`/${base}${rest ? `/${rest}` : ''}`)
            .slice(1)
            .replace(/\/$/, '');
          restarted = true;
          break;
        }
        throw new InvalidLayerError(
          `"${latin1(Buffer.from(cand, 'latin1'))}" is not a directory in the layer`,
        );
      }
      if (!restarted) return cur;
    }
  }

  private async removeUnpackedExcept(dir: string): Promise<void> {
    let names: Buffer[];
    try {
      names = await readdir(this.p(dir), { encoding: 'buffer' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const name of names) {
      const child = dir === '' ? latin1(name) : `${dir}/${latin1(name)}`;
      if (!this.unpacked.has(child)) {
        await rm(this.p(child), { recursive: true, force: true });
        this.forget(child);
      } else if ((await lstat(this.p(child))).isDirectory()) {
        await this.removeUnpackedExcept(child);
      }
    }
  }

  /** Applies one entry; `data` is its contents for regular files (the caller drains what is left). */
  async apply(entry: Entry, data: AsyncIterable<Buffer> | undefined): Promise<void> {
    if (entry.name.startsWith('/')) throw new InvalidLayerError(`absolute path "${entry.name}" in the layer`);
    const rel = cleanEntryPath(entry.name);
    if (rel === undefined) throw new InvalidLayerError(`path "${entry.name}" leaves the layer directory`);
    if (rel === '') {
      // The layer root: vfs takes its metadata, overlay keeps the diff directory as created.
      if (this.driver === 'vfs' && entry.type === '5') await this.setMetadata('', entry);
      return;
    }
    const slash = rel.lastIndexOf('/');
    const base = rel.slice(slash + 1);
    const parent = await this.resolveDir(slash === -1 ? '' : rel.slice(0, slash), true);
    const path = parent === '' ? base : `${parent}/${base}`;

    if (base.startsWith('.wh.')) {
      if (base === '.wh..wh..opq') {
        if (this.driver === 'vfs') await this.removeUnpackedExcept(parent);
        else lsetxattr(this.p(parent), 'trusted.overlay.opaque', Buffer.from('y'));
      } else if (!base.startsWith('.wh..wh.')) {
        const victim = parent === '' ? base.slice(4) : `${parent}/${base.slice(4)}`;
        await rm(this.p(victim), { recursive: true, force: true });
        this.forget(victim);
        if (this.driver === 'overlay') {
          // Native overlayfs whiteout: a 0/0 character device, mode 0, owned as the header says.
          mknod(this.p(victim), S_IFCHR, 0n);
          await lchown(this.p(victim), entry.uid, entry.gid);
        }
      }
      return;
    }

    let existing: Awaited<ReturnType<typeof lstat>> | undefined;
    try {
      existing = await lstat(this.p(path));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (existing && !(existing.isDirectory() && entry.type === '5')) {
      await rm(this.p(path), { recursive: true, force: true });
      this.forget(path);
    }

    switch (entry.type) {
      case '5':
        if (!existing?.isDirectory()) await mkdir(this.p(path), { mode: entry.mode & 0o7777 });
        this.realDirs.add(path);
        break;
      case '0':
      case '7': {
        const handle = await open(this.p(path), 'wx', 0o600);
        try {
          if (data) await writeBatched(handle, data, writeBatchBytes);
        } finally {
          await handle.close();
        }
        break;
      }
      case '1': {
        if (entry.linkname.startsWith('/'))
          throw new InvalidLayerError(`hard link "${entry.name}" has an absolute target`);
        const target = cleanEntryPath(entry.linkname);
        if (target === undefined || target === '') {
          throw new InvalidLayerError(`hard link "${entry.name}" points outside the layer`);
        }
        const ts = target.lastIndexOf('/');
        const targetDir = await this.resolveDir(ts === -1 ? '' : target.slice(0, ts), false);
        const targetPath = targetDir === '' ? target.slice(ts + 1) : `${targetDir}/${target.slice(ts + 1)}`;
        await link(this.p(targetPath), this.p(path));
        break;
      }
      case '2': {
        if (!entry.linkname.startsWith('/')) {
          const resolved = posix.normalize(parent === '' ? entry.linkname : `${parent}/${entry.linkname}`);
          if (resolved === '..' || resolved.startsWith('../')) {
            throw new InvalidLayerError(`symbolic link "${entry.name}" points outside the layer`);
          }
        }
        await symlink(Buffer.from(entry.linkname, 'latin1'), this.p(path));
        break;
      }
      case '3':
      case '4':
      case '6': {
        const kind = entry.type === '3' ? S_IFCHR : entry.type === '4' ? S_IFBLK : S_IFIFO;
        mknod(this.p(path), kind | (entry.mode & 0o7777), makedev(entry.devmajor, entry.devminor));
        break;
      }
      default:
        throw new InvalidLayerError(`unsupported tar entry type "${entry.type}" for "${entry.name}"`);
    }
    this.unpacked.add(path);
    await this.setMetadata(path, entry);
  }

  private async setMetadata(path: string, entry: Entry): Promise<void> {
    const p = this.p(path);
    await lchown(p, entry.uid, entry.gid);
    for (const [name, value] of entry.xattrs) {
      if (name === 'security.selinux') continue;
      lsetxattr(p, name, value);
    }
    // After chown, which clears set-id bits.
    if (entry.type !== '2') await chmod(p, entry.mode & 0o7777);
    const atime = Math.max(entry.atime, entry.mtime);
    if (entry.type === '5') this.dirTimes.push([path, atime, entry.mtime]);
    else await lutimes(p, atime, entry.mtime);
  }

  /** Directory times go last: creating entries inside would change them. */
  async finish(): Promise<void> {
    for (const [path, atime, mtime] of this.dirTimes.reverse()) await lutimes(this.p(path), atime, mtime);
  }
}

/**
 * Streams one layer blob into a layer directory in a single pass: verifies the blob digest,
 * decompresses (gzip or none), computes the diff digest over the whole tar stream, applies each
 * entry (vfs or native overlay rules) and writes the tar-split file.
 */
export async function applyLayer(input: Readable, options: ApplyLayerOptions): Promise<AppliedLayer> {
  // A stream the copy engine already verifies against this digest fails before its end on a
  // mismatch: hashing the compressed bytes a second time would only cost CPU. Count them instead.
  const trusted = verifiedDigestOf(input, { digest: options.expectedDigest, size: options.expectedSize });
  const digester = trusted
    ? new ByteCounter(trusted)
    : new DigestingStream({
        expectedDigest: options.expectedDigest,
        expectedSize: options.expectedSize,
        what: 'layer',
      });
  let compression: number = Compression.none;
  const diffHash = createHash('sha256');
  let diffSize = 0;
  const uids = new Set<number>();
  const gids = new Set<number>();
  const tarSplit = new TarSplitWriter(options.tarSplitPath);
  const applier = new Applier(options.filesDir, options.driver);

  async function* decompress(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    const it = source[Symbol.asyncIterator]();
    const head: Buffer[] = [];
    let headLen = 0;
    let done = false;
    while (headLen < 6) {
      const next = await it.next();
      if (next.done) {
        done = true;
        break;
      }
      head.push(next.value);
      headLen += next.value.length;
    }
    const first = Buffer.concat(head);
    async function* all(): AsyncGenerator<Buffer> {
      yield first;
      if (done) return;
      for (let next = await it.next(); !next.done; next = await it.next()) yield next.value;
    }
    if (first[0] === 0x1f && first[1] === 0x8b) {
      compression = Compression.gzip;
      // zlib's default 16 KiB output chunks make every later stage (hashes, CRC, file writes) pay
      // its per-chunk cost 64 times per MiB; 1 MiB chunks more than triple the inflate rate here.
      // Node's zlib streams take the stream buffer sizes too (its types do not say so): a few chunks
      // of room on each side let inflate run on the thread pool while this thread hashes.
      const gunzip = zlib().createGunzip({
        chunkSize: inflateChunkBytes,
        readableHighWaterMark: 4 * inflateChunkBytes,
        writableHighWaterMark: 4 * inflateChunkBytes,
      } as ZlibOptions);
      const feeding = pipeline(all(), gunzip);
      feeding.catch(() => {});
      yield* gunzip;
      await feeding;
    } else if (first.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) {
      throw new NotSupportedError('zstd-compressed layers cannot be written to containers-storage yet');
    } else if (first[0] === 0x42 && first[1] === 0x5a && first[2] === 0x68) {
      throw new NotSupportedError('bzip2-compressed layers are not supported');
    } else if (first.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) {
      throw new NotSupportedError('xz-compressed layers are not supported');
    } else {
      yield* all();
    }
  }

  async function consume(source: AsyncIterable<Buffer>): Promise<void> {
    const reader = new ByteReader(source[Symbol.asyncIterator](), (chunk) => {
      diffHash.update(chunk);
      diffSize += chunk.length;
    });
    let segment: Buffer[] = [];
    const flush = async () => {
      if (segment.length === 0) return;
      const bytes = Buffer.concat(segment);
      segment = [];
      if (bytes.length > 0) await tarSplit.segment(bytes);
    };
    const seen = new Set<string>();
    let pax: Map<string, Buffer> | undefined;
    let longName: Buffer | undefined;
    let longLink: Buffer | undefined;
    let padding = 0;
    for (;;) {
      options.signal?.throwIfAborted();
      if (padding > 0) {
        segment.push(await reader.read(padding));
        padding = 0;
      }
      const block = await reader.read(512);
      if (block.length === 0) break; // A tar without its end blocks (umoci writes those).
      segment.push(block);
      if (block.length < 512) throw new InvalidLayerError('layer tar ends in the middle of a header');
      if (block.every((b) => b === 0)) {
        segment.push(await reader.read(512));
        break;
      }
      if (!checksumOk(block)) throw new InvalidLayerError('invalid tar header checksum in layer');
      const type = block[156] === 0 ? '0' : String.fromCharCode(block[156]!);
      const headerSize = parseNumeric(block.subarray(124, 136));
      if (type === 'x' || type === 'L' || type === 'K' || type === 'g') {
        const data = await reader.read(headerSize + pad(headerSize));
        if (data.length < headerSize + pad(headerSize))
          throw new InvalidLayerError('layer tar ends in an extended header');
        segment.push(data);
        const body = data.subarray(0, headerSize);
        if (type === 'x') pax = parsePax(body);
        else if (type === 'L') longName = Buffer.from(cString(body));
        else if (type === 'K') longLink = Buffer.from(cString(body));
        else {
          // A PAX global header is kept as its own entry and applies nothing.
          await flush();
          await tarSplit.file(cString(block.subarray(0, 100)), 0, undefined);
          uids.add(parseNumeric(block.subarray(108, 116)));
          gids.add(parseNumeric(block.subarray(116, 124)));
        }
        continue;
      }
      if (type === 'S' || [...(pax?.keys() ?? [])].some((k) => k.startsWith('GNU.sparse.'))) {
        throw new NotSupportedError('sparse files in layer tars are not supported');
      }
      const magic = latin1(block.subarray(257, 263));
      let name = cString(block.subarray(0, 100));
      if (magic === 'ustar\0') {
        const star = latin1(block.subarray(508, 512)) === 'tar\0';
        const prefix = cString(block.subarray(345, star ? 476 : 500));
        if (prefix.length > 0) name = Buffer.concat([prefix, Buffer.from('/'), name]);
      }
      name = longName ?? pax?.get('path') ?? name;
      const linkname = longLink ?? pax?.get('linkpath') ?? cString(block.subarray(157, 257));
      const num = (key: string, field: Buffer) => {
        const v = pax?.get(key);
        return v === undefined ? parseNumeric(field) : Number(v.toString('latin1'));
      };
      const size = num('size', block.subarray(124, 136));
      const mtime = num('mtime', block.subarray(136, 148));
      const atimePax = pax?.get('atime');
      const entry: Entry = {
        type,
        name: latin1(name),
        linkname: latin1(linkname),
        mode: parseNumeric(block.subarray(100, 108)),
        uid: num('uid', block.subarray(108, 116)),
        gid: num('gid', block.subarray(116, 124)),
        mtime,
        atime: atimePax === undefined ? mtime : Number(atimePax.toString('latin1')),
        devmajor: magic.startsWith('ustar') ? parseNumeric(block.subarray(329, 337)) : 0,
        devminor: magic.startsWith('ustar') ? parseNumeric(block.subarray(337, 345)) : 0,
        xattrs: [...(pax?.entries() ?? [])]
          .filter(([k]) => k.startsWith('SCHILY.xattr.'))
          .map(([k, v]) => [k.slice('SCHILY.xattr.'.length), v]),
      };
      pax = undefined;
      longName = undefined;
      longLink = undefined;
      await flush();

      const clean = cleanEntryPath(entry.name);
      if (clean !== undefined) {
        // tar-split (and so containers/storage) cannot store a path twice.
        if (seen.has(clean)) throw new InvalidLayerError(`duplicate path "${entry.name}" in layer tar`);
        seen.add(clean);
      }
      const baseName = entry.name.replace(/\/+$/, '').split('/').pop() ?? '';
      if (!baseName.startsWith('.wh.')) {
        uids.add(entry.uid);
        gids.add(entry.gid);
      }
      const headerOnly = '123456'.includes(type);
      const physical = headerOnly ? 0 : size;
      const crc = new Crc64();
      const data = reader.stream(physical);
      async function* counted(): AsyncGenerator<Buffer> {
        for await (const chunk of data) {
          crc.update(chunk);
          yield chunk;
        }
      }
      const contents = counted();
      await applier.apply(entry, physical > 0 ? contents : undefined);
      for await (const _ of contents) {
        // Whatever the applier did not take (a whiteout with data) is still part of the stream.
      }
      await tarSplit.file(name, size, size > 0 ? crc.digest() : undefined);
      padding = pad(physical);
    }
    await flush();
    // Whatever follows the end blocks (tar record padding) is kept as is.
    for (;;) {
      const rest = await reader.read(1 << 20);
      if (rest.length === 0) break;
      await tarSplit.segment(rest);
    }
    await applier.finish();
  }

  try {
    await pipeline(input, digester, decompress, consume, { signal: options.signal });
    await tarSplit.end();
  } catch (error) {
    tarSplit.destroy();
    throw error;
  }
  const sorted = (s: Set<number>) => [...s].sort((a, b) => a - b);
  return {
    diffDigest: `sha256:${diffHash.digest('hex')}` as Digest,
    diffSize,
    compressedDigest: digester.digest,
    compressedSize: digester.bytes,
    compression,
    uidset: sorted(uids),
    gidset: sorted(gids),
  };
}
