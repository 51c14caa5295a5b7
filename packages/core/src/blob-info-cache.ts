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
  /** The scope the location was recorded in (the one asked for, unless that was undefined). */
  scope?: string;
}

/**
 * A candidate of {@link BlobInfoCache.reuseCandidates}: like {@link BlobReuseCandidate}, but a
 * variant whose location in the scope is unknown has no `location` (the caller may look for it in
 * its own place, e.g. with a HEAD in the destination repository).
 */
export interface BlobCandidate {
  digest: Digest;
  compression: CompressionName;
  location?: string;
  lastSeen?: number;
  scope?: string;
}

/** Options of {@link BlobInfoCache.reuseCandidates}. */
export interface BlobCandidateOptions {
  /** Whether other digests with the same uncompressed content may be returned. */
  canSubstitute: boolean;
  /**
   * Only substitutes with one of these compressions (what the destination's manifest format can
   * carry); the digest asked for always qualifies. Default: any, `unknown` included.
   */
  compressions?: readonly CompressionName[] | undefined;
  /** Also return substitutes with no known location in the scope (at most 2, after the located ones). */
  includeUnknownLocations?: boolean | undefined;
}

/**
 * Remembers what the copy engine learnt about blobs, across copies (containers/image's BlobInfoCache):
 * which compressed and uncompressed digests belong together, the compression of each digest, and
 * where blobs were seen. Implementations MUST be safe to share between concurrent copies, and MUST
 * never throw from a record call (a cache is an optimisation, not a dependency).
 *
 * Candidates come in containers/image's order: locations of the digest asked for first (most
 * recent first), then other variants by most recent sighting, the uncompressed variant last; at most
 * 5 with a location and, where asked, 2 more without, within 5 in all.
 */
export interface BlobInfoCache {
  /** The uncompressed digest of `digest` (itself, if it is uncompressed), when known. */
  uncompressedDigest(digest: Digest): Digest | undefined;
  /**
   * Records that `uncompressed` is the digest of the decompressed `compressed` (equal digests: the
   * blob is uncompressed). MUST only be called for locally verified bytes, never for a remote claim:
   * a poisoned pair would let another blob be substituted.
   */
  recordDigestUncompressedPair(compressed: Digest, uncompressed: Digest): void;
  /** Records the compression algorithm of a blob (`unknown` forgets it). */
  recordDigestCompression(digest: Digest, compression: CompressionName): void;
  /** The compression recorded for a blob; `unknown` when none is. */
  digestCompression(digest: Digest): CompressionName;
  /** Records that the blob was seen at a location (now). */
  recordKnownLocation(where: Omit<BlobLocation, 'location'>, digest: Digest, location: string): void;
  /**
   * Locations within `transport` and `scope` (or anywhere in the transport when scope is undefined) of
   * `digest` and, when canSubstitute, of other digests with the same uncompressed content; in the
   * order above, at most 5.
   */
  candidateLocations(
    transport: string,
    scope: string | undefined,
    digest: Digest,
    canSubstitute: boolean,
  ): BlobReuseCandidate[];
  /** As candidateLocations, with a compression filter and, optionally, variants of unknown location. */
  reuseCandidates(
    transport: string,
    scope: string | undefined,
    digest: Digest,
    options: BlobCandidateOptions,
  ): BlobCandidate[];
  /** Flushes and releases the cache; later calls record nothing and find nothing. */
  close(): void;
}

/** A BlobInfoCache that remembers nothing: the default where no cache is given. */
export const noCache: BlobInfoCache = {
  uncompressedDigest: () => undefined,
  recordDigestUncompressedPair: () => {},
  recordDigestCompression: () => {},
  digestCompression: () => 'unknown',
  recordKnownLocation: () => {},
  candidateLocations: () => [],
  reuseCandidates: () => [],
  close: () => {},
};
