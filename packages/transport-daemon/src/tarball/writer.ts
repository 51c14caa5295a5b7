// Writes a docker-archive tarball as a stream with tar-stream: each blob becomes an entry as it
// arrives (with back-pressure, never held whole), and manifest.json goes last, which `docker load`
// and containers/image accept. Internal to the package.
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { type Header, type Pack, pack } from 'tar-stream';
import type { ManifestItem } from './image.js';

/** Entry times: fixed, so the same image always gives the same bytes. */
const epoch = new Date(0);

/** A descriptor of index.json (OCI image layout), with the names docker save (25+) gives its images. */
export interface IndexEntry {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/**
 * A docker-archive being written to `stream` (read it, or pipe it, as it is written). A failed entry
 * makes the whole tarball unusable: the writer is then failed and every later call throws.
 */
export class TarballWriter {
  private readonly archive: Pack = pack();
  private readonly sizes = new Map<string, number>();
  private failure: Error | undefined;
  private rejectFailed: (error: Error) => void = () => {};
  /** Rejects once the writer fails, so that a write waiting for back-pressure is released. */
  private readonly failed: Promise<never>;

  constructor() {
    this.failed = new Promise<never>((_, reject) => {
      this.rejectFailed = reject;
    });
    this.failed.catch(() => {});
  }

  /** The tarball's bytes, as they are written. */
  get stream(): Readable {
    return this.archive as unknown as Readable;
  }

  /** Whether an entry of this name has been written. */
  has(name: string): boolean {
    return this.sizes.has(name);
  }

  /** The size of an entry written, or undefined. */
  sizeOf(name: string): number | undefined {
    return this.sizes.get(name);
  }

  /** Whether nothing was written yet. */
  get isEmpty(): boolean {
    return this.sizes.size === 0;
  }

  /** Fails the writer (the reader of {@link stream} sees the error); the first error is kept. */
  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.rejectFailed(error);
    this.archive.destroy(error);
  }

  /** The error that failed the writer, if any. */
  get error(): Error | undefined {
    return this.failure;
  }

  /**
   * Adds an entry of exactly `size` bytes from `source`, with back-pressure. Any failure (of the
   * source, of the reader, a wrong size) fails the writer and is thrown.
   */
  async add(
    name: string,
    size: number,
    source: AsyncIterable<Buffer> | Buffer,
    signal?: AbortSignal,
  ): Promise<void> {
    if (this.failure) throw this.failure;
    const header: Partial<Header> & { name: string } = {
      name,
      size,
      mode: 0o644,
      mtime: epoch,
      uid: 0,
      gid: 0,
      type: 'file',
    };
    let settle: (error?: Error | null) => void = () => {};
    const done = new Promise<void>((resolve, reject) => {
      settle = (error) => (error ? reject(error) : resolve());
    });
    done.catch(() => {});
    const sink = this.archive.entry(header, (error) => settle(error));
    // tar-stream reports a failed entry to the callback and as an 'error' event; the callback is where it is handled.
    sink.on('error', () => {});
    try {
      const chunks = Buffer.isBuffer(source) ? [source] : source;
      for await (const chunk of chunks) {
        signal?.throwIfAborted();
        if (!sink.write(chunk)) {
          await Promise.race([once(sink, 'drain', signal ? { signal } : {}), done, this.failed]);
        }
      }
      sink.end(undefined);
      await Promise.race([done, this.failed]);
    } catch (error) {
      sink.destroy(error as Error);
      this.fail(error as Error);
      throw error;
    }
    this.sizes.set(name, size);
  }

  /**
   * Ends the tarball with `manifest.json` and, when given, an OCI `index.json` and `oci-layout`
   * (the layout Docker 25+ writes), then finalizes it.
   */
  async finish(items: ManifestItem[], index?: IndexEntry[], signal?: AbortSignal): Promise<void> {
    await this.add('manifest.json', ...json(items), signal);
    if (index) {
      await this.add(
        'index.json',
        ...json({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: index }),
        signal,
      );
      await this.add('oci-layout', ...json({ imageLayoutVersion: '1.0.0' }), signal);
    }
    if (this.failure) throw this.failure;
    this.archive.finalize();
  }
}

function json(value: unknown): [number, Buffer] {
  const bytes = Buffer.from(JSON.stringify(value));
  return [bytes.length, bytes];
}
