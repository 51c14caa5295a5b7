import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DigestMismatchError, InvalidDigestError, SizeMismatchError } from './errors.js';
import type { IncrementalHash } from './hash-pool.js';

/** A content digest, `algorithm:hex`, e.g. `sha256:3f5a…`. Validate untrusted input with {@link parseDigest}. */
export type Digest = `${string}:${string}`;

/** The digest algorithms img computes and verifies. */
export type DigestAlgorithm = 'sha256' | 'sha512';

const hexLength: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

/** The algorithm img uses when it computes a new digest. */
export const canonicalAlgorithm: DigestAlgorithm = 'sha256';

/** Validates `text` as a digest of a supported algorithm and returns it typed. */
export function parseDigest(text: string): Digest {
  const colon = text.indexOf(':');
  if (colon <= 0) throw new InvalidDigestError(text, 'expected "algorithm:hex"');
  const algorithm = text.slice(0, colon);
  const hex = text.slice(colon + 1);
  if (!isDigestAlgorithm(algorithm))
    throw new InvalidDigestError(text, `unsupported algorithm "${algorithm}"`);
  if (hex.length !== hexLength[algorithm] || !/^[a-f0-9]+$/.test(hex)) {
    throw new InvalidDigestError(
      text,
      `expected ${hexLength[algorithm]} lower-case hex digits for ${algorithm}`,
    );
  }
  return text as Digest;
}

/** Whether `text` is a valid digest of a supported algorithm. */
export function isDigest(text: string): text is Digest {
  try {
    parseDigest(text);
    return true;
  } catch {
    return false;
  }
}

function isDigestAlgorithm(name: string): name is DigestAlgorithm {
  return name === 'sha256' || name === 'sha512';
}

/** The algorithm part of a digest. */
export function digestAlgorithm(digest: Digest): DigestAlgorithm {
  const algorithm = digest.slice(0, digest.indexOf(':'));
  if (!isDigestAlgorithm(algorithm))
    throw new InvalidDigestError(digest, `unsupported algorithm "${algorithm}"`);
  return algorithm;
}

/** The hex part of a digest. */
export function digestHex(digest: Digest): string {
  return digest.slice(digest.indexOf(':') + 1);
}

/** The digest of bytes held in memory (manifests, configs). */
export function computeDigest(
  bytes: Uint8Array | string,
  algorithm: DigestAlgorithm = canonicalAlgorithm,
): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** Checks bytes held in memory against an expected digest, and throws DigestMismatchError if they differ. */
export function verifyBytes(bytes: Uint8Array, expected: Digest, what = 'blob'): void {
  const actual = computeDigest(bytes, digestAlgorithm(expected));
  if (actual !== expected) throw new DigestMismatchError(expected, actual, what);
}

/** What a {@link DigestingStream} is to check. */
export interface DigestingStreamOptions {
  /** When set, the stream fails at its end unless the bytes have this digest. */
  expectedDigest?: Digest | undefined;
  /** When set (and not -1), the stream fails at its end, or as soon as it is exceeded, unless exactly this many bytes passed. */
  expectedSize?: number | undefined;
  /** The algorithm to compute when no digest is expected. */
  algorithm?: DigestAlgorithm;
  /** What the bytes are, for error messages. */
  what?: string;
  /**
   * Computes the hash elsewhere (see {@link offloadedHash}) instead of on this thread, with the
   * expected digest's (or `algorithm`'s) algorithm; the stream disposes of it.
   */
  hash?: IncrementalHash | undefined;
  /** Sees each chunk as it passes, once it is counted and within the expected size. */
  onChunk?: ((chunk: Buffer) => void) | undefined;
}

/**
 * A pass-through stream that hashes and counts what flows through it. With an expected digest or
 * size it fails in its flush step, before the consumer sees the end, so a destination never
 * commits unverified bytes (containers/image's digesting reader).
 */
export class DigestingStream extends Transform {
  readonly algorithm: DigestAlgorithm;
  private readonly hash;
  private readonly offloaded: IncrementalHash | undefined;
  private readonly onChunk: ((chunk: Buffer) => void) | undefined;
  private readonly expectedDigest: Digest | undefined;
  private readonly expectedSize: number | undefined;
  private readonly what: string;
  private count = 0;
  private result: Digest | undefined;

  constructor(options: DigestingStreamOptions = {}) {
    super();
    this.expectedDigest = options.expectedDigest;
    this.expectedSize = options.expectedSize === -1 ? undefined : options.expectedSize;
    this.algorithm = options.expectedDigest
      ? digestAlgorithm(options.expectedDigest)
      : (options.algorithm ?? canonicalAlgorithm);
    this.offloaded = options.hash;
    this.onChunk = options.onChunk;
    this.hash = this.offloaded ? undefined : createHash(this.algorithm);
    this.what = options.what ?? 'blob';
  }

  /** The number of bytes seen so far. */
  get bytes(): number {
    return this.count;
  }

  /** The digest of all the bytes; available once the stream has ended. */
  get digest(): Digest {
    if (!this.result) throw new Error('DigestingStream: digest read before the end of the stream');
    return this.result;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.count += chunk.length;
    if (this.expectedSize !== undefined && this.count > this.expectedSize) {
      callback(new SizeMismatchError(this.expectedDigest ?? 'stream', this.expectedSize, this.count));
      return;
    }
    this.onChunk?.(chunk);
    if (!this.offloaded) {
      this.hash?.update(chunk);
      callback(null, chunk);
      return;
    }
    // The chunk is copied before update returns: it goes on at once, unless the hash is behind.
    const behind = this.offloaded.update(chunk);
    if (!behind) callback(null, chunk);
    else behind.then(() => callback(null, chunk), callback);
  }

  override _flush(callback: TransformCallback): void {
    if (!this.offloaded) {
      this.check(this.hash?.digest('hex') ?? '', callback);
      return;
    }
    this.offloaded.digest().then((hex) => this.check(hex, callback), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.result) this.offloaded?.dispose();
    callback(error);
  }

  private check(hex: string, callback: TransformCallback): void {
    this.result = `${this.algorithm}:${hex}`;
    if (this.expectedSize !== undefined && this.count !== this.expectedSize) {
      callback(new SizeMismatchError(this.expectedDigest ?? this.result, this.expectedSize, this.count));
      return;
    }
    if (this.expectedDigest !== undefined && this.result !== this.expectedDigest) {
      callback(new DigestMismatchError(this.expectedDigest, this.result, this.what));
      return;
    }
    callback();
  }
}

/** What a stream marked by {@link markVerified} promises about its bytes. */
export interface VerifiedContent {
  digest: Digest;
  /** The exact byte count checked, or -1 when only the digest is. */
  size: number;
}

const verifiedContent = Symbol.for('@img/core.verifiedContent');

/**
 * Marks `stream` as one that fails before its end unless its bytes have `content`'s digest (and
 * size, unless -1): the last stage of a pipeline that holds a {@link DigestingStream} expecting
 * them, as the copy engine builds. A destination given such a stream may skip hashing the same
 * bytes a second time ({@link verifiedDigestOf}); the bytes are still verified once, before the end.
 */
export function markVerified<T extends object>(stream: T, content: VerifiedContent): T {
  (stream as { [verifiedContent]?: VerifiedContent })[verifiedContent] = content;
  return stream;
}

/**
 * The digest a stream is already verified against (see {@link markVerified}) when that covers what
 * a writer is asked to check, `expected`: the same digest, and the same size unless `expected.size`
 * is -1 or unset. Undefined otherwise: the writer hashes the bytes itself.
 */
export function verifiedDigestOf(
  stream: object,
  expected: { digest?: Digest | undefined; size?: number | undefined },
): Digest | undefined {
  const claim = (stream as { [verifiedContent]?: VerifiedContent })[verifiedContent];
  if (!claim || expected.digest === undefined || claim.digest !== expected.digest) return undefined;
  const size = expected.size ?? -1;
  if (size !== -1 && claim.size !== size) return undefined;
  return claim.digest;
}
