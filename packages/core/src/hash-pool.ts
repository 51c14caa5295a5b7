import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { Digest, DigestAlgorithm } from './digest.js';
import { AbortedError } from './errors.js';

/**
 * The worker's code, inline so that it loads the same from sources and from dist. A worker hashes a
 * whole file with one reused buffer: the read and the hash stay on the worker's thread (sync calls
 * there block no event loop), so several large blobs are hashed on several cores at once, and the
 * main thread allocates nothing per chunk. Between chunks it checks a shared cancel flag.
 */
const workerSource = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
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
