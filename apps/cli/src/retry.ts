import { setTimeout as sleep } from 'node:timers/promises';

/**
 * What another attempt may fix, as containers/common's retry.IfNecessary decides for skopeo: network
 * failures that pass (resets, refusals, timeouts, name look-ups), undici's socket errors, and
 * registry answers that say "later" (408, 429, 5xx). Everything else is permanent, local file
 * errors and img's typed errors included, so a bad input fails at once instead of being retried.
 */
const transientErrnos = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
]);

/** Whether retrying after this error could help; see {@link transientErrnos}. Never after an abort. */
export function isRetryable(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; typeof e === 'object' && e !== null && depth < 8; depth++) {
    const { code, name, status, statusCode } = e as {
      code?: unknown;
      name?: unknown;
      status?: unknown;
      statusCode?: unknown;
    };
    if (name === 'AbortError' || name === 'TimeoutError' || code === 'IMG_ABORTED') return false;
    if (typeof code === 'string' && (transientErrnos.has(code) || code.startsWith('UND_ERR_'))) return true;
    const http =
      typeof status === 'number' ? status : typeof statusCode === 'number' ? statusCode : undefined;
    if (http !== undefined && (http === 408 || http === 429 || http >= 500)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** Options of {@link retryIfNecessary}. */
export interface RetryOptions {
  /** How many times to retry after the first attempt (skopeo's --retry-times); 0 = no retry. */
  times: number;
  /** A fixed delay between attempts (--retry-delay); default 2^attempt seconds with up to 10 % jitter. */
  delayMs?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Told of each failure that will be retried, with the attempt number (1 = first retry) and the delay. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  /** Injectable for tests. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<unknown>;
  random?: () => number;
}

/**
 * Runs `operation`, and again up to `times` more times while it fails with a retryable error, as
 * containers/common's retry.IfNecessary: the delay doubles from 1 s, or is the fixed `delayMs`.
 */
export async function retryIfNecessary<T>(operation: () => Promise<T>, options: RetryOptions): Promise<T> {
  const wait = options.sleep ?? ((ms: number, signal?: AbortSignal) => sleep(ms, undefined, { signal }));
  const random = options.random ?? Math.random;
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (attempt >= options.times || !isRetryable(error) || options.signal?.aborted) throw error;
      const base = options.delayMs ?? 2 ** attempt * 1000;
      // A Node timer holds at most 2^31-1 ms; a longer delay waits that long rather than not at all.
      const delay = Math.min(
        options.delayMs === undefined ? Math.round(base * (1 + random() * 0.1)) : base,
        2 ** 31 - 1,
      );
      options.onRetry?.(error, attempt + 1, delay);
      await wait(delay, options.signal);
    }
  }
}
