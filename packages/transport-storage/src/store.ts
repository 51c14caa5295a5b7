import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type Digest, InvalidLayoutError, type NamedReference, parseNormalizedNamed } from '@img/core';
import type { ResolvedStore } from './config.js';
import { type HeldLock, withLock } from './lock.js';

// The record types keep every field they are read with: containers/storage adds fields in newer
// versions, and a rewrite must not drop them.

/** A record of layers.json (containers/storage's Layer). */
export interface LayerRecord {
  id: string;
  parent?: string;
  names?: string[];
  created?: string;
  'compressed-diff-digest'?: string;
  'compressed-size'?: number;
  'diff-digest'?: string;
  'diff-size'?: number;
  compression?: number;
  uidset?: number[];
  gidset?: number[];
  flags?: Record<string, unknown>;
  [key: string]: unknown;
}

/** A record of images.json (containers/storage's Image). */
export interface ImageRecord {
  id: string;
  digest?: string;
  names?: string[];
  'names-history'?: string[];
  layer?: string;
  metadata?: string;
  'big-data-names'?: string[];
  'big-data-sizes'?: Record<string, number>;
  'big-data-digests'?: Record<string, string>;
  created?: string;
  flags?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Compression values of layer records (containers/storage pkg/archive). */
export const Compression = { none: 0, gzip: 2, zstd: 4 } as const;

/** Go's json.Marshal escapes these in strings; the same escapes keep files byte-comparable with c/storage's. */
export function goJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Writes a file as containers/storage's ioutils.AtomicWriteFile: a temp file beside it, fsync, rename. */
export async function writeFileAtomically(
  path: string,
  data: Uint8Array | string,
  mode = 0o600,
): Promise<void> {
  const temp = join(dirname(path), `.tmp-${basename(path)}${randomBytes(6).toString('hex')}`);
  const handle = await open(temp, 'wx', mode);
  try {
    try {
      await handle.writeFile(data);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await chmod(temp, mode);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

async function readJsonArray<T>(path: string): Promise<T[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  if (text.trim() === '') return [];
  try {
    const parsed = JSON.parse(text) as unknown;
    return Array.isArray(parsed) ? (parsed as T[]) : [];
  } catch (error) {
    throw new InvalidLayoutError(`invalid containers-storage file "${path}": ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** The file name of an image big-data item (containers/storage's makeBigDataBaseName). */
export function bigDataFileName(key: string): string {
  return /^[.0-9a-z]*$/.test(key) ? key : `=${Buffer.from(key, 'utf8').toString('base64')}`;
}

/** The big-data key of an image's manifest with this digest. */
export function manifestKey(digest: Digest): string {
  return `manifest-${digest}`;
}

/** The big-data key containers/image stores per-instance signatures under. */
export function signatureKey(digest: Digest): string {
  return `signature-${digest.slice(digest.indexOf(':') + 1)}`;
}

/** Every digest an image can be looked up by: its `digest` and those of its manifest big-data items. */
export function imageDigests(image: ImageRecord): string[] {
  const out = new Set<string>();
  if (image.digest) out.add(image.digest);
  for (const [key, digest] of Object.entries(image['big-data-digests'] ?? {})) {
    if (key.startsWith('manifest')) out.add(digest);
  }
  return [...out];
}

function sameRepository(image: ImageRecord, named: NamedReference): boolean {
  return (image.names ?? []).some((name) => {
    try {
      return parseNormalizedNamed(name).name() === named.name();
    } catch {
      return false;
    }
  });
}

/**
 * The image a name (and digest) denotes, as containers/image resolves it: an exact entry of `names`,
 * else, for `name@digest`, an image of that repository holding a manifest with that digest.
 */
export function findImageByName(
  images: readonly ImageRecord[],
  named: NamedReference,
): ImageRecord | undefined {
  const text = named.toString();
  const exact = images.find((i) => i.names?.includes(text));
  if (exact) return exact;
  if (named.digest) {
    return images.find((i) => imageDigests(i).includes(named.digest!) && sameRepository(i, named));
  }
  return undefined;
}

/** The image whose ID is `id` or, if exactly one ID starts with it, that image. */
export function findImageById(images: readonly ImageRecord[], id: string): ImageRecord | undefined {
  const exact = images.find((i) => i.id === id);
  if (exact) return exact;
  const matches = images.filter((i) => i.id.startsWith(id));
  return matches.length === 1 ? matches[0] : undefined;
}

/** The paths of one store (one graph root and one driver) and its JSON files. */
export class Store {
  readonly driver: 'vfs' | 'overlay';
  readonly graphRoot: string;
  readonly runRoot: string;
  readonly layersDir: string;
  readonly imagesDir: string;

  constructor(readonly resolved: ResolvedStore) {
    this.driver = resolved.driver === 'vfs' ? 'vfs' : 'overlay';
    this.graphRoot = resolved.graphRoot;
    this.runRoot = resolved.runRoot;
    this.layersDir = join(this.graphRoot, `${this.driver}-layers`);
    this.imagesDir = join(this.graphRoot, `${this.driver}-images`);
  }

  /** `[driver@graphroot+runroot]`, for messages. */
  toString(): string {
    return `[${this.driver}@${this.graphRoot}+${this.runRoot}]`;
  }

  /** Runs `fn` under layers.lock (write lock when `exclusive`). */
  withLayersLock<T>(
    exclusive: boolean,
    fn: (lock: HeldLock) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    return withLock(join(this.layersDir, 'layers.lock'), exclusive, fn, signal);
  }

  /** Runs `fn` under images.lock (write lock when `exclusive`). */
  withImagesLock<T>(
    exclusive: boolean,
    fn: (lock: HeldLock) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    return withLock(join(this.imagesDir, 'images.lock'), exclusive, fn, signal);
  }

  readLayers(): Promise<LayerRecord[]> {
    return readJsonArray<LayerRecord>(join(this.layersDir, 'layers.json'));
  }

  /** Replaces layers.json; the caller holds layers.lock for writing and then writes a new token. */
  async writeLayers(layers: readonly LayerRecord[], lock: HeldLock): Promise<void> {
    await mkdir(this.layersDir, { recursive: true, mode: 0o700 });
    await writeFileAtomically(join(this.layersDir, 'layers.json'), goJson(layers));
    await lock.touch();
  }

  readImages(): Promise<ImageRecord[]> {
    return readJsonArray<ImageRecord>(join(this.imagesDir, 'images.json'));
  }

  /** Replaces images.json; the caller holds images.lock for writing. */
  async writeImages(images: readonly ImageRecord[], lock: HeldLock): Promise<void> {
    await mkdir(this.imagesDir, { recursive: true, mode: 0o700 });
    await writeFileAtomically(join(this.imagesDir, 'images.json'), goJson(images));
    await lock.touch();
  }

  /** The directory of an image's big-data files. */
  imageDir(id: string): string {
    return join(this.imagesDir, id);
  }

  /** The path of one big-data item of an image. */
  bigDataPath(id: string, key: string): string {
    return join(this.imageDir(id), bigDataFileName(key));
  }

  /** The tar-split file of a layer. */
  tarSplitPath(id: string): string {
    return join(this.layersDir, `${id}.tar-split.gz`);
  }

  /** The driver directory of a layer: vfs's full root filesystem, overlay's layer dir (diff/ inside). */
  layerDir(id: string): string {
    return this.driver === 'vfs'
      ? join(this.graphRoot, 'vfs', 'dir', id)
      : join(this.graphRoot, 'overlay', id);
  }

  /** Where a layer's files are: the tree tar-split names point into. */
  layerFilesDir(id: string): string {
    return this.driver === 'vfs' ? this.layerDir(id) : join(this.layerDir(id), 'diff');
  }
}
