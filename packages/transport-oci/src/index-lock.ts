// A lock on a layout's index.json, held across its read-modify-write so that two processes adding
// images to one layout do not lose each other's entries. Internal to the package.
//
// Node has no binding for fcntl(2) or flock(2) locks, and a native module for one is not worth a
// dependency, so the lock is a file beside index.json: `open(…, 'wx')` (O_CREAT | O_EXCL) creates it
// atomically or fails because someone holds it. The file holds the holder's pid, so a lock left by a
// killed process is recognised (its pid is not alive) and taken over. A pid says nothing across
// hosts or PID namespaces: layouts shared that way must not be written concurrently.
import { type FileHandle, link, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImgError, isProcessAlive, type OperationOptions, tempPathFor } from '@img/core';

/** The name of the lock file, beside index.json. */
export const indexLockName = 'index.json.lock';

/** How long to wait for a lock held by a live process before giving up. */
const defaultTimeout = 30_000;

/**
 * A lock file whose content is not a pid is being written (the holder is between open and write) or
 * was left half-written by a crash: it is taken over only once it is this old.
 */
const unreadableGrace = 5_000;

/**
 * The lock files this process holds now, each with the token of its holder: a lock file naming this
 * process's pid is stale when no holder of it is here (a process with the same pid died before).
 */
const held = new Map<string, symbol>();

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** What a look at an existing lock file found: who holds it, and whether that holder is gone. */
interface LockState {
  pid: number | undefined;
  stale: boolean;
  /** Identifies the very file looked at: a new lock file at the same path differs in one of them. */
  ino: bigint;
  mtimeNs: bigint;
}

/** Looks at the lock file; undefined when it has gone meanwhile. */
async function inspect(path: string): Promise<LockState | undefined> {
  try {
    const info = await stat(path, { bigint: true });
    const text = await readFile(path, 'utf8');
    const match = /^(\d+)\n?$/.exec(text);
    const pid = match ? Number(match[1]) : undefined;
    let stale: boolean;
    if (pid === undefined) stale = Date.now() - Number(info.mtimeMs) > unreadableGrace;
    else if (pid === process.pid) stale = !held.has(path);
    else stale = !isProcessAlive(pid);
    return { pid, stale, ino: info.ino, mtimeNs: info.mtimeNs };
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Removes a stale lock file, unless it was replaced by a live one since it was inspected. The file
 * is first renamed aside (atomic: of two processes taking the same stale lock over, one moves it);
 * when what was moved is not the file inspected, another process had already taken the lock over
 * and made its own, which is linked back into place.
 */
async function takeOver(path: string, seen: LockState): Promise<void> {
  const aside = tempPathFor(path);
  try {
    await rename(path, aside);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return;
    throw error;
  }
  try {
    const moved = await stat(aside, { bigint: true });
    if (moved.ino !== seen.ino || moved.mtimeNs !== seen.mtimeNs) {
      await link(aside, path).catch(() => {});
    }
  } finally {
    await rm(aside, { force: true });
  }
}

/** Creates the lock file for this holder; false when it exists already. */
async function tryCreate(path: string, token: symbol): Promise<boolean> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'wx', 0o644);
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    throw error;
  }
  // Recorded before the first await, so that no other holder in this process can see the file
  // with this pid and no holder here.
  held.set(path, token);
  try {
    await handle.writeFile(`${process.pid}\n`);
  } catch (error) {
    held.delete(path);
    await handle.close().catch(() => {});
    await rm(path, { force: true });
    throw error;
  }
  await handle.close();
  return true;
}

/**
 * Runs `action` while holding the lock on `root`'s index.json (`index.json.lock` beside it): waits,
 * with a short backoff, while a live process holds it, takes over a lock whose process is gone, and
 * always releases it. Fails when the lock stays held past `timeout` ms (30 s) or the signal fires.
 * The directory `root` must exist.
 */
export async function withIndexLock<T>(
  root: string,
  action: () => Promise<T>,
  options: OperationOptions & { timeout?: number } = {},
): Promise<T> {
  const path = join(root, indexLockName);
  // Holders in this process queue here first, one at a time per lock file: only holders of other
  // processes then contend for the file, so the stale-lock takeover never races a holder of ours.
  const previous = inProcess.get(path) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => {
    release = resolve;
  });
  const tail = previous.then(() => mine);
  inProcess.set(path, tail);
  try {
    await abortable(previous, options.signal);
    return await holdLockFile(path, root, action, options);
  } finally {
    release();
    if (inProcess.get(path) === tail) inProcess.delete(path);
  }
}

/** The tail of the queue of this process's holders, per lock file. */
const inProcess = new Map<string, Promise<void>>();

/** Waits for `promise`, or rejects with the signal's reason when it fires first. */
async function abortable(promise: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return promise;
  signal.throwIfAborted();
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** Takes the lock file itself (see withIndexLock), runs `action`, and releases it. */
async function holdLockFile<T>(
  path: string,
  root: string,
  action: () => Promise<T>,
  options: OperationOptions & { timeout?: number },
): Promise<T> {
  const token = Symbol(path);
  const deadline = Date.now() + (options.timeout ?? defaultTimeout);
  let delay = 5;
  for (;;) {
    options.signal?.throwIfAborted();
    if (await tryCreate(path, token)) break;
    const state = await inspect(path);
    if (state?.stale) {
      await takeOver(path, state);
      continue;
    }
    if (state && Date.now() >= deadline) {
      const holder = state.pid === undefined ? 'another process' : `process ${state.pid}`;
      throw new ImgError(
        `cannot lock OCI layout "${root}": ${indexLockName} is held by ${holder} (waited ${Math.round(
          (options.timeout ?? defaultTimeout) / 1000,
        )} s)`,
      );
    }
    if (state) {
      try {
        await sleep(delay + Math.floor(Math.random() * delay), undefined, { signal: options.signal });
      } catch (error) {
        // The abort reason, as every other step reports an abort, rather than the timer's AbortError.
        options.signal?.throwIfAborted();
        throw error;
      }
      delay = Math.min(delay * 2, 200);
    }
  }
  try {
    return await action();
  } finally {
    // Removed before this holder is forgotten: in between, another holder here still sees it held.
    await rm(path, { force: true });
    if (held.get(path) === token) held.delete(path);
  }
}
