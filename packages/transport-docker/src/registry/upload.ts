import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline, Readable, Transform } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  canonicalAlgorithm,
  type Digest,
  DigestMismatchError,
  digestAlgorithm,
  RegistryError,
  SizeMismatchError,
  verifiedDigestOf,
} from '@img/core';
import {
  backoffMs,
  header,
  isRetryableNetworkError,
  isRetryableStatus,
  type RegistryClient,
  type Response,
  type RetryPolicy,
  retryAfterMs,
} from './client.js';
import { redactUrl } from './errors.js';

/** Blobs of known size up to this are read into memory and PUT in one request (retryable as a whole). */
export const monolithicLimit = 4 * 1024 * 1024;
/** Larger (or unknown-size) blobs are sent as PATCH chunks of this size, each kept until accepted. */
export const chunkSize = 8 * 1024 * 1024;

/** What an upload is to check, and whom to tell about progress. */
export interface UploadRequest {
  repository: string;
  digest: Digest | undefined;
  size: number;
  signal: AbortSignal | undefined;
  onProgress?: ((bytes: number) => void) | undefined;
}

const octetStream = 'application/octet-stream';

/** The Location of an upload response, resolved against the request. */
function locationOf(res: Response, method: string): URL {
  const location = header(res, 'location');
  if (location === undefined || location === '') {
    throw new RegistryError(
      { method, url: redactUrl(res.url), status: res.statusCode },
      `${method} ${redactUrl(res.url)}: the registry sent no upload Location`,
    );
  }
  return new URL(location, res.url);
}

function withDigest(location: URL, digest: Digest): URL {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  return url;
}

/** `POST /v2/<repo>/blobs/uploads/`: a new upload session's Location. */
export async function startUpload(
  client: RegistryClient,
  repository: string,
  signal?: AbortSignal,
): Promise<URL> {
  const res = await client.request({
    method: 'POST',
    target: `/v2/${repository}/blobs/uploads/`,
    headers: { 'content-length': '0' },
    body: '',
    idempotent: true, // a lost session is harmless; the registry garbage-collects it
    signal,
  });
  if (res.statusCode !== 202) throw await client.failure(res, 'POST');
  await res.body.dump();
  return locationOf(res, 'POST');
}

/** Cancels an upload session, best effort (a failed cancel leaves a session the registry expires). */
export async function cancelUpload(client: RegistryClient, location: URL): Promise<void> {
  try {
    const res = await client.request({ method: 'DELETE', target: location, idempotent: false });
    await res.body.dump();
  } catch {
    // nothing to do: the session expires
  }
}

/** Whether the registry already has the blob (HEAD), after a final request whose answer was lost. */
async function blobExists(
  client: RegistryClient,
  repository: string,
  digest: Digest,
  signal?: AbortSignal,
): Promise<boolean> {
  const res = await client.request({ method: 'HEAD', target: `/v2/${repository}/blobs/${digest}`, signal });
  await res.body.dump();
  return res.statusCode === 200;
}

/** Completes an upload: `PUT <location>?digest=`, with the last bytes (or none). */
async function finishUpload(
  client: RegistryClient,
  location: URL,
  repository: string,
  digest: Digest,
  body: Buffer,
  signal: AbortSignal | undefined,
): Promise<void> {
  const res = await client.request({
    method: 'PUT',
    target: withDigest(location, digest),
    headers: { 'content-type': octetStream, 'content-length': String(body.length) },
    body,
    signal,
  });
  if (res.statusCode === 201 || res.statusCode === 204) {
    await res.body.dump();
    return;
  }
  const error = await client.failure(res, 'PUT');
  // A retried PUT whose first attempt did complete finds its session gone: the blob is there.
  if (res.statusCode === 404 && (await blobExists(client, repository, digest, signal))) return;
  throw error;
}

/**
 * Uploads a blob (distribution spec "Pushing blobs"), verifying it against `req.digest` and
 * `req.size` before the registry is asked to commit it: a mismatch cancels the session, so nothing
 * is stored under the digest. Small blobs of known size go in one PUT; others stream as PATCH
 * chunks. Returns the digest and size stored.
 */
export async function uploadBlob(
  client: RegistryClient,
  stream: Readable,
  req: UploadRequest,
  policy: RetryPolicy,
): Promise<{ digest: Digest; size: number }> {
  if (req.size >= 0 && req.size <= monolithicLimit) return uploadMonolithic(client, stream, req, policy);
  return uploadChunked(client, stream, req, policy);
}

/**
 * The hash of an upload's bytes; none when the stream is already verified against the digest asked
 * for (see verifiedDigestOf), whose bytes need not be hashed twice.
 */
function uploadHash(stream: Readable, req: UploadRequest, algorithm: string): Hash | undefined {
  return verifiedDigestOf(stream, req) === undefined ? createHash(algorithm) : undefined;
}

function checkDigest(hash: Hash | undefined, algorithmDigest: Digest | undefined, algorithm: string): Digest {
  // Without a hash, the stream verified itself against algorithmDigest before its end.
  if (hash === undefined) return algorithmDigest as Digest;
  const actual = `${algorithm}:${hash.digest('hex')}` as Digest;
  if (algorithmDigest !== undefined && actual !== algorithmDigest) {
    throw new DigestMismatchError(algorithmDigest, actual);
  }
  return actual;
}

async function uploadMonolithic(
  client: RegistryClient,
  stream: Readable,
  req: UploadRequest,
  policy: RetryPolicy,
): Promise<{ digest: Digest; size: number }> {
  const algorithm = req.digest ? digestAlgorithm(req.digest) : canonicalAlgorithm;
  const hash = uploadHash(stream, req, algorithm);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > req.size) throw new SizeMismatchError(req.digest ?? 'stream', req.size, total);
    hash?.update(chunk);
    chunks.push(chunk);
    req.onProgress?.(total);
  }
  if (total !== req.size) throw new SizeMismatchError(req.digest ?? 'stream', req.size, total);
  const digest = checkDigest(hash, req.digest, algorithm);
  const body = Buffer.concat(chunks, total);
  // The bytes are in memory: a failed session is simply started again, a bounded number of times.
  for (let attempt = 0; ; attempt++) {
    const location = await startUpload(client, req.repository, req.signal);
    try {
      await finishUpload(client, location, req.repository, digest, body, req.signal);
      return { digest, size: total };
    } catch (error) {
      if (req.signal?.aborted || attempt >= policy.times || !isRetryable(error)) throw error;
      await sleep(backoffMs(policy, attempt), undefined, req.signal ? { signal: req.signal } : {});
    }
  }
}

function isRetryable(error: unknown): boolean {
  if (isRetryableNetworkError(error)) return true;
  return error instanceof RegistryError && isRetryableStatus(error.status);
}

/** The bytes of one PATCH chunk, kept until the registry accepts them. */
interface ChunkState {
  start: number;
  parts: Buffer[];
  length: number;
  complete: boolean;
}

/** Where the bytes of one PATCH chunk come from, to send them and, when needed, send them again. */
interface ChunkBytes {
  /** The chunk's offset in the blob. */
  readonly start: number;
  /** Its length so far; final once `complete()` has resolved or a streamed body has ended. */
  length(): number;
  /** A body that streams the chunk while it is still being read (first attempt only), or undefined. */
  streaming(): Readable | undefined;
  /** Reads the rest of the chunk, so that its length is known and it can be sent again. */
  complete(): Promise<void>;
  /** The chunk's bytes from `from` (relative to its start) on; only after `complete()`. */
  from(from: number): Buffer | Readable;
}

/**
 * Streams the blob as PATCH chunks. Each chunk's bytes are streamed into the request and kept
 * (at most {@link chunkSize}) until the registry accepts them, so a chunk the registry refused
 * (429, 5xx) is sent again, and one whose connection broke is resumed from the offset the registry
 * reports (`GET <location>`, its Range header); a registry that cannot say fails the upload.
 */
async function uploadChunked(
  client: RegistryClient,
  stream: Readable,
  req: UploadRequest,
  policy: RetryPolicy,
): Promise<{ digest: Digest; size: number }> {
  const algorithm = req.digest ? digestAlgorithm(req.digest) : canonicalAlgorithm;
  const hash = uploadHash(stream, req, algorithm);
  const source = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  let leftover: Buffer | undefined;
  let eof = false;
  let total = 0;
  let sourceError: unknown;

  /** Pulls up to `max` bytes from the source, hashing and counting them. */
  const pull = async (max: number): Promise<Buffer | undefined> => {
    let next = leftover;
    leftover = undefined;
    if (next === undefined) {
      if (eof) return undefined;
      let r: IteratorResult<Buffer>;
      try {
        r = await source.next();
      } catch (error) {
        sourceError = error;
        throw error;
      }
      if (r.done) {
        eof = true;
        return undefined;
      }
      next = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    }
    if (next.length > max) {
      leftover = next.subarray(max);
      next = next.subarray(0, max);
    }
    total += next.length;
    if (req.size >= 0 && total > req.size) {
      sourceError = new SizeMismatchError(req.digest ?? 'stream', req.size, total);
      throw sourceError;
    }
    hash?.update(next);
    req.onProgress?.(total);
    return next;
  };

  /** Reads the rest of the chunk into memory (after a failed PATCH, to send it again). */
  const fill = async (state: ChunkState): Promise<void> => {
    while (!state.complete) {
      const part = await pull(chunkSize - state.length);
      if (part === undefined) state.complete = true;
      else {
        state.parts.push(part);
        state.length += part.length;
        if (state.length >= chunkSize) state.complete = true;
      }
    }
  };

  async function* chunkBody(state: ChunkState): AsyncGenerator<Buffer> {
    while (!state.complete) {
      const part = await pull(chunkSize - state.length);
      if (part === undefined) {
        state.complete = true;
        return;
      }
      state.parts.push(part);
      state.length += part.length;
      if (state.length >= chunkSize) state.complete = true;
      yield part;
    }
  }

  let location = await startUpload(client, req.repository, req.signal);
  try {
    let offset = 0;
    for (;;) {
      const state: ChunkState = { start: offset, parts: [], length: 0, complete: false };
      // Peek: a chunk with no bytes (end of the blob) is not sent.
      const first = await pull(chunkSize);
      if (first === undefined) break;
      state.parts.push(first);
      state.length = first.length;
      if (state.length >= chunkSize) state.complete = true;
      const bytes: ChunkBytes = {
        start: state.start,
        length: () => state.length,
        streaming: () => {
          if (state.complete) return undefined;
          const head = Buffer.concat(state.parts);
          return Readable.from(
            (async function* () {
              yield head;
              yield* chunkBody(state);
            })(),
            { objectMode: false },
          );
        },
        complete: () => fill(state),
        from: (from) => Buffer.concat(state.parts).subarray(from),
      };
      location = await sendChunk(client, location, bytes, () => sourceError, req, policy);
      offset += state.length;
    }
    if (req.size >= 0 && total !== req.size)
      throw new SizeMismatchError(req.digest ?? 'stream', req.size, total);
    const digest = checkDigest(hash, req.digest, algorithm);
    await finishUpload(client, location, req.repository, digest, Buffer.alloc(0), req.signal);
    return { digest, size: total };
  } catch (error) {
    stream.destroy();
    await cancelUpload(client, location);
    throw error;
  }
}

/**
 * PATCH chunks of a blob held in a regular file: nothing of it is kept in memory (a chunk sent again
 * is read again from the file), so they can be larger than streamed chunks, which are held until
 * accepted. Fewer, larger requests cost the registry less per byte: a 1 GiB push is 16 PATCHes
 * instead of 128, and measured faster on loopback.
 */
export const fileChunkSize = 64 * 1024 * 1024;

/**
 * Uploads a blob from a regular file of `req.size` bytes, as PATCH chunks of {@link fileChunkSize}
 * read from the file (again, for a chunk refused or broken, with the recovery of streamed uploads).
 * The bytes are hashed as they are first read, and the upload is committed only when they match
 * `req.digest` and `req.size`; otherwise it is cancelled and nothing is stored under the digest.
 */
export async function uploadBlobFile(
  client: RegistryClient,
  path: string,
  req: UploadRequest & { digest: Digest },
  policy: RetryPolicy,
  chunk = fileChunkSize,
): Promise<{ digest: Digest; size: number }> {
  const size = (await stat(path)).size;
  if (size !== req.size) throw new SizeMismatchError(req.digest, req.size, size);
  const algorithm = digestAlgorithm(req.digest);
  const hash = createHash(algorithm);
  // Bytes are read in order; a chunk sent again starts at or before what was hashed, never after.
  let hashed = 0;
  const progress = req.onProgress;
  const reader = (at: number, end: number): Readable => {
    let position = at;
    const tap = new Transform({
      transform(bytes: Buffer, _encoding, callback) {
        const next = position + bytes.length;
        if (position > hashed) {
          callback(new Error(`internal error: ${path} read at ${position}, hashed up to ${hashed}`));
          return;
        }
        if (next > hashed) {
          hash.update(bytes.subarray(hashed - position));
          hashed = next;
        }
        position = next;
        progress?.(position);
        callback(null, bytes);
      },
    });
    // Either end failing or closing early closes the file.
    return pipeline(
      createReadStream(path, { start: at, end: end - 1, highWaterMark: 256 << 10 }),
      tap,
      () => {},
    );
  };
  let location = await startUpload(client, req.repository, req.signal);
  try {
    for (let offset = 0; offset < size; ) {
      const start = offset;
      const length = Math.min(chunk, size - start);
      const bytes: ChunkBytes = {
        start,
        length: () => length,
        streaming: () => undefined,
        complete: async () => {},
        from: (from) => reader(start + from, start + length),
      };
      location = await sendChunk(client, location, bytes, () => undefined, req, policy);
      offset += length;
    }
    if (hashed !== size) throw new SizeMismatchError(req.digest, req.size, hashed);
    const digest = checkDigest(hash, req.digest, algorithm);
    await finishUpload(client, location, req.repository, digest, Buffer.alloc(0), req.signal);
    return { digest, size };
  } catch (error) {
    await cancelUpload(client, location);
    throw error;
  }
}

/** Sends one chunk (streaming what is not yet read), and recovers from a refused or broken PATCH. */
async function sendChunk(
  client: RegistryClient,
  location: URL,
  chunk: ChunkBytes,
  sourceFailure: () => unknown,
  req: UploadRequest,
  policy: RetryPolicy,
): Promise<URL> {
  let from = 0; // bytes of this chunk the registry already holds
  let current = location;
  for (let attempt = 0; ; attempt++) {
    const headers: Record<string, string> = { 'content-type': octetStream };
    let body: Buffer | Readable | undefined = attempt === 0 ? chunk.streaming() : undefined;
    if (body === undefined) {
      await chunk.complete();
      body = chunk.from(from);
      const start = chunk.start + from;
      const length = chunk.length() - from;
      headers['content-range'] = `${start}-${start + length - 1}`;
      headers['content-length'] = String(length);
    }
    let res: Response | undefined;
    let failure: unknown;
    try {
      res = await client.request({ method: 'PATCH', target: current, headers, body, signal: req.signal });
    } catch (error) {
      const src = sourceFailure();
      if (src !== undefined) throw src;
      failure = error;
    }
    if (res !== undefined) {
      if (res.statusCode === 202 || res.statusCode === 204) {
        await res.body.dump();
        // The Range of the answer says how much the session holds: it must be all we sent.
        const held = /^(?:bytes=)?0-(\d+)$/.exec(header(res, 'range') ?? '');
        const expected = chunk.start + chunk.length();
        if (held !== null && Number(held[1]) + 1 !== expected) {
          throw new RegistryError(
            { method: 'PATCH', url: redactUrl(current), status: res.statusCode },
            `PATCH ${redactUrl(current)}: the registry holds ${Number(held[1]) + 1} bytes of the upload, expected ${expected}`,
          );
        }
        return locationOf(res, 'PATCH');
      }
      const error = await client.failure(res, 'PATCH');
      if (!isRetryableStatus(res.statusCode) || attempt >= policy.times || req.signal?.aborted) throw error;
      // Refused before being stored (429, 5xx): the session is where it was; wait and send again.
      const after = retryAfterMs(res.headers['retry-after']);
      await sleep(after ?? backoffMs(policy, attempt), undefined, req.signal ? { signal: req.signal } : {});
      continue;
    }
    if (req.signal?.aborted || attempt >= policy.times || !isRetryableNetworkError(failure)) throw failure;
    // The connection broke: ask the registry how much it holds (distribution spec "Upload Progress").
    await sleep(backoffMs(policy, attempt), undefined, req.signal ? { signal: req.signal } : {});
    await chunk.complete();
    const status = await client.request({ method: 'GET', target: current, signal: req.signal });
    const range = /^(?:bytes=)?0-(\d+)$/.exec(header(status, 'range') ?? '');
    if ((status.statusCode !== 204 || range === null) && chunk.start === 0) {
      // The registry cannot say (distribution 2.x even cancels a session resumed at another
      // offset); the whole blob so far is this chunk, still in memory: start a new session.
      await status.body.dump();
      current = await startUpload(client, req.repository, req.signal);
      from = 0;
      continue;
    }
    if (status.statusCode !== 204 || range === null) {
      const error = status.statusCode === 204 ? undefined : await client.failure(status, 'GET');
      if (error === undefined) await status.body.dump();
      throw new RegistryError(
        { method: 'PATCH', url: redactUrl(current), status: status.statusCode, errors: error?.errors ?? [] },
        `PATCH ${redactUrl(current)}: the upload broke after ${chunk.start} bytes and the registry cannot resume it`,
        { cause: failure },
      );
    }
    await status.body.dump();
    const held = Number(range[1]) + 1;
    // "0-0" is ambiguous (distribution reports it for an empty upload too): treat it as nothing held.
    const holds = held === 1 && chunk.start === 0 ? 0 : held;
    if (holds < chunk.start || holds > chunk.start + chunk.length()) {
      throw new RegistryError(
        { method: 'PATCH', url: redactUrl(current), status: status.statusCode },
        `PATCH ${redactUrl(current)}: the registry holds ${holds} bytes of an upload expected at ${chunk.start}`,
        { cause: failure },
      );
    }
    from = holds - chunk.start;
    if (header(status, 'location')) current = locationOf(status, 'GET');
    if (from === chunk.length()) return current;
  }
}
