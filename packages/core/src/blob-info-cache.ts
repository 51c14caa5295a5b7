import type { Digest } from './digest.js';

/** The compression algorithm of a blob, as recorded by a BlobInfoCache; `none` means uncompressed. */
export type CompressionName = 'gzip' | 'zstd' | 'none' | 'unknown';

/** A place a blob was seen: a transport, a scope within it (e.g. registry/repository) and an opaque location. */
export interface BlobLocation {
  transport: string;
  scope: string;
  location: string;
}

/** A candidate for reuse found by a BlobInfoCache. */
export interface BlobReuseCandidate {
  digest: Digest;
  compression: CompressionName;
  location: string;
  /** Epoch milliseconds the location was last recorded. */
  lastSeen: number;
}

/**
 * Remembers what the copy engine learnt about blobs, across copies (containers/image's BlobInfoCache):
 * which compressed and uncompressed digests belong together, the compression of each digest, and
 * where blobs were seen. Implementations MUST be safe to share between concurrent copies, and MUST
 * never throw from a record call (a cache is an optimisation, not a dependency).
 */
export interface BlobInfoCache {
  /** The uncompressed digest of `digest` (itself, if it is uncompressed), when known. */
  uncompressedDigest(digest: Digest): Digest | undefined;
  /** Records that `uncompressed` is the digest of the decompressed `compressed`; only ever from verified bytes. */
  recordDigestUncompressedPair(compressed: Digest, uncompressed: Digest): void;
  /** Records the compression algorithm of a blob. */
  recordDigestCompression(digest: Digest, compression: CompressionName): void;
  /** Records that the blob was seen at a location. */
  recordKnownLocation(where: Omit<BlobLocation, 'location'>, digest: Digest, location: string): void;
  /**
   * Locations within `transport` and `scope` (or anywhere in the transport when scope is undefined) of
   * `digest` and, when canSubstitute, of other digests with the same uncompressed content; most
   * recently seen first.
   */
  candidateLocations(
    transport: string,
    scope: string | undefined,
    digest: Digest,
    canSubstitute: boolean,
  ): BlobReuseCandidate[];
  /** Flushes and releases the cache. */
  close(): void;
}

/** A BlobInfoCache that remembers nothing: the default where no cache is given. */
export const noCache: BlobInfoCache = {
  uncompressedDigest: () => undefined,
  recordDigestUncompressedPair: () => {},
  recordDigestCompression: () => {},
  recordKnownLocation: () => {},
  candidateLocations: () => [],
  close: () => {},
};
