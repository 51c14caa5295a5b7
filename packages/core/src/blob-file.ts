import { constants, createReadStream } from 'node:fs';
import { copyFile, type FileHandle, open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Digest, DigestingStream, digestAlgorithm, verifiedDigestOf } from './digest.js';
import { DigestMismatchError, SizeMismatchError } from './errors.js';
import {
  digestFileInWorker,
  offloadedFileWriter,
  offloadedHashThreshold,
  workerHashThreshold,
} from './hash-pool.js';
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
  let handle: FileHandle;
  try {
    handle = await open(tmp, 'wx');
  } catch (error) {
    stream.destroy();
    throw error;
  }
  let written = 0;
  // A large blob is written by the stream worker thread (see writeBatched).
  const offload = (info.size ?? -1) >= offloadedHashThreshold;
  // pipeline settles as soon as a stream fails or the signal fires, maybe before this last stage
  // has stopped: the handle is closed only once it has, so that no write (on the worker thread
  // above all, which FileHandle.close does not wait for) reaches a closed or reused descriptor.
  let writing: Promise<void> | undefined;
  const write = (source: AsyncIterable<Buffer>) => {
    writing = (async () => {
      written = await writeBatched(handle, source, writeBatch, { offload });
    })();
    return writing;
  };
  try {
    if (digester) await pipeline(stream, digester, write, { signal: options.signal });
    else await pipeline(stream, write, { signal: options.signal });
    await handle.close();
    await rename(tmp, path);
  } catch (error) {
    await writing?.catch(() => {});
    await handle.close().catch(() => {});
    await rm(tmp, { force: true });
    throw error;
  }
  return digester
    ? { digest: digester.digest, size: digester.bytes }
    : { digest: trusted as Digest, size: written };
}

/** Chunks are gathered, by reference, into writes of at least this many bytes. */
const writeBatch = 512 << 10;

/**
 * Writes `data` to `handle` in batches of about `batchBytes`: chunks are gathered by reference (not
 * copied) into one writev, and each batch is written while the next is gathered. One awaited write
 * per 16–64 KiB chunk would cost a system call and a thread-pool round trip each, with this thread
 * idle meanwhile. With `offload` (for large files), the bytes are copied into batches that the
 * stream worker thread writes, in system calls of at most 32 KiB (see offloadedFileWriter). Returns
 * the bytes written; no write is still running when it settles.
 */
export async function writeBatched(
  handle: FileHandle,
  data: AsyncIterable<Buffer>,
  batchBytes: number,
  options: { offload?: boolean } = {},
): Promise<number> {
  if (options.offload) return writeOffloaded(handle, data);
  let batch: Buffer[] = [];
  let size = 0;
  let written = 0;
  let pending: Promise<unknown> | undefined;
  const send = async () => {
    const buffers = batch;
    const total = size;
    batch = [];
    size = 0;
    if (pending) await pending;
    // libuv writes every buffer (looping over short writes and the iovec limit) or fails.
    pending = handle.writev(buffers).then(({ bytesWritten }) => {
      written += bytesWritten;
      if (bytesWritten !== total) throw new Error(`short write: ${bytesWritten} of ${total} bytes`);
    });
    pending.catch(() => {}); // Awaited before the next batch or at the end; never left unobserved.
  };
  try {
    for await (const chunk of data) {
      batch.push(chunk);
      size += chunk.length;
      if (size >= batchBytes) await send();
    }
    if (size > 0) await send();
  } catch (error) {
    await pending?.catch(() => {}); // The caller closes the handle next: no write may still run.
    throw error;
  }
  await pending;
  return written;
}

async function writeOffloaded(handle: FileHandle, data: AsyncIterable<Buffer>): Promise<number> {
  const writer = await offloadedFileWriter(handle.fd);
  try {
    for await (const chunk of data) {
      const wait = writer.update(chunk);
      if (wait !== undefined) await wait;
    }
  } catch (error) {
    await writer.end().catch(() => {}); // The caller closes the handle next: no write may still run.
    throw error;
  }
  return writer.end();
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
