import { createHash, randomBytes, randomInt } from 'node:crypto';
import {
  chmod,
  lchown,
  lstat,
  mkdir,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { type Digest, digestHex, ImgError } from '@img/core';
import { type AppliedLayer, applyLayer } from './extract.js';
import type { HeldLock } from './lock.js';
import { NativeError, spawnWait } from './native.js';
import type { LayerRecord, Store } from './store.js';

/** containers/storage's overlay driver refuses deeper chains (1.43's maxDepth). */
const maxOverlayDepth = 128;

/** The ID containers/image gives a layer: the diff ID for a base layer, else sha256(parent + "+" + diffID hex). */
export function layerIdFor(parent: string | undefined, diffDigest: Digest): string {
  const hex = digestHex(diffDigest);
  return parent === undefined ? hex : createHash('sha256').update(`${parent}+${hex}`).digest('hex');
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Copies a directory tree as `cp -a` does: contents (reflinked where possible), owners, modes,
 * times, devices, hard links, xattrs. Run with posix_spawn, not child_process: native.ts says why.
 */
async function copyTree(from: string, to: string, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  const stderrPath = join(tmpdir(), `img-cp-${randomBytes(8).toString('hex')}.err`);
  try {
    const { code, signal: killedBy } = await spawnWait(
      'cp',
      ['-a', '--reflink=auto', '--', from, to],
      stderrPath,
      signal,
    ).catch((error: unknown) => {
      if (error instanceof NativeError && error.errno === constants.errno.ENOENT) {
        throw new ImgError('copying the parent layer failed: cp (GNU coreutils) was not found on PATH');
      }
      throw error;
    });
    signal?.throwIfAborted();
    if (code !== 0) {
      const stderr = await readFile(stderrPath, 'utf8').catch(() => '');
      const first = stderr.trim().split('\n')[0];
      throw new ImgError(
        `copying the parent layer failed: ${first || (killedBy === null ? `cp exited ${code}` : `cp was killed by signal ${killedBy}`)}`,
      );
    }
  } finally {
    await rm(stderrPath, { force: true });
  }
}

// 26 characters of base32 (A-Z, 2-7), as the overlay driver names its l/ links.
function newLinkId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let out = '';
  for (let i = 0; i < 26; i++) out += alphabet[randomInt(32)];
  return out;
}

/** Prepares the driver directory of a new layer; returns the overlay link ID (undefined for vfs). */
async function createDriverDir(
  store: Store,
  id: string,
  parent: string | undefined,
  signal: AbortSignal | undefined,
): Promise<string | undefined> {
  const dir = store.layerDir(id);
  if (store.driver === 'vfs') {
    await mkdir(join(store.graphRoot, 'vfs', 'dir'), { recursive: true, mode: 0o700 });
    if (parent === undefined) {
      await mkdir(dir, { mode: 0o555 });
      await chmod(dir, 0o555);
    } else {
      await copyTree(store.layerDir(parent), dir, signal);
    }
    return undefined;
  }
  const home = join(store.graphRoot, 'overlay');
  if (!(await exists(home))) {
    await mkdir(home, { recursive: true, mode: 0o700 });
  }
  // Without this file, a native overlay driver scans the whole home at start; with "true" it would
  // switch to fuse-overlayfs. img writes native layers only.
  if (!(await exists(join(home, '.has-mount-program')))) {
    await writeFile(join(home, '.has-mount-program'), 'false', { mode: 0o600 });
  }
  await mkdir(join(home, 'l'), { recursive: true, mode: 0o700 });
  await mkdir(dir, { mode: 0o700 });
  let diffMode = 0o555;
  let lower: string | undefined;
  let owner = { uid: 0, gid: 0 };
  if (parent !== undefined) {
    const parentDir = store.layerDir(parent);
    const s = await stat(join(parentDir, 'diff'));
    diffMode = s.mode & 0o7777;
    owner = { uid: s.uid, gid: s.gid };
    const parentLink = (await readFile(join(parentDir, 'link'), 'utf8')).trim();
    let parentLower = '';
    try {
      parentLower = (await readFile(join(parentDir, 'lower'), 'utf8')).trim();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    lower = parentLower === '' ? `l/${parentLink}` : `l/${parentLink}:${parentLower}`;
    if (lower.split(':').length > maxOverlayDepth) {
      throw new ImgError(`the image has more than ${maxOverlayDepth} layers, the overlay driver's limit`);
    }
  }
  await mkdir(join(dir, 'diff'), { mode: diffMode });
  await chmod(join(dir, 'diff'), diffMode);
  if (owner.uid !== 0 || owner.gid !== 0) {
    await lchown(join(dir, 'diff'), owner.uid, owner.gid);
  }
  const linkId = newLinkId();
  await writeFile(join(dir, 'link'), linkId, { mode: 0o644 });
  if (lower !== undefined) await writeFile(join(dir, 'lower'), lower, { mode: 0o644 });
  else await mkdir(join(dir, 'empty'), { mode: 0o700 });
  await mkdir(join(dir, 'work'), { mode: 0o700 });
  await mkdir(join(dir, 'merged'), { mode: 0o700 });
  return linkId;
}

/** Removes a layer's driver directory (and its overlay short link) and its tar-split file. */
export async function removeLayerFiles(store: Store, id: string): Promise<void> {
  const dir = store.layerDir(id);
  if (store.driver === 'overlay') {
    try {
      const link = (await readFile(join(dir, 'link'), 'utf8')).trim();
      if (/^[A-Z2-7]+$/.test(link)) await rm(join(store.graphRoot, 'overlay', 'l', link), { force: true });
    } catch {
      // No link file: nothing to unlink.
    }
  }
  await rm(dir, { recursive: true, force: true });
  await rm(store.tarSplitPath(id), { force: true });
}

/** Options of {@link createLayer}. */
export interface CreateLayerOptions {
  parent: string | undefined;
  expectedDigest?: Digest | undefined;
  expectedSize?: number | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Creates a layer from a blob stream under layers.lock, as containers/storage's PutLayer: a record
 * flagged incomplete (so that c/storage deletes it if img dies), the driver directory, one pass of
 * extraction and tar-split, then the final record under the ID derived from the parent and the diff
 * digest. If that layer appeared meanwhile, the new copy is dropped and the existing one returned.
 */
export function createLayer(
  store: Store,
  input: Readable,
  options: CreateLayerOptions,
): Promise<{ layer: LayerRecord; applied: AppliedLayer | undefined }> {
  return store.withLayersLock(true, (lock) => createLayerLocked(store, lock, input, options), options.signal);
}

/** {@link createLayer} for a caller that already holds layers.lock for writing. */
export async function createLayerLocked(
  store: Store,
  lock: HeldLock,
  input: Readable,
  options: CreateLayerOptions,
): Promise<{ layer: LayerRecord; applied: AppliedLayer | undefined }> {
  const tempId = randomBytes(32).toString('hex');
  const layers = await store.readLayers();
  if (options.parent !== undefined && !layers.some((l) => l.id === options.parent && !l.flags?.incomplete)) {
    throw new ImgError(`parent layer ${options.parent} is not in the store`);
  }
  const record: LayerRecord = {
    id: tempId,
    ...(options.parent === undefined ? {} : { parent: options.parent }),
    created: new Date().toISOString(),
    flags: { incomplete: true },
  };
  await store.writeLayers([...layers, record], lock);
  let linkId: string | undefined;
  try {
    linkId = await createDriverDir(store, tempId, options.parent, options.signal);
    const applied = await applyLayer(input, {
      expectedDigest: options.expectedDigest,
      expectedSize: options.expectedSize,
      driver: store.driver,
      filesDir: store.layerFilesDir(tempId),
      tarSplitPath: store.tarSplitPath(tempId),
      signal: options.signal,
    });
    const id = layerIdFor(options.parent, applied.diffDigest);
    const current = await store.readLayers();
    const already = current.find((l) => l.id === id && !l.flags?.incomplete);
    if (already) {
      await removeLayerFiles(store, tempId);
      await store.writeLayers(
        current.filter((l) => l.id !== tempId),
        lock,
      );
      return { layer: already, applied };
    }
    // A stale directory under the final ID (left by a crash between rename and record) goes first.
    if (!current.some((l) => l.id === id)) await removeLayerFiles(store, id);
    await rename(store.layerDir(tempId), store.layerDir(id));
    await rename(store.tarSplitPath(tempId), store.tarSplitPath(id));
    if (linkId !== undefined) {
      await symlink(`../${id}/diff`, join(store.graphRoot, 'overlay', 'l', linkId));
    }
    const final: LayerRecord = {
      id,
      ...(options.parent === undefined ? {} : { parent: options.parent }),
      created: record.created!,
      'compressed-diff-digest': applied.compressedDigest,
      'compressed-size': applied.compressedSize,
      'diff-digest': applied.diffDigest,
      'diff-size': applied.diffSize,
      ...(applied.compression === 0 ? {} : { compression: applied.compression }),
      ...(applied.uidset.length > 0 ? { uidset: applied.uidset } : {}),
      ...(applied.gidset.length > 0 ? { gidset: applied.gidset } : {}),
    };
    await store.writeLayers([...current.filter((l) => l.id !== tempId && l.id !== id), final], lock);
    return { layer: final, applied };
  } catch (error) {
    await rollback(store, tempId, lock);
    throw error;
  }
}

async function rollback(store: Store, tempId: string, lock: HeldLock): Promise<void> {
  await removeLayerFiles(store, tempId);
  const layers = await store.readLayers();
  await store.writeLayers(
    layers.filter((l) => l.id !== tempId),
    lock,
  );
}
