import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Error codes that another attempt cannot change: the input is wrong, the policy says no, the
 * bytes are not what they claim, the image is not there, or the user gave up.
 */
const permanentCodes = new Set([
  'IMG_INVALID_REFERENCE',
  'IMG_UNKNOWN_TRANSPORT',
  'IMG_POLICY_REJECTED',
  'IMG_INVALID_POLICY',
  'IMG_DIGEST_MISMATCH',
  'IMG_SIZE_MISMATCH',
  'IMG_INVALID_DIGEST',
  'IMG_MANIFEST_UNKNOWN',
  'IMG_INVALID_MANIFEST',
  'IMG_UNSUPPORTED_MEDIA_TYPE',
  'IMG_MANIFEST_CONVERSION',
  'IMG_NO_MATCHING_PLATFORM',
  'IMG_NOT_SUPPORTED',
  'IMG_INVALID_LAYOUT',
  'IMG_TRANSPORT_CONFLICT',
  'IMG_TOO_LARGE',
  'IMG_ABORTED',
  'IMG_UNAUTHORIZED',
  'IMG_DENIED',
]);

/** Whether retrying after this error could help: not for the permanent failures above, nor after an abort. */
export function isRetryable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return true;
  const { code, name } = error as { code?: unknown; name?: unknown };
  if (name === 'AbortError' || name === 'TimeoutError') return false;
  return !(typeof code === 'string' && permanentCodes.has(code));
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
      const delay = options.delayMs === undefined ? Math.round(base * (1 + random() * 0.1)) : base;
      options.onRetry?.(error, attempt + 1, delay);
      await wait(delay, options.signal);
    }
  }
}
