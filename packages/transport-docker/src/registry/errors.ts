import type { Readable } from 'node:stream';
import {
  type HttpFailure,
  RegistryError,
  type RegistryErrorDetail,
  TooLargeError,
  UnauthorizedError,
} from '@img/core';

/** Error bodies are read up to this many bytes (STYLE.md section 5); the rest is dropped. */
export const errorBodyLimit = 64 * 1024;

/** The URL as errors may show it: no userinfo, no query, no fragment. */
export function redactUrl(url: string | URL): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '<invalid URL>';
  }
}

/**
 * Reads a body into memory, at most `limit` bytes. Over the limit, the body is destroyed (the
 * socket is not reused) and, with `what`, TooLargeError is thrown; without it, what was read is
 * returned truncated (error bodies).
 */
export async function readCapped(body: Readable, limit: number, what?: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (total + chunk.length > limit) {
      body.destroy();
      if (what !== undefined) throw new TooLargeError(what, limit);
      chunks.push(chunk.subarray(0, limit - total));
      total = limit;
      break;
    }
    chunks.push(chunk);
    total += chunk.length;
  }
  return Buffer.concat(chunks, total);
}

/** The `errors` of a registry error body (distribution spec "Error Codes"), when it has that shape. */
export function parseErrorBody(body: Buffer): RegistryErrorDetail[] {
  if (body.length === 0) return [];
  try {
    const json = JSON.parse(body.toString('utf8')) as unknown;
    if (typeof json !== 'object' || json === null) return [];
    const errors = (json as { errors?: unknown }).errors;
    if (!Array.isArray(errors)) return [];
    const out: RegistryErrorDetail[] = [];
    for (const e of errors) {
      if (typeof e !== 'object' || e === null) continue;
      const { code, message } = e as { code?: unknown; message?: unknown };
      if (typeof code !== 'string') continue;
      out.push(typeof message === 'string' && message !== '' ? { code, message } : { code });
    }
    return out;
  } catch {
    return [];
  }
}

/** Whether the failure carries this registry error code. */
export function hasErrorCode(failure: Pick<HttpFailure, 'errors'>, code: string): boolean {
  return (failure.errors ?? []).some((e) => e.code === code);
}

/** Where a failure happened, for UnauthorizedError. */
export interface FailureScope {
  host: string;
  repository: string | undefined;
  hadCredentials: boolean;
}

/** The typed error for a failed response: UnauthorizedError for 401 (and 403 DENIED), else RegistryError. */
export function errorForFailure(failure: HttpFailure, scope: FailureScope): RegistryError {
  if (failure.status === 401 || (failure.status === 403 && hasErrorCode(failure, 'DENIED'))) {
    return new UnauthorizedError(scope.host, scope.repository, failure, scope.hadCredentials);
  }
  return new RegistryError(failure);
}
