import {
  DigestMismatchError,
  InvalidReferenceError,
  ManifestUnknownError,
  PolicyRejectedError,
} from '@img/core';
import { describe, expect, it } from 'vitest';
import { isRetryable, retryIfNecessary } from './retry.js';

/** An error as Node's network stack raises it, with an errno code. */
function netError(message: string, code = 'ECONNRESET'): Error {
  return Object.assign(new Error(message), { code });
}

function failing(errors: unknown[], value = 'ok') {
  let calls = 0;
  const op = async () => {
    const error = errors[calls++];
    if (error) throw error;
    return value;
  };
  return { op, calls: () => calls };
}

describe('retryIfNecessary', () => {
  it('retries a transient failure with doubling delays until it passes', async () => {
    const waits: number[] = [];
    const { op, calls } = failing([netError('reset'), netError('refused', 'ECONNREFUSED')]);
    const retried: number[] = [];
    const result = await retryIfNecessary(op, {
      times: 3,
      sleep: async (ms) => waits.push(ms),
      random: () => 0,
      onRetry: (_e, n) => retried.push(n),
    });
    expect(result).toBe('ok');
    expect(calls()).toBe(3);
    expect(waits).toEqual([1000, 2000]);
    expect(retried).toEqual([1, 2]);
  });

  it('waits the fixed --retry-delay when given', async () => {
    const waits: number[] = [];
    const { op } = failing([netError('x')]);
    await retryIfNecessary(op, { times: 1, delayMs: 250, sleep: async (ms) => waits.push(ms) });
    expect(waits).toEqual([250]);
  });

  it('gives up after --retry-times retries with the last error', async () => {
    const last = netError('third', 'ETIMEDOUT');
    const { op, calls } = failing([netError('first'), netError('second'), last]);
    await expect(retryIfNecessary(op, { times: 2, sleep: async () => {} })).rejects.toBe(last);
    expect(calls()).toBe(3);
  });

  it('does not retry errors another attempt cannot change', async () => {
    for (const error of [
      new InvalidReferenceError('x', 'bad'),
      new PolicyRejectedError('no'),
      new DigestMismatchError('sha256:a', 'sha256:b'),
      new ManifestUnknownError('oci:/x'),
      Object.assign(new Error('ENOTDIR: not a directory'), { code: 'ENOTDIR' }),
      Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' }),
      new Error('anything else'),
    ]) {
      const { op, calls } = failing([error]);
      await expect(retryIfNecessary(op, { times: 5, sleep: async () => {} })).rejects.toBe(error);
      expect(calls()).toBe(1);
      expect(isRetryable(error)).toBe(false);
    }
  });

  it('does not retry once aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const { op, calls } = failing([netError('x')]);
    await expect(
      retryIfNecessary(op, { times: 5, signal: controller.signal, sleep: async () => {} }),
    ).rejects.toThrow('x');
    expect(calls()).toBe(1);
  });

  it('retries what a registry or the network says may pass: 408, 429, 5xx, undici socket errors, a cause chain', () => {
    expect(isRetryable(Object.assign(new Error('busy'), { status: 503 }))).toBe(true);
    expect(isRetryable(Object.assign(new Error('slow down'), { status: 429 }))).toBe(true);
    expect(isRetryable(Object.assign(new Error('socket'), { code: 'UND_ERR_SOCKET' }))).toBe(true);
    expect(isRetryable(new Error('wrapped', { cause: netError('reset') }))).toBe(true);
    expect(isRetryable(Object.assign(new Error('no such repo'), { status: 404 }))).toBe(false);
  });
});
