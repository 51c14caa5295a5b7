import { once } from 'node:events';
import { constants, createReadStream, createWriteStream } from 'node:fs';
import { lstat, open, readlink } from 'node:fs/promises';
import { endianness } from 'node:os';
import { posix } from 'node:path';
import type { Writable } from 'node:stream';
import { goJson } from './store.js';
import { zlib } from './zlib.js';

// tar-split (vbatts/tar-split, "tar/storage" JSON packer): how containers/storage keeps the bytes of a
// layer tar that are not file contents, so that the exact tar (and so its diff digest) can be
// rebuilt from them and the extracted files. One JSON object per line, gzip-compressed:
//   {"type":2,"payload":<base64 raw bytes>,"position":n}                     a segment
//   {"type":1,"name"|"name_raw":…,"size":n,"payload":<base64 crc64>,"position":n}   a file entry

// CRC-64 with the ISO polynomial (Go's hash/crc64 with crc64.ISO), in two 32-bit halves, eight
// bytes per step ("slicing by 8"): table k maps a byte to its CRC after k more zero bytes. The eight
// tables sit in one flat array per half (table k at k * 256), and the bytes are loaded as aligned
// 32-bit words: it runs over every byte of every layer, and this is ~1.5x the byte-wise loads.
const tableLo = new Int32Array(8 * 256);
const tableHi = new Int32Array(8 * 256);
for (let i = 0; i < 256; i++) {
  let lo = i;
  let hi = 0;
  for (let k = 0; k < 8; k++) {
    const carry = lo & 1;
    lo = (lo >>> 1) | ((hi & 1) << 31);
    hi >>>= 1;
    if (carry) hi ^= 0xd8000000;
  }
  tableLo[i] = lo;
  tableHi[i] = hi;
}
for (let t = 1; t < 8; t++) {
  for (let i = 0; i < 256; i++) {
    const lo = tableLo[(t - 1) * 256 + i]!;
    const hi = tableHi[(t - 1) * 256 + i]!;
    const idx = lo & 0xff;
    tableLo[t * 256 + i] = ((lo >>> 8) | ((hi & 0xff) << 24)) ^ tableLo[idx]!;
    tableHi[t * 256 + i] = (hi >>> 8) ^ tableHi[idx]!;
  }
}
const noWords = new Int32Array(0);
/** Word loads read bytes in the machine's order; the word loop assumes little-endian. */
const littleEndian = endianness() === 'LE';

/** A running CRC-64/ISO, as tar-split stores per file. */
export class Crc64 {
  private lo = -1;
  private hi = -1;

  update(data: Uint8Array): void {
    const L = tableLo;
    const H = tableHi;
    let lo = this.lo;
    let hi = this.hi;
    let i = 0;
    const n = data.length;
    if (littleEndian) {
      // Byte-wise up to a 4-byte boundary, then two words (8 bytes) per step.
      while (i < n && ((data.byteOffset + i) & 3) !== 0) {
        const idx = (lo ^ data[i]!) & 0xff;
        lo = ((lo >>> 8) | ((hi & 0xff) << 24)) ^ L[idx]!;
        hi = (hi >>> 8) ^ H[idx]!;
        i++;
      }
      const words =
        n - i >= 8 ? new Int32Array(data.buffer, data.byteOffset + i, ((n - i) >>> 3) << 1) : noWords;
      for (let w = 0; w < words.length; w += 2) {
        lo ^= words[w]!;
        hi ^= words[w + 1]!;
        const a =
          L[1792 + (lo & 0xff)]! ^
          L[1536 + ((lo >>> 8) & 0xff)]! ^
          L[1280 + ((lo >>> 16) & 0xff)]! ^
          L[1024 + (lo >>> 24)]! ^
          L[768 + (hi & 0xff)]! ^
          L[512 + ((hi >>> 8) & 0xff)]! ^
          L[256 + ((hi >>> 16) & 0xff)]! ^
          L[hi >>> 24]!;
        const b =
          H[1792 + (lo & 0xff)]! ^
          H[1536 + ((lo >>> 8) & 0xff)]! ^
          H[1280 + ((lo >>> 16) & 0xff)]! ^
          H[1024 + (lo >>> 24)]! ^
          H[768 + (hi & 0xff)]! ^
          H[512 + ((hi >>> 8) & 0xff)]! ^
          H[256 + ((hi >>> 16) & 0xff)]! ^
          H[hi >>> 24]!;
        lo = a;
        hi = b;
      }
      i += words.length * 4;
    }
    for (; i < n; i++) {
      const idx = (lo ^ data[i]!) & 0xff;
      lo = ((lo >>> 8) | ((hi & 0xff) << 24)) ^ L[idx]!;
      hi = (hi >>> 8) ^ H[idx]!;
    }
    this.lo = lo;
    this.hi = hi;
  }

  /** The 8 bytes, big-endian, final xor applied. */
  digest(): Buffer {
    const out = Buffer.alloc(8);
    out.writeUInt32BE(~this.hi >>> 0, 0);
    out.writeUInt32BE(~this.lo >>> 0, 4);
    return out;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function isUtf8(bytes: Buffer): boolean {
  try {
    utf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Writes a tar-split file: segments and file entries in order, gzip-compressed. */
export class TarSplitWriter {
  private position = 0;
  private readonly gzip = zlib().createGzip({ level: 1 });
  private readonly out: Writable;
  private readonly finished: Promise<void>;

  constructor(path: string) {
    this.out = createWriteStream(path, { mode: 0o600 });
    this.gzip.pipe(this.out);
    this.finished = new Promise<void>((resolve, reject) => {
      this.out.on('finish', resolve);
      this.out.on('error', reject);
      this.gzip.on('error', reject);
    });
    // A failure is reported by end(); until then, keep it from going unhandled.
    this.finished.catch(() => {});
  }

  private async line(value: unknown): Promise<void> {
    if (!this.gzip.write(`${goJson(value)}\n`)) await once(this.gzip, 'drain');
  }

  /** Raw bytes of the archive that are not file contents. */
  async segment(bytes: Buffer): Promise<void> {
    await this.line({ type: 2, payload: bytes.toString('base64'), position: this.position++ });
  }

  /** A file entry: its name as in the header, its size and the CRC-64 of its contents (none when empty). */
  async file(name: Buffer, size: number, crc: Buffer | undefined): Promise<void> {
    const entry: Record<string, unknown> = { type: 1 };
    if (isUtf8(name)) entry.name = name.toString('utf8');
    else entry.name_raw = name.toString('base64');
    if (size > 0) entry.size = size;
    entry.payload = crc ? crc.toString('base64') : null;
    entry.position = this.position++;
    await this.line(entry);
  }

  /** Writes the closing empty segment and flushes the file. */
  async end(): Promise<void> {
    await this.segment(Buffer.alloc(0));
    this.gzip.end();
    await this.finished;
  }

  /** Abandons the file (the caller removes it). */
  destroy(): void {
    this.gzip.destroy();
    this.out.destroy();
  }
}

/** A path inside a layer directory from a tar name: cleaned, relative, never above the root. */
export function cleanEntryPath(name: string): string | undefined {
  // Like Go's filepath.Clean on the name made relative: "./a/" is "a", "a/../../b" stays "../b".
  let cleaned = posix.normalize(name.replace(/^\/+/, ''));
  if (cleaned === '.' || cleaned === './') return '';
  if (cleaned.endsWith('/')) cleaned = cleaned.slice(0, -1);
  return cleaned === '..' || cleaned.startsWith('../') ? undefined : cleaned;
}

/**
 * Resolves a directory path inside `root` (latin1 strings) as a chroot would: symbolic links are
 * followed, but never above the root. `cache` keeps what was resolved during one pass.
 */
async function resolveInRoot(root: string, rel: string, cache: Map<string, string>): Promise<string> {
  const cached = cache.get(rel);
  if (cached !== undefined) return cached;
  let path = rel;
  for (let hops = 0; ; ) {
    const parts = path === '' ? [] : path.split('/');
    let cur = '';
    let restarted = false;
    for (let i = 0; i < parts.length; i++) {
      const cand = cur === '' ? parts[i]! : `${cur}/${parts[i]}`;
      const st = await lstat(Buffer.from(`${root}/${cand}`, 'latin1'));
      if (st.isSymbolicLink()) {
        if (++hops > 40) throw new Error(`too many symbolic links under "${rel}" in the layer`);
        const target = (
          await readlink(Buffer.from(`${root}/${cand}`, 'latin1'), { encoding: 'buffer' })
        ).toString('latin1');
        const rest = parts.slice(i + 1).join('/');
        const base = target.startsWith('/') ? target : `${cur}/${target}`;
        path = posix
          .normalize(`/${base}${rest ? `/${rest}` : ''}`)
          .slice(1)
          .replace(/\/$/, '');
        restarted = true;
        break;
      }
      cur = cand;
    }
    if (!restarted) {
      cache.set(rel, cur);
      return cur;
    }
  }
}

/**
 * Rebuilds a layer tar from its tar-split file and the extracted files under `root` (a latin1 path
 * string: one char per byte), yielding the exact original bytes. Each file's size and CRC-64 are
 * checked against the tar-split entry.
 */
export async function* reassembleLayer(
  tarSplitPath: string,
  root: string,
  signal?: AbortSignal,
): AsyncGenerator<Buffer> {
  const { createInterface } = await import('node:readline');
  const lines = createInterface({
    input: createReadStream(tarSplitPath).pipe(zlib().createGunzip()),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  const seen = new Set<string>();
  const dirs = new Map<string, string>();
  for await (const line of lines) {
    signal?.throwIfAborted();
    if (line === '') continue;
    const entry = JSON.parse(line) as {
      type: number;
      name?: string;
      name_raw?: string;
      size?: number;
      payload?: string | null;
    };
    if (entry.type === 2) {
      if (entry.payload) yield Buffer.from(entry.payload, 'base64');
      continue;
    }
    if (entry.type !== 1) throw new Error(`tar-split: unknown entry type ${entry.type}`);
    const nameBytes =
      entry.name_raw !== undefined
        ? Buffer.from(entry.name_raw, 'base64')
        : Buffer.from(entry.name ?? '', 'utf8');
    const rel = cleanEntryPath(nameBytes.toString('latin1'));
    if (rel === undefined)
      throw new Error(`tar-split: entry "${nameBytes.toString('latin1')}" is outside the layer`);
    if (seen.has(rel)) throw new Error(`tar-split: duplicate entry "${rel}"`);
    seen.add(rel);
    const size = entry.size ?? 0;
    if (size === 0) continue;
    const crc = new Crc64();
    const slash = rel.lastIndexOf('/');
    const dir = slash === -1 ? '' : await resolveInRoot(root, rel.slice(0, slash), dirs);
    const file = `${dir === '' ? '' : `${dir}/`}${rel.slice(slash + 1)}`;
    // O_NOFOLLOW: a file entry is never a symlink; one found here would point anywhere.
    const handle = await open(
      Buffer.from(`${root}/${file}`, 'latin1'),
      constants.O_RDONLY | constants.O_NOFOLLOW,
    );
    let left = size;
    try {
      const buf = Buffer.allocUnsafe(Math.min(size, 1 << 20));
      while (left > 0) {
        const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, left), null);
        if (bytesRead === 0) break;
        const chunk = Buffer.from(buf.subarray(0, bytesRead));
        crc.update(chunk);
        left -= bytesRead;
        yield chunk;
      }
    } finally {
      await handle.close();
    }
    if (left !== 0 || (entry.payload && !crc.digest().equals(Buffer.from(entry.payload, 'base64')))) {
      throw new Error(`file integrity checksum failed for "${rel}" in the layer`);
    }
  }
}
