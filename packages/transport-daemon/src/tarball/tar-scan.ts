// A header-only reader of tar files: 512-byte headers are read and entry data is seeked over, so
// questions about names and sizes (what does this docker-archive hold?) never read a layer.
// Internal to the package.
import type { FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';

/** One entry as a header scan sees it. */
export interface TarHeader {
  /** The full name (ustar prefix, PAX `path` or GNU long name applied). */
  name: string;
  /** The type flag: `0` regular file, `1` hard link, `2` symbolic link, `5` directory, … */
  type: string;
  /** The link target of a hard or symbolic link. */
  linkname: string;
  /** Bytes of data. */
  size: number;
  /** Where the data starts in the file. */
  offset: number;
}

/**
 * The name of an entry relative to the archive root, or undefined when it would land outside it
 * (absolute, `..`) or names the root itself.
 */
export function entryPath(name: string): string | undefined {
  const normal = posix.normalize(name.replace(/^(?:\.\/)+/, ''));
  const trimmed = normal.endsWith('/') ? normal.slice(0, -1) : normal;
  if (trimmed === '' || trimmed === '.' || trimmed.startsWith('/')) return undefined;
  if (trimmed === '..' || trimmed.startsWith('../')) return undefined;
  return trimmed;
}

/** Where a link entry points, relative to the archive root: hard links name a root path, symbolic ones a relative one. */
export function linkTarget(name: string, type: 'link' | 'symlink', linkname: string): string | undefined {
  if (type === 'link') return entryPath(linkname);
  if (linkname.startsWith('/')) return entryPath(linkname);
  return entryPath(posix.join(posix.dirname(name), linkname));
}

function field(block: Buffer, start: number, length: number): string {
  const raw = block.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? length : end).toString('utf8');
}

function numeric(block: Buffer, start: number, length: number): number {
  const first = block[start]!;
  // GNU base-256 for values that do not fit the octal field (positive values only).
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

/** PAX extended header records: `<length> <key>=<value>\n`. */
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
 * Yields the entries of a tar file from their headers, seeking over the data. Throws on a header
 * whose checksum is wrong and on an entry whose data runs past the end of the file (truncated).
 */
export async function* scanTar(handle: FileHandle): AsyncGenerator<TarHeader> {
  const { size: fileSize } = await handle.stat();
  const block = Buffer.alloc(512);
  let offset = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax = new Map<string, string>();
  for (;;) {
    const { bytesRead } = await handle.read(block, 0, 512, offset);
    if (bytesRead === 0 && offset > 0) return;
    if (bytesRead < 512) throw new Error(`truncated tar: a header at offset ${offset} is incomplete`);
    if (block.every((b) => b === 0)) return;
    if (!checksumMatches(block)) throw new Error(`not a tar header at offset ${offset}`);
    const type = block[156] === 0 ? '0' : String.fromCharCode(block[156]!);
    const headerSize = numeric(block, 124, 12);
    const dataOffset = offset + 512;
    const checkComplete = (size: number) => {
      if (dataOffset + size > fileSize) {
        throw new Error(
          `truncated tar: the entry at offset ${offset} has ${size} bytes, the file ends first`,
        );
      }
    };
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      checkComplete(headerSize);
      if (headerSize > 1 << 20)
        throw new Error(`tar metadata entry of ${headerSize} bytes at offset ${offset}`);
      const data = Buffer.alloc(headerSize);
      await handle.read(data, 0, headerSize, dataOffset);
      if (type === 'x') pax = paxRecords(data);
      if (type === 'L') longName = field(data, 0, headerSize);
      if (type === 'K') longLink = field(data, 0, headerSize);
      offset = dataOffset + Math.ceil(headerSize / 512) * 512;
      continue;
    }
    const paxSize = pax.get('size');
    const size = paxSize === undefined ? headerSize : Number(paxSize);
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new Error(`tar entry at offset ${offset} has an invalid size "${paxSize ?? headerSize}"`);
    }
    // Links and directories carry no data whatever their size field says.
    const dataSize = type === '1' || type === '2' || type === '5' ? 0 : size;
    checkComplete(dataSize);
    let name = field(block, 0, 100);
    // POSIX ustar splits long names into a prefix; GNU tar uses those bytes for other fields.
    if (block.subarray(257, 263).toString('latin1') === 'ustar\0') {
      const prefix = field(block, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    yield {
      name: pax.get('path') ?? longName ?? name,
      type,
      linkname: pax.get('linkpath') ?? longLink ?? field(block, 157, 100),
      size: dataSize,
      offset: dataOffset,
    };
    longName = undefined;
    longLink = undefined;
    pax = new Map();
    offset = dataOffset + Math.ceil(dataSize / 512) * 512;
  }
}
