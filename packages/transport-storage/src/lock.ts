import { randomBytes } from 'node:crypto';
import { constants, type FileHandle, mkdir, open, realpath } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { F_RDLCK, F_WRLCK, trySetLock } from './native.js';

// containers/storage's lock files (pkg/lockfile): a POSIX fcntl record lock on the whole file, plus
// a 64-byte "last writer" token written at offset 0 after every change, which long-lived readers
// (podman system service, cri-o) compare to decide whether to reload the JSON they cached.
//
// fcntl locks belong to the process, and closing ANY descriptor of the file drops them. So each lock
// file is opened once per process, shared by every holder through an in-process reader/writer queue,
// and never read through another descriptor.

/** The length of a last-writer token. */
export const tokenLength = 64;
let tokenCounter = 0n;

/** A new token, laid out as containers/storage writes it: time, counter, pid, random bytes. */
export function newToken(): Buffer {
  const token = Buffer.alloc(tokenLength);
  token.writeBigUInt64LE(process.hrtime.bigint() + BigInt(Date.now()) * 1_000_000n, 0);
  token.writeBigUInt64LE(++tokenCounter, 8);
  token.writeUInt32LE(process.pid, 16);
  randomBytes(tokenLength - 20).copy(token, 20);
  return token;
}

interface Waiter {
  exclusive: boolean;
  resolve: () => void;
}

/** One lock file of one process: the descriptor, the fcntl lock held on it, and its in-process holders. */
class LockFile {
  private handle: FileHandle | undefined;
  private opening: Promise<FileHandle> | undefined;
  // A close in flight: a new descriptor must not be opened before it ends, or the close would drop
  // the lock taken through the new one.
  private closing: Promise<void> | undefined;
  private readers = 0;
  private writer = false;
  private held: 'none' | 'shared' | 'exclusive' = 'none';
  private sharedTaking: Promise<void> | undefined;
  private readonly queue: Waiter[] = [];

  constructor(readonly path: string) {}

  private async fd(): Promise<FileHandle> {
    if (this.closing !== undefined) await this.closing;
    if (this.handle) return this.handle;
    this.opening ??= (async () => {
      try {
        // Created if missing, never truncated, and without O_APPEND, so that pwrite at offset 0 works.
        const handle = await open(this.path, constants.O_RDWR | constants.O_CREAT, 0o644);
        this.handle = handle;
        return handle;
      } finally {
        this.opening = undefined;
      }
    })();
    return this.opening;
  }

  private async takeFcntl(type: number, signal: AbortSignal | undefined): Promise<void> {
    const handle = await this.fd();
    let delay = 5;
    while (!trySetLock(handle.fd, type)) {
      signal?.throwIfAborted();
      await sleep(delay);
      delay = Math.min(delay * 2, 100);
    }
    this.held = type === F_WRLCK ? 'exclusive' : 'shared';
  }

  /** Waits for the in-process turn, then for the fcntl lock, polling with backoff. */
  async acquire(exclusive: boolean, signal: AbortSignal | undefined): Promise<void> {
    const busy = exclusive
      ? this.writer || this.readers > 0 || this.queue.length > 0
      : this.writer || this.queue.length > 0;
    if (busy) await new Promise<void>((resolve) => this.queue.push({ exclusive, resolve }));
    else if (exclusive) this.writer = true;
    else this.readers++;
    try {
      if (exclusive) await this.takeFcntl(F_WRLCK, signal);
      else if (this.held !== 'shared') {
        // Concurrent in-process readers share one fcntl read lock (or the downgrade of a write lock).
        this.sharedTaking ??= this.takeFcntl(F_RDLCK, signal).finally(() => {
          this.sharedTaking = undefined;
        });
        await this.sharedTaking;
      }
    } catch (error) {
      await this.release(exclusive);
      throw error;
    }
  }

  async release(exclusive: boolean): Promise<void> {
    if (exclusive) this.writer = false;
    else this.readers--;
    if (this.writer || this.readers > 0) return;
    const next = this.queue.shift();
    if (next) {
      // Hand over; the next holders convert the fcntl lock to their own type.
      if (next.exclusive) this.writer = true;
      else {
        this.readers++;
        while (this.queue[0] && !this.queue[0].exclusive) {
          this.readers++;
          this.queue.shift()!.resolve();
        }
      }
      next.resolve();
      return;
    }
    const handle = this.handle;
    this.handle = undefined;
    this.held = 'none';
    if (handle) {
      // Closing the only descriptor releases the fcntl lock.
      this.closing = handle.close().finally(() => {
        this.closing = undefined;
      });
      await this.closing;
    }
  }

  async readToken(): Promise<Buffer> {
    const handle = await this.fd();
    const buf = Buffer.alloc(tokenLength);
    const { bytesRead } = await handle.read(buf, 0, tokenLength, 0);
    return buf.subarray(0, bytesRead);
  }

  async writeToken(): Promise<void> {
    const handle = await this.fd();
    await handle.write(newToken(), 0, tokenLength, 0);
  }
}

const locks = new Map<string, LockFile>();

/** A held lock: the token calls are valid only while it is held. */
export interface HeldLock {
  /** The last-writer token now in the file (empty or short for a never-written lock file). */
  readToken(): Promise<Buffer>;
  /** Records a change: writes a new last-writer token. Only under a write lock. */
  touch(): Promise<void>;
}

async function lockFileFor(path: string): Promise<LockFile> {
  // One descriptor per file: key by the real directory, so two spellings of a path share it.
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const key = join(await realpath(dirname(path)), basename(path));
  let lock = locks.get(key);
  if (!lock) {
    lock = new LockFile(key);
    locks.set(key, lock);
  }
  return lock;
}

/**
 * Runs `fn` holding the containers/storage lock file at `path` (shared, or exclusive when
 * `exclusive`), taken as c/storage takes it (fcntl F_RDLCK/F_WRLCK on the whole file).
 */
export async function withLock<T>(
  path: string,
  exclusive: boolean,
  fn: (lock: HeldLock) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const lock = await lockFileFor(path);
  await lock.acquire(exclusive, signal);
  try {
    return await fn({
      readToken: () => lock.readToken(),
      touch: async () => {
        if (!exclusive) throw new Error(`internal error: token written under a read lock on ${path}`);
        await lock.writeToken();
      },
    });
  } finally {
    await lock.release(exclusive);
  }
}

/** A lock held until `release()`, for holders that outlive one call (a stream being read). */
export interface ReleasableLock extends HeldLock {
  release(): Promise<void>;
}

/** Takes a lock file as {@link withLock} does, but leaves releasing it to the caller. */
export async function acquireLock(
  path: string,
  exclusive: boolean,
  signal?: AbortSignal,
): Promise<ReleasableLock> {
  const lock = await lockFileFor(path);
  await lock.acquire(exclusive, signal);
  let released = false;
  return {
    readToken: () => lock.readToken(),
    touch: async () => {
      if (!exclusive) throw new Error(`internal error: token written under a read lock on ${path}`);
      await lock.writeToken();
    },
    release: async () => {
      if (released) return;
      released = true;
      await lock.release(exclusive);
    },
  };
}
