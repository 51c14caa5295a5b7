import { loadKoffi } from './koffi.js';

// Node has no fcntl record locks, mknod or xattr calls. These few libc functions are reached
// through koffi (a prebuilt FFI, nothing compiled at install). Each call is one short syscall;
// nothing here blocks: locks are taken with F_SETLK and polled by the caller (lock.ts).

const koffi = loadKoffi(import.meta.url);

const libc = koffi.load('libc.so.6');

// struct flock on x86_64 and aarch64 Linux: short l_type, short l_whence, off_t l_start,
// off_t l_len, pid_t l_pid (with the padding the C compiler adds).
const Flock = koffi.struct('img_storage_flock', {
  l_type: 'int16_t',
  l_whence: 'int16_t',
  l_start: 'int64_t',
  l_len: 'int64_t',
  l_pid: 'int32_t',
});
const FlockPtr = koffi.inout(koffi.pointer(Flock));

const fcntl = libc.func('int fcntl(int fd, int cmd, ...)');
const mknodFn = libc.func('int mknod(const uint8_t *path, uint32_t mode, uint64_t dev)');
const lsetxattrFn = libc.func(
  'int lsetxattr(const uint8_t *path, const char *name, const uint8_t *value, size_t size, int flags)',
);
const llistxattrFn = libc.func('intptr_t llistxattr(const uint8_t *path, _Out_ uint8_t *list, size_t size)');
const lgetxattrFn = libc.func(
  'intptr_t lgetxattr(const uint8_t *path, const char *name, _Out_ uint8_t *value, size_t size)',
);

const F_GETLK = 5;
const F_SETLK = 6;
/** fcntl lock types (fcntl.h). */
export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;
const EINTR = 4;
const EAGAIN = 11;
const EACCES = 13;
const ENODATA = 61;
const ENOTSUP = 95;
const ERANGE = 34;
const WNOHANG = 1;

/** A failed libc call: `errno` and the syscall name, as Node's own fs errors carry them. */
export class NativeError extends Error {
  readonly errno: number;
  readonly syscall: string;
  constructor(syscall: string, errno: number, path?: string) {
    super(`${syscall} failed with errno ${errno}${path === undefined ? '' : ` on "${path}"`}`);
    this.syscall = syscall;
    this.errno = errno;
  }
}

function cPath(path: Buffer): Buffer {
  return Buffer.concat([path, Buffer.from([0])]);
}

/**
 * Tries to take (or change, or with F_UNLCK release) a whole-file POSIX record lock on `fd`
 * without waiting. Returns false when another process holds a conflicting lock.
 */
export function trySetLock(fd: number, type: number): boolean {
  for (;;) {
    const lock = { l_type: type, l_whence: 0, l_start: 0, l_len: 0, l_pid: 0 };
    if (fcntl(fd, F_SETLK, FlockPtr, lock) === 0) return true;
    const errno = koffi.errno();
    if (errno === EINTR) continue;
    if (errno === EAGAIN || errno === EACCES) return false;
    throw new NativeError('fcntl(F_SETLK)', errno);
  }
}

/** The pid of a process holding a lock that conflicts with `type` on `fd`, or undefined (F_GETLK). */
export function lockHolder(fd: number, type: number): number | undefined {
  const lock = { l_type: type, l_whence: 0, l_start: 0, l_len: 0, l_pid: 0 };
  if (fcntl(fd, F_GETLK, FlockPtr, lock) !== 0) throw new NativeError('fcntl(F_GETLK)', koffi.errno());
  return lock.l_type === F_UNLCK ? undefined : lock.l_pid;
}

/** mknod(2) with a raw (non-UTF-8 safe) path; `dev` already encoded with {@link makedev}. */
export function mknod(path: Buffer, mode: number, dev: bigint): void {
  if (mknodFn(cPath(path), mode, dev) !== 0) {
    throw new NativeError('mknod', koffi.errno(), path.toString('latin1'));
  }
}

/** glibc's makedev(): the dev_t of a device major/minor pair. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** lsetxattr(2); returns false when the filesystem does not support the attribute's namespace. */
export function lsetxattr(path: Buffer, name: string, value: Buffer): boolean {
  if (lsetxattrFn(cPath(path), name, value, value.length, 0) === 0) return true;
  const errno = koffi.errno();
  if (errno === ENOTSUP) return false;
  throw new NativeError(`lsetxattr(${name})`, errno, path.toString('latin1'));
}

/** The extended attribute names of a path (not following a final symlink). */
export function llistxattr(path: Buffer): string[] {
  const p = cPath(path);
  for (;;) {
    const size = Number(llistxattrFn(p, null, 0));
    if (size < 0) {
      const errno = koffi.errno();
      if (errno === ENOTSUP) return [];
      throw new NativeError('llistxattr', errno, path.toString('latin1'));
    }
    if (size === 0) return [];
    const buf = Buffer.alloc(size);
    const got = Number(llistxattrFn(p, buf, size));
    if (got < 0) {
      if (koffi.errno() === ERANGE) continue;
      throw new NativeError('llistxattr', koffi.errno(), path.toString('latin1'));
    }
    return buf
      .subarray(0, got)
      .toString('latin1')
      .split('\0')
      .filter((n) => n !== '');
  }
}

/** One extended attribute's value, or undefined when it is not set. */
export function lgetxattr(path: Buffer, name: string): Buffer | undefined {
  const p = cPath(path);
  for (;;) {
    const size = Number(lgetxattrFn(p, name, null, 0));
    if (size < 0) {
      const errno = koffi.errno();
      if (errno === ENODATA || errno === ENOTSUP) return undefined;
      throw new NativeError(`lgetxattr(${name})`, errno, path.toString('latin1'));
    }
    const buf = Buffer.alloc(size);
    const got = Number(lgetxattrFn(p, name, buf, size));
    if (got < 0) {
      if (koffi.errno() === ERANGE) continue;
      throw new NativeError(`lgetxattr(${name})`, koffi.errno(), path.toString('latin1'));
    }
    return buf.subarray(0, got);
  }
}

/** How a program run by {@link spawnWait} ended: its exit code, or the signal that ended it. */
export interface SpawnResult {
  code: number | null;
  signal: number | null;
}

interface Spawner {
  spawnp: (
    pid: number[],
    file: string,
    actions: Buffer,
    attr: Buffer,
    argv: (string | null)[],
    envp: (string | null)[],
  ) => number;
  destroyActions: (actions: Buffer) => number;
  destroyAttr: (attr: Buffer) => number;
  actions: (stdin: string, stdout: string, stderr: string) => Buffer;
  attr: () => Buffer;
  waitpid: (pid: number, status: number[], options: number) => number;
}

let spawner: Spawner | undefined;

// Declared when first used: a copy that writes no layer never spawns a program.
function getSpawner(): Spawner {
  if (spawner) return spawner;
  const fn = <T>(decl: string) => libc.func(decl) as unknown as T;
  const actionsInit = fn<(a: Buffer) => number>('int posix_spawn_file_actions_init(void *actions)');
  const addOpen = fn<(a: Buffer, fd: number, path: string, flags: number, mode: number) => number>(
    'int posix_spawn_file_actions_addopen(void *actions, int fd, const char *path, int flags, uint32_t mode)',
  );
  const attrInit = fn<(a: Buffer) => number>('int posix_spawnattr_init(void *attr)');
  const setFlags = fn<(a: Buffer, flags: number) => number>(
    'int posix_spawnattr_setflags(void *attr, short flags)',
  );
  const setSigDefault = fn<(a: Buffer, set: Buffer) => number>(
    'int posix_spawnattr_setsigdefault(void *attr, const void *set)',
  );
  const setSigMask = fn<(a: Buffer, set: Buffer) => number>(
    'int posix_spawnattr_setsigmask(void *attr, const void *set)',
  );
  const sigEmpty = fn<(set: Buffer) => number>('int sigemptyset(void *set)');
  const sigAdd = fn<(set: Buffer, signal: number) => number>('int sigaddset(void *set, int signal)');
  // glibc's posix_spawn_file_actions_t is 80 bytes, posix_spawnattr_t 336, sigset_t 128: room to spare.
  const O_WRONLY = 0o1;
  const O_CREAT = 0o100;
  const O_TRUNC = 0o1000;
  const POSIX_SPAWN_SETSIGDEF = 0x04;
  const POSIX_SPAWN_SETSIGMASK = 0x08;
  const SIGPIPE = 13;
  const check = (what: string, rc: number) => {
    if (rc !== 0) throw new NativeError(what, rc);
  };
  spawner = {
    spawnp: fn(
      'int posix_spawnp(_Out_ int *pid, const char *file, const void *actions, const void *attr, const char **argv, const char **envp)',
    ),
    destroyActions: fn('int posix_spawn_file_actions_destroy(void *actions)'),
    destroyAttr: fn('int posix_spawnattr_destroy(void *attr)'),
    actions(stdin, stdout, stderr) {
      const a = Buffer.alloc(256);
      check('posix_spawn_file_actions_init', actionsInit(a));
      check('posix_spawn_file_actions_addopen', addOpen(a, 0, stdin, 0, 0));
      check('posix_spawn_file_actions_addopen', addOpen(a, 1, stdout, O_WRONLY, 0));
      check('posix_spawn_file_actions_addopen', addOpen(a, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600));
      return a;
    },
    attr() {
      // As libuv does for Node's children: signals back to their defaults (Node ignores SIGPIPE) and none blocked.
      const a = Buffer.alloc(1024);
      const defaults = Buffer.alloc(256);
      const mask = Buffer.alloc(256);
      check('posix_spawnattr_init', attrInit(a));
      sigEmpty(defaults);
      sigAdd(defaults, SIGPIPE);
      sigEmpty(mask);
      check('posix_spawnattr_setsigdefault', setSigDefault(a, defaults));
      check('posix_spawnattr_setsigmask', setSigMask(a, mask));
      check('posix_spawnattr_setflags', setFlags(a, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK));
      return a;
    },
    waitpid: fn('int waitpid(int pid, _Out_ int *status, int options)'),
  };
  return spawner;
}

/**
 * Runs a program (found on PATH) to its end with posix_spawn, stdin and stdout on /dev/null and
 * stderr into the file `stderrPath`, and waits for it: its end is looked for (waitpid with WNOHANG,
 * for this pid only) at each SIGCHLD the process gets, and every 50 ms in case signals merged.
 *
 * Why not child_process: libuv forks. Every page Node has written is then write-protected until it
 * is written again, and each first write after the fork faults: ~18 µs a page in a VM here, about
 * 1 s for 200 MiB. A copy into a vfs store runs `cp` once per layer with the copy's buffers hot, so
 * every layer paid for the whole heap again. posix_spawn (glibc's CLONE_VM|CLONE_VFORK) shares the
 * memory until the exec and marks nothing.
 *
 * `signal` sends SIGTERM to the program; the promise still settles only when it has ended.
 */
export function spawnWait(
  file: string,
  args: readonly string[],
  stderrPath: string,
  signal?: AbortSignal,
): Promise<SpawnResult> {
  const s = getSpawner();
  const actions = s.actions('/dev/null', '/dev/null', stderrPath);
  const attr = s.attr();
  const env = Object.entries(process.env).map(([k, v]) => `${k}=${v ?? ''}`);
  const pid = [0];
  let rc: number;
  try {
    rc = s.spawnp(pid, file, actions, attr, [file, ...args, null], [...env, null]);
  } finally {
    s.destroyActions(actions);
    s.destroyAttr(attr);
  }
  if (rc !== 0) return Promise.reject(new NativeError(`posix_spawn(${file})`, rc));
  const child = pid[0] as number;
  const stop = () => {
    try {
      process.kill(child, 'SIGTERM');
    } catch {
      // Already gone.
    }
  };
  signal?.addEventListener('abort', stop, { once: true });
  return new Promise<SpawnResult>((resolve, reject) => {
    const check = (): boolean => {
      const status = [0];
      const r = s.waitpid(child, status, WNOHANG);
      if (r === 0) return false;
      if (r !== child) {
        const errno = koffi.errno();
        if (errno === EINTR) return false;
        reject(new NativeError(`waitpid(${file})`, errno));
      } else {
        const st = status[0] as number;
        const termSignal = st & 0x7f;
        resolve(
          termSignal === 0 ? { code: (st >> 8) & 0xff, signal: null } : { code: null, signal: termSignal },
        );
      }
      signal?.removeEventListener('abort', stop);
      return true;
    };
    // It may have ended already.
    if (!check()) watchChild(child, check);
  });
}

/** Programs being waited for: their pid, and a check that says whether it has ended. */
const waiting = new Map<number, () => boolean>();
let watcher: NodeJS.Timeout | undefined;

function checkChildren(): void {
  for (const [pid, check] of waiting) if (check()) waiting.delete(pid);
  if (waiting.size === 0 && watcher !== undefined) {
    process.off('SIGCHLD', checkChildren);
    clearInterval(watcher);
    watcher = undefined;
  }
}

/**
 * Runs `check` at each SIGCHLD, and every 50 ms in case signals merged, until it says the child
 * ended. One listener and one timer for every child waited for.
 */
function watchChild(pid: number, check: () => boolean): void {
  waiting.set(pid, check);
  if (watcher === undefined) {
    process.on('SIGCHLD', checkChildren);
    watcher = setInterval(checkChildren, 50);
  }
}
