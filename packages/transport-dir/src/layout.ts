// The on-disk names of a dir: image, as containers/image's directory transport lays them out.
// Never exported from the package: callers go through the reference, source and destination.
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { type Digest, digestAlgorithm, digestHex, parseDigest, TooLargeError } from '@img/core';

/** The name of the file that marks a directory as an image directory. */
export const versionFileName = 'version';

/** The name of the top-level manifest. */
export const manifestFileName = 'manifest.json';

const versionPrefix = 'Directory Transport Version: ';

/** A `major.minor` version of the layout. */
export interface LayoutVersion {
  major: number;
  minor: number;
}

/** Every digest is sha256: what skopeo and containers/image have always written. */
export const version11: LayoutVersion = { major: 1, minor: 1 };
/** Some digest is not sha256, so some names carry an `algorithm-` prefix (containers/image since late 2025). */
export const version12: LayoutVersion = { major: 1, minor: 2 };
/** The newest layout this package reads and overwrites. */
export const maxSupportedVersion = version12;

/** The content of the version file for `version`. */
export function formatVersion(version: LayoutVersion): string {
  return `${versionPrefix}${version.major}.${version.minor}\n`;
}

/**
 * Parses the content of a version file; undefined when it is not one. Strict as containers/image:
 * the text must be exactly what {@link formatVersion} would write.
 */
export function parseVersion(text: string): LayoutVersion | undefined {
  const match = /^Directory Transport Version: (0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\n$/.exec(text);
  if (!match) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]) };
}

/** Whether `a` is newer than `b`. */
export function isNewerVersion(a: LayoutVersion, b: LayoutVersion): boolean {
  return a.major !== b.major ? a.major > b.major : a.minor > b.minor;
}

/**
 * The file-name stem of a digest: the bare hex for sha256 (the historical layout), `algorithm-hex`
 * for any other algorithm (containers/image's rule since layout 1.2). The digest is validated first,
 * so no name can ever contain a path separator.
 */
export function digestStem(digest: Digest): string {
  const valid = parseDigest(digest);
  const algorithm = digestAlgorithm(valid);
  return algorithm === 'sha256' ? digestHex(valid) : `${algorithm}-${digestHex(valid)}`;
}

/** Whether a digest makes the layout 1.2 (any algorithm but sha256). */
export function needsVersion12(digest: Digest): boolean {
  return digestAlgorithm(parseDigest(digest)) !== 'sha256';
}

/** The file name of a blob. */
export function blobFileName(digest: Digest): string {
  return digestStem(digest);
}

/** The file name of the top-level manifest, or of one instance of a list. */
export function manifestFileNameFor(instanceDigest?: Digest): string {
  return instanceDigest === undefined ? manifestFileName : `${digestStem(instanceDigest)}.manifest.json`;
}

/** The file name of signature number `index` (1-based) of the image or of one instance. */
export function signatureFileName(index: number, instanceDigest?: Digest): string {
  return instanceDigest === undefined
    ? `signature-${index}`
    : `${digestStem(instanceDigest)}.signature-${index}`;
}

/** A content-addressed entry of an image directory, by kind, with the digest stem it is named by. */
export interface ContentAddressedEntry {
  kind: 'blob' | 'instance-manifest' | 'instance-signature';
  stem: string;
}

const entryPattern =
  /^((?:[0-9a-f]{64}|sha512-[0-9a-f]{128}))(?:(\.manifest\.json)|(\.signature-[1-9][0-9]*))?$/;

/**
 * Classifies a directory entry as one of the content-addressed files a commit may remove when the
 * new manifest no longer needs it: a blob, an instance manifest or an instance signature. Anything
 * else (the version file, the top-level manifest and signatures, temp files, foreign names) gives
 * undefined and is never removed.
 */
export function contentAddressedEntry(name: string): ContentAddressedEntry | undefined {
  const match = entryPattern.exec(name);
  if (!match) return undefined;
  const stem = match[1]!;
  if (match[2] !== undefined) return { kind: 'instance-manifest', stem };
  if (match[3] !== undefined) return { kind: 'instance-signature', stem };
  return { kind: 'blob', stem };
}

/** The path of `name` inside the image directory `dir`. */
export function layoutPath(dir: string, name: string): string {
  return join(dir, name);
}

/** Whether an error is "no such file or directory". */
export function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/**
 * Reads a small file whole, refusing one over `limit` bytes with TooLargeError (checked on the open
 * handle, so a file swapped in between cannot slip past). Undefined when the file does not exist.
 */
export async function readSmallFile(path: string, limit: number, what: string): Promise<Buffer | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  try {
    const { size } = await handle.stat();
    if (size > limit) throw new TooLargeError(what, limit);
    const bytes = await handle.readFile();
    // The file may have grown since the stat.
    if (bytes.byteLength > limit) throw new TooLargeError(what, limit);
    return bytes;
  } finally {
    await handle.close();
  }
}
