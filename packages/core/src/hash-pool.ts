import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { Digest, DigestAlgorithm } from './digest.js';
import { AbortedError } from './errors.js';

/**
 * The worker's code, inline so that it loads the same from sources and from dist. A worker hashes a
 * whole file with one reused buffer: the read and the hash stay on the worker's thread (sync calls
 * there block no event loop), so several large blobs are hashed on several cores at once, and the
 * main thread allocates nothing per chunk. Between chunks it checks a shared cancel flag. Built-ins
 * come from process.getBuiltinModule, which works whether the parent's flags (`--input-type=module`)
 * make the source a script or a module.
 */
const workerSource = `
const { parentPort } = process.getBuiltinModule('node:worker_threads');
const fs = process.getBuiltinModule('node:fs');
const crypto = process.getBuiltinModule('node:crypto');
const buffer = Buffer.allocUnsafe(4 << 20);
parentPort.on('message', ({ id, path, algorithm, cancel, progress }) => {
  const flags = new Int32Array(cancel);
  let fd;
  try {
    fd = fs.openSync(path, 'r');
    const hash = crypto.createHash(algorithm);
    let total = 0;
    let last = 0;
    for (;;) {
      if (Atomics.load(flags, 0) !== 0) throw Object.assign(new Error('aborted'), { code: 'ABORT_ERR' });
      const n = fs.readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
      total += n;
      if (progress && total - last >= 16 << 20) {
        last = total;
        parentPort.postMessage({ id, bytes: total });
      }
    }
    parentPort.postMessage({ id, digest: algorithm + ':' + hash.digest('hex'), size: total });
  } catch (error) {
    parentPort.postMessage({ id, error: { message: error.message, code: error.code } });
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
});
`;

interface Job {
  slot: PoolWorker;
  resolve(result: { digest: Digest; size: number }): void;
  reject(error: Error): void;
  onProgress: ((bytes: number) => void) | undefined;
}

interface PoolWorker {
  worker: Worker;
  busy: boolean;
}

/** Files at least this large are hashed by a worker; smaller ones are not worth the message round trip. */
export const workerHashThreshold = 8 << 20;

class HashPool {
  /** The pool is made once node:worker_threads is loaded (lazily: most commands never hash a large file). */
  constructor(private readonly WorkerClass: typeof Worker) {}

  private readonly workers: PoolWorker[] = [];
  private readonly queue: Array<() => void> = [];
  private readonly jobs = new Map<number, Job>();
  private nextId = 0;
  private readonly size = Math.max(1, Math.min(availableParallelism(), 4));

  digestFile(
    path: string,
    algorithm: DigestAlgorithm,
    options: { signal?: AbortSignal | undefined; onProgress?: ((bytes: number) => void) | undefined },
  ): Promise<{ digest: Digest; size: number }> {
    options.signal?.throwIfAborted();
    return new Promise((resolve, reject) => {
      const start = (slot: PoolWorker) => {
        const id = this.nextId++;
        const cancel = new SharedArrayBuffer(4);
        const abort = () => Atomics.store(new Int32Array(cancel), 0, 1);
        options.signal?.addEventListener('abort', abort, { once: true });
        const done = () => {
          options.signal?.removeEventListener('abort', abort);
          this.jobs.delete(id);
          slot.busy = false;
          slot.worker.unref();
          this.queue.shift()?.();
        };
        this.jobs.set(id, {
          slot,
          resolve: (r) => {
            done();
            resolve(r);
          },
          reject: (e) => {
            done();
            reject(options.signal?.aborted ? new AbortedError({ cause: e }) : e);
          },
          onProgress: options.onProgress,
        });
        slot.busy = true;
        slot.worker.ref();
        slot.worker.postMessage({ id, path, algorithm, cancel, progress: options.onProgress !== undefined });
      };
      const free = this.freeWorker();
      if (free) {
        start(free);
        return;
      }
      // Queued: an abort while waiting rejects at once and gives up the place in the queue.
      const queued = () => {
        options.signal?.removeEventListener('abort', dropped);
        start(this.freeWorker()!);
      };
      const dropped = () => {
        const at = this.queue.indexOf(queued);
        if (at >= 0) this.queue.splice(at, 1);
        reject(new AbortedError({ cause: options.signal?.reason }));
      };
      options.signal?.addEventListener('abort', dropped, { once: true });
      this.queue.push(queued);
    });
  }

  private freeWorker(): PoolWorker | undefined {
    const idle = this.workers.find((w) => !w.busy);
    if (idle) return idle;
    if (this.workers.length >= this.size) return undefined;
    const worker = new this.WorkerClass(workerSource, { eval: true });
    worker.unref();
    worker.on(
      'message',
      (m: {
        id: number;
        bytes?: number;
        digest?: Digest;
        size?: number;
        error?: { message: string; code?: string };
      }) => {
        const job = this.jobs.get(m.id);
        if (!job) return;
        if (m.error) {
          job.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
        } else if (m.digest !== undefined) {
          job.resolve({ digest: m.digest, size: m.size ?? 0 });
        } else if (m.bytes !== undefined) {
          job.onProgress?.(m.bytes);
        }
      },
    );
    const slot: PoolWorker = { worker, busy: false };
    worker.on('error', (error) => {
      // A worker that dies fails its jobs and leaves the pool; the next job starts a new one.
      this.workers.splice(this.workers.indexOf(slot), 1);
      for (const job of [...this.jobs.values()]) if (job.slot === slot) job.reject(error);
    });
    this.workers.push(slot);
    return slot;
  }
}

let pool: Promise<HashPool> | undefined;

/** Hashes a file on a worker thread (a small shared pool, one per process); see {@link workerHashThreshold}. */
export async function digestFileInWorker(
  path: string,
  algorithm: DigestAlgorithm,
  options: { signal?: AbortSignal | undefined; onProgress?: ((bytes: number) => void) | undefined } = {},
): Promise<{ digest: Digest; size: number }> {
  pool ??= import('node:worker_threads').then((m) => new HashPool(m.Worker));
  return (await pool).digestFile(path, algorithm, options);
}

/**
 * The stream worker's code. Each message is one batch of one stream's bytes, in an ArrayBuffer
 * transferred (not copied) both ways: the worker hashes it, or writes it to the stream's file
 * descriptor, and sends it back for reuse. Every `data` and `end` message gets exactly one answer.
 * Writes go in calls of at most 32 KiB, as Go's io.Copy makes them: the kernel sizes page-cache
 * folios by the length of the write, and large folios come from the page allocator's large free
 * blocks, which in a virtual machine that hands free memory back to its host fault page by page on
 * the host (docs/copy.md, "Writing large blobs").
 */
const streamWorkerSource = `
const { parentPort } = process.getBuiltinModule('node:worker_threads');
const crypto = process.getBuiltinModule('node:crypto');
const fs = process.getBuiltinModule('node:fs');
const jobs = new Map();
function writeAll(fd, bytes) {
  for (let at = 0; at < bytes.length; ) at += fs.writeSync(fd, bytes, at, Math.min(32768, bytes.length - at));
}
parentPort.on('message', (m) => {
  const job = jobs.get(m.id);
  try {
    if (m.op === 'start') {
      jobs.set(m.id, { hash: m.algorithm ? crypto.createHash(m.algorithm) : undefined, fd: m.fd, written: 0 });
    } else if (m.op === 'drop') jobs.delete(m.id);
    else if (m.op === 'data') {
      if (job) {
        const bytes = new Uint8Array(m.buffer, 0, m.length);
        job.hash?.update(bytes);
        if (job.fd !== undefined) {
          writeAll(job.fd, bytes);
          job.written += bytes.length;
        }
      }
      parentPort.postMessage({ id: m.id, op: 'done', buffer: m.buffer }, [m.buffer]);
    } else if (m.op === 'end') {
      jobs.delete(m.id);
      parentPort.postMessage({ id: m.id, op: 'ended', hex: job?.hash ? job.hash.digest('hex') : '', written: job?.written ?? 0 });
    }
  } catch (error) {
    jobs.delete(m.id);
    const buffer = m.op === 'data' ? m.buffer : undefined;
    parentPort.postMessage({ id: m.id, op: 'error', message: String(error && error.message), buffer }, buffer ? [buffer] : []);
  }
});
`;

/**
 * The bytes of one batch sent to the stream worker. 256 KiB rather than 512 KiB: with a blob both
 * hashed and written (two streams of batches), a 1 GiB pull peaked at 121–128 MiB instead of
 * 130–140 MiB, with 25% fewer page faults and no more time.
 */
const batchBytes = 256 << 10;
/** Batches of one stream in flight at most: the stream waits beyond that (1 MiB held per stream). */
const batchesInFlight = 3;
/** Returned batches kept for reuse, so that steady streaming allocates nothing. */
const spareBatches = 8;

/** An incremental hash: {@link DigestingStream} feeds it and reads the digest at the end. */
export interface IncrementalHash {
  /** Adds bytes (copied before it returns); a promise when the caller must wait before the next. */
  update(chunk: Uint8Array): Promise<void> | undefined;
  /** The hex digest of every byte added. */
  digest(): Promise<string>;
  /** Abandons the hash (the stream failed); no digest follows. */
  dispose(): void;
}

interface StreamJob {
  onDone(): void;
  onEnd(result: { hex: string; written: number }): void;
  onError(error: Error): void;
}

/**
 * One worker thread hashing (or writing to a file) the batches of every offloaded stream of the
 * process, in turn. It keeps the process alive only while an answer is awaited (a batch or an end):
 * a stream abandoned without being disposed never holds the process open.
 */
class StreamWorker {
  private readonly worker: Worker;
  private readonly jobs = new Map<number, StreamJob>();
  private readonly spare: ArrayBuffer[] = [];
  private nextId = 0;
  private awaited = 0;

  constructor(WorkerClass: typeof Worker) {
    this.worker = new WorkerClass(streamWorkerSource, { eval: true });
    this.worker.unref();
    this.worker.on(
      'message',
      (m: {
        id: number;
        op: string;
        buffer?: ArrayBuffer;
        hex?: string;
        written?: number;
        message?: string;
      }) => {
        const job = this.jobs.get(m.id);
        this.answered();
        if (m.buffer && this.spare.length < spareBatches) this.spare.push(m.buffer);
        if (m.op === 'done') {
          job?.onDone();
        } else if (m.op === 'ended') {
          this.jobs.delete(m.id);
          job?.onEnd({ hex: m.hex ?? '', written: m.written ?? 0 });
        } else if (m.op === 'error') {
          this.jobs.delete(m.id);
          job?.onError(new Error(`stream worker: ${m.message}`));
        }
      },
    );
    this.worker.on('error', (error) => {
      // A worker that dies fails every stream it hashes; the next stream starts a new worker.
      if (streamWorker === this) streamWorker = undefined;
      const jobs = [...this.jobs.values()];
      this.jobs.clear();
      this.awaited = 0;
      this.worker.unref();
      for (const job of jobs) job.onError(error);
    });
  }

  batch(): ArrayBuffer {
    return this.spare.pop() ?? new ArrayBuffer(batchBytes);
  }

  start(task: StreamTask, job: StreamJob): number {
    const id = this.nextId++;
    this.jobs.set(id, job);
    this.worker.postMessage({ id, op: 'start', algorithm: task.algorithm, fd: task.fd });
    return id;
  }

  send(id: number, buffer: ArrayBuffer, length: number): void {
    this.awaiting();
    this.worker.postMessage({ id, op: 'data', buffer, length }, [buffer]);
  }

  finish(id: number): void {
    this.awaiting();
    this.worker.postMessage({ id, op: 'end' });
  }

  drop(id: number): void {
    if (!this.jobs.delete(id)) return;
    this.worker.postMessage({ id, op: 'drop' });
  }

  private awaiting(): void {
    if (this.awaited++ === 0) this.worker.ref();
  }

  private answered(): void {
    if (this.awaited > 0 && --this.awaited === 0) this.worker.unref();
  }
}

let streamWorker: StreamWorker | undefined;
let workerClass: Promise<typeof Worker> | undefined;

/** What the worker does with one stream's bytes: hash them, write them to a file descriptor, or both. */
interface StreamTask {
  algorithm?: DigestAlgorithm | undefined;
  fd?: number | undefined;
}

/**
 * A stream handled in batches: the bytes are copied (one memcpy) into batches that the worker
 * hashes or writes, at most {@link batchesInFlight} of them in flight.
 */
class OffloadedStream {
  private readonly id: number;
  private current: Uint8Array;
  private filled = 0;
  private inFlight = 0;
  private waiting: { resolve(): void; reject(error: Error): void } | undefined;
  private result:
    | { resolve(r: { hex: string; written: number }): void; reject(error: Error): void }
    | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly worker: StreamWorker,
    task: StreamTask,
  ) {
    this.current = new Uint8Array(worker.batch());
    this.id = worker.start(task, {
      onDone: () => {
        this.inFlight--;
        const waiting = this.waiting;
        this.waiting = undefined;
        waiting?.resolve();
      },
      onEnd: (r) => this.result?.resolve(r),
      onError: (error) => {
        this.failure = error;
        this.waiting?.reject(error);
        this.result?.reject(error);
      },
    });
  }

  update(chunk: Uint8Array): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(chunk.length - at, this.current.length - this.filled);
      this.current.set(chunk.subarray(at, at + n), this.filled);
      this.filled += n;
      at += n;
      if (this.filled === this.current.length) this.flush();
    }
    if (this.inFlight < batchesInFlight) return undefined;
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  /**
   * Sends what is left and ends the stream: resolves once the worker has handled every batch sent
   * (with the hex digest when hashing, and the bytes written when writing).
   */
  end(): Promise<{ hex: string; written: number }> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.result = { resolve, reject };
      if (this.filled > 0) this.flush();
      this.worker.finish(this.id);
    });
  }

  dispose(): void {
    this.worker.drop(this.id);
  }

  private flush(): void {
    this.worker.send(this.id, this.current.buffer as ArrayBuffer, this.filled);
    this.inFlight++;
    this.current = new Uint8Array(this.worker.batch());
    this.filled = 0;
  }
}

/**
 * Streams at least this large are worth hashing on the worker; smaller ones cost more in set-up
 * and messages than they save.
 */
export const offloadedHashThreshold = 16 << 20;

/**
 * An incremental hash computed on a worker thread, so that the thread reading a stream (sockets,
 * files, writes) spends one memory copy per byte on it instead of the hash. Worth it where another
 * core is free: see {@link offloadedHashThreshold}.
 */
export async function offloadedHash(algorithm: DigestAlgorithm): Promise<IncrementalHash> {
  const stream = new OffloadedStream(await sharedStreamWorker(), { algorithm });
  return {
    update: (chunk) => stream.update(chunk),
    digest: async () => (await stream.end()).hex,
    dispose: () => stream.dispose(),
  };
}

/** Bytes written to a file on a worker thread; see {@link offloadedFileWriter}. */
export interface OffloadedFileWriter {
  /** Adds bytes (copied before it returns); a promise when the caller must wait before the next. */
  update(chunk: Uint8Array): Promise<void> | undefined;
  /**
   * Writes what is left; resolves with the bytes written once every write is done (the descriptor
   * may then be closed), rejects with the first write error.
   */
  end(): Promise<number>;
}

/**
 * Writes a stream to the open file descriptor `fd` (at its current offset, in order) on the stream
 * worker thread, in system calls of at most 32 KiB (see streamWorkerSource). The caller must not
 * touch `fd` until {@link OffloadedFileWriter.end} has settled, even after a failure: until then a
 * write may still be running.
 */
export async function offloadedFileWriter(fd: number): Promise<OffloadedFileWriter> {
  const stream = new OffloadedStream(await sharedStreamWorker(), { fd });
  return {
    update: (chunk) => stream.update(chunk),
    end: async () => (await stream.end()).written,
  };
}

async function sharedStreamWorker(): Promise<StreamWorker> {
  workerClass ??= import('node:worker_threads').then((m) => m.Worker);
  const WorkerClass = await workerClass;
  streamWorker ??= new StreamWorker(WorkerClass);
  return streamWorker;
}
