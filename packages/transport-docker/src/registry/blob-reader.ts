import { Readable } from 'node:stream';
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
  async function* generate(): AsyncGenerator<Buffer> {
    let body = first;
    let offset = 0;
    let resumes = 0;
    let done = false;
    try {
      for (;;) {
        try {
          for await (const chunk of body as AsyncIterable<Buffer>) {
            offset += chunk.length;
            yield chunk;
          }
          done = true;
          return;
        } catch (error) {
          if (signal?.aborted || !isRetryableNetworkError(error) || resumes >= maxResumes) throw error;
          body.destroy();
          const at = offset;
          const started = resumes;
          resumes++;
          await sleep(
            started === 0 ? 0 : backoffMs(policy, started - 1),
            undefined,
            signal ? { signal } : {},
          );
          let res: Awaited<ReturnType<RangeFetch>>;
          try {
            res = await fetchFrom(at, signal);
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
            (size >= 0 && range.total !== undefined && range.total !== size)
          ) {
            res.body.destroy();
            throw new RegistryError(
              { method: 'GET', url: redactUrl(res.url), status: res.status },
              `GET ${redactUrl(res.url)}: the blob read broke after ${at} bytes and the server did not resume it (HTTP ${res.status}${range ? `, ${header({ headers: res.headers as never }, 'content-range')}` : ''})`,
              { cause: error },
            );
          }
          body = res.body;
        }
      }
    } finally {
      if (!done) body.destroy();
    }
  }
  return Readable.from(generate(), { objectMode: false, highWaterMark: 1 << 20 });
}
