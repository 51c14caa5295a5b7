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
