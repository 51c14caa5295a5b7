import { constants, createReadStream } from 'node:fs';
import { copyFile, type FileHandle, open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Digest, DigestingStream, digestAlgorithm, verifiedDigestOf } from './digest.js';
import { DigestMismatchError, SizeMismatchError } from './errors.js';
import { digestFileInWorker, workerHashThreshold } from './hash-pool.js';
import type { BlobInfo, OperationOptions, UploadInfo } from './types.js';

/** A temp name beside `path`, unique to this process and call, so that a crash leaves only a file a later run ignores. */
export function tempPathFor(path: string): string {
  return `${path}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`;
}

const tempName = /\.(\d+)\.[a-z0-9]+\.tmp$/;

/**
 * Removes the temp files {@link tempPathFor} made in `dir` whose process is gone (a copy killed
 * mid-blob). Files of live processes, and anything not named by tempPathFor, are left alone. Never
 * throws: it is housekeeping.
 */
export async function removeStaleTempFiles(dir: string): Promise<number> {
  let removed = 0;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const pid = Number(tempName.exec(name)?.[1]);
    if (!pid || isProcessAlive(pid)) continue;
    await rm(join(dir, name), { force: true, recursive: true }).then(
      () => removed++,
      () => {},
    );
  }
  return removed;
}

/**
 * Whether a process with this pid exists on this host (signal 0 sends nothing; EPERM means it exists
 * under another user). A pid means nothing across hosts or PID namespaces: use it only for files
 * this host's processes make.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Writes a blob stream to `path` through a temp file: the bytes are verified against `info`
 * (digest when set, size unless -1) while streaming, and the file is renamed into place only when
 * they match; on any failure the temp file is removed and nothing is left at `path`.
 * Returns the digest and size written.
 */
export async function writeBlobFile(
  stream: Readable,
  path: string,
  info: Partial<UploadInfo>,
  options: OperationOptions = {},
): Promise<BlobInfo> {
  const tmp = tempPathFor(path);
  // A stream the engine already verifies against this digest (and size) fails before its end on a
  // mismatch: hashing its bytes a second time would only cost CPU.
  const trusted = verifiedDigestOf(stream, info);
  const digester = trusted
    ? undefined
    : new DigestingStream({ expectedDigest: info.digest, expectedSize: info.size });
  const file = new BlobFileWriter(tmp);
  try {
    if (digester) await pipeline(stream, digester, file, { signal: options.signal });
    else await pipeline(stream, file, { signal: options.signal });
    await rename(tmp, path);
  } catch (error) {
    // The file may still be opening: wait for it to close, or the removal could come first.
    if (!file.closed) await new Promise<void>((resolve) => file.once('close', () => resolve()).destroy());
    await rm(tmp, { force: true });
    throw error;
  }
  return digester
    ? { digest: digester.digest, size: digester.bytes }
    : { digest: trusted as Digest, size: file.bytesWritten };
}

/** Chunks are gathered, by reference, into writes of at least this many bytes. */
const writeBatch = 512 << 10;

/**
 * Writes a new file (opened with 'wx') from a stream of network-sized chunks: they are gathered, by
 * reference and not copied, into one writev of about {@link writeBatch} bytes, so that a blob costs
 * one system call and one thread-pool round trip per MiB rather than one per 64 KiB chunk (a
 * WriteStream's). The file is closed before 'close' is emitted, on success and on failure.
 */
class BlobFileWriter extends Writable {
  /** Bytes written to the file so far. */
  bytesWritten = 0;
  private handle: FileHandle | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly path: string) {
    // The next batch is gathered while one is being written.
    super({ highWaterMark: writeBatch });
  }

  override _construct(callback: (error?: Error | null) => void): void {
    open(this.path, 'wx').then(
      (handle) => {
        this.handle = handle;
        callback();
      },
      (error: Error) => callback(error),
    );
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.add(chunk);
    this.flushIfFull(callback);
  }

  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (error?: Error | null) => void,
  ): void {
    for (const { chunk } of chunks) this.add(chunk);
    this.flushIfFull(callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.flush().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const handle = this.handle;
    this.handle = undefined;
    this.pending = [];
    if (!handle) {
      callback(error);
      return;
    }
    handle.close().then(
      () => callback(error),
      (closeError: Error) => callback(error ?? closeError),
    );
  }

  private add(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
  }

  private flushIfFull(callback: (error?: Error | null) => void): void {
    if (this.pendingBytes < writeBatch) callback();
    else this.flush().then(() => callback(), callback);
  }

  private async flush(): Promise<void> {
    const buffers = this.pending;
    const total = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    if (total === 0) return;
    // libuv writes every buffer (looping over short writes and the iovec limit) or fails.
    const { bytesWritten } = await (this.handle as FileHandle).writev(buffers);
    this.bytesWritten += bytesWritten;
    if (bytesWritten !== total)
      throw new Error(`short write to ${this.path}: ${bytesWritten} of ${total} bytes`);
  }
}

/**
 * Copies a blob held in a regular file to `path`: the kernel copies (a reflink clone where the
 * filesystem allows, else an in-kernel copy) while the source is hashed in parallel, so no byte goes
 * through JavaScript buffers twice. The result is renamed into place only when the digest and size
 * match `info`; on failure nothing is left at `path`.
 */
export async function copyBlobFile(
  source: string,
  path: string,
  info: BlobInfo,
  options: OperationOptions & { onProgress?: ((bytes: number) => void) | undefined } = {},
): Promise<BlobInfo> {
  if (info.size >= workerHashThreshold) return copyLargeBlobFile(source, path, info, options);
  const tmp = tempPathFor(path);
  const digester = new DigestingStream({ expectedDigest: info.digest, expectedSize: info.size });
  const onProgress = options.onProgress;
  if (onProgress) digester.on('data', () => onProgress(digester.bytes));
  try {
    // Both must settle before cleanup, or a copy still running could recreate the temp file.
    const results = await Promise.allSettled([
      copyFile(source, tmp, constants.COPYFILE_FICLONE),
      pipeline(
        createReadStream(source, { highWaterMark: 1 << 20 }),
        digester,
        async (chunks: AsyncIterable<Buffer>) => {
          for await (const _ of chunks) {
            // Drained: only the digest is wanted.
          }
        },
        { signal: options.signal },
      ),
    ]);
    for (const result of results) if (result.status === 'rejected') throw result.reason;
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  return { digest: digester.digest, size: digester.bytes };
}

/** copyBlobFile for large blobs: the hash runs on a worker thread while the kernel copies. */
async function copyLargeBlobFile(
  source: string,
  path: string,
  info: BlobInfo,
  options: OperationOptions & { onProgress?: ((bytes: number) => void) | undefined },
): Promise<BlobInfo> {
  // Everything that can fail at once fails before the copy starts, so no copy outlives a cleanup.
  const algorithm = digestAlgorithm(info.digest);
  options.signal?.throwIfAborted();
  const tmp = tempPathFor(path);
  try {
    const [, hashed] = await settleAll([
      copyFile(source, tmp, constants.COPYFILE_FICLONE),
      digestFileInWorker(source, algorithm, options),
    ]);
    if (hashed.size !== info.size) throw new SizeMismatchError(info.digest, info.size, hashed.size);
    if (hashed.digest !== info.digest) throw new DigestMismatchError(info.digest, hashed.digest);
    options.onProgress?.(hashed.size);
    await rename(tmp, path);
    return { digest: hashed.digest, size: hashed.size };
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

/** Like Promise.all, but waits for every promise to settle before it rejects with the first failure. */
async function settleAll<T extends readonly unknown[]>(
  promises: { [K in keyof T]: Promise<T[K]> },
): Promise<T> {
  const results = await Promise.allSettled(promises);
  for (const result of results) if (result.status === 'rejected') throw result.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
