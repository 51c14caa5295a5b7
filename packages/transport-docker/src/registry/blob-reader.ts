import { finished, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryError } from '@img/core';
import { backoffMs, header, isRetryableNetworkError, type RetryPolicy } from './client.js';
import { redactUrl } from './errors.js';

/** A fetch of the blob from `offset` on: must answer 206 with a Content-Range starting there. */
export type RangeFetch = (
  offset: number,
  signal: AbortSignal | undefined,
) => Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  url: URL;
}>;

/** How many times one blob read may be resumed after its connection broke. */
export const maxResumes = 5;

/** `bytes start-end/total` (RFC 9110 section 14.4); undefined when it does not parse. */
export function parseContentRange(
  value: string | undefined,
): { start: number; end: number; total: number | undefined } | undefined {
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(value ?? '');
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

/**
 * Wraps a blob response body so that a connection that breaks mid-way is resumed transparently
 * with a Range request (containers/image's bodyReader): at most {@link maxResumes} times, only when
 * the new response is a 206 that continues at the byte reached and for the same total size; any
 * other answer fails the stream with the original error. The caller still verifies the digest of
 * the whole.
 */
export function resumableBody(
  first: Readable,
  size: number,
  fetchFrom: RangeFetch,
  policy: RetryPolicy,
  signal: AbortSignal | undefined,
): Readable {
  return new ResumableBody(first, size, fetchFrom, policy, signal);
}

/**
 * The body's chunks are pushed on as they come (no async iteration, no re-buffering: each chunk
 * is handed on once, with the body paused while this stream's buffer is full).
 */
class ResumableBody extends Readable {
  private body: Readable;
  private offset = 0;
  private resumes = 0;
  private resuming = false;

  constructor(
    first: Readable,
    private readonly size: number,
    private readonly fetchFrom: RangeFetch,
    private readonly policy: RetryPolicy,
    private readonly signal: AbortSignal | undefined,
  ) {
    super({ highWaterMark: 256 << 10 });
    this.body = first;
    this.attach(first);
  }

  private attach(body: Readable): void {
    body.on('data', (chunk: Buffer) => {
      if (body !== this.body) return;
      this.offset += chunk.length;
      if (!this.push(chunk)) body.pause();
    });
    finished(body, (error) => {
      if (body !== this.body || this.destroyed) return;
      if (error) this.broke(error);
      else this.push(null);
    });
  }

  override _read(): void {
    if (!this.resuming) this.body.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.body.destroy();
    callback(error);
  }

  /** The body failed: resume from the byte reached when that may help, else fail with its error. */
  private broke(error: Error): void {
    if (this.signal?.aborted || !isRetryableNetworkError(error) || this.resumes >= maxResumes) {
      this.destroy(error);
      return;
    }
    this.resuming = true;
    this.body.destroy();
    this.reopen(error).then(
      (body) => {
        if (this.destroyed) {
          body.destroy();
          return;
        }
        this.resuming = false;
        this.body = body;
        this.attach(body);
      },
      (failure: Error) => this.destroy(failure),
    );
  }

  private async reopen(error: Error): Promise<Readable> {
    const at = this.offset;
    const started = this.resumes;
    this.resumes++;
    const signal = this.signal;
    await sleep(started === 0 ? 0 : backoffMs(this.policy, started - 1), undefined, signal ? { signal } : {});
    let res: Awaited<ReturnType<RangeFetch>>;
    try {
      res = await this.fetchFrom(at, signal);
    } catch (retryError) {
      throw new AggregateError([error, retryError], 'blob read broke and could not be resumed', {
        cause: error,
      });
    }
    const range = parseContentRange(
      Array.isArray(res.headers['content-range'])
        ? res.headers['content-range'][0]
        : res.headers['content-range'],
    );
    if (
      res.status !== 206 ||
      range === undefined ||
      range.start !== at ||
      (this.size >= 0 && range.total !== undefined && range.total !== this.size)
    ) {
      res.body.destroy();
      throw new RegistryError(
        { method: 'GET', url: redactUrl(res.url), status: res.status },
        `GET ${redactUrl(res.url)}: the blob read broke after ${at} bytes and the server did not resume it (HTTP ${res.status}${range ? `, ${header({ headers: res.headers as never }, 'content-range')}` : ''})`,
        { cause: error },
      );
    }
    return res.body;
  }
}
