import type {
  BlobCandidate,
  BlobCandidateOptions,
  BlobInfoCache,
  BlobLocation,
  BlobReuseCandidate,
  CompressionName,
  Digest,
} from '@img/core';
import { type CandidateStore, gatherCandidates, type LocationRow } from './candidates.js';

/** Options of {@link MemoryBlobInfoCache}. */
export interface MemoryBlobInfoCacheOptions {
  /** The clock for `lastSeen`, in epoch milliseconds; injectable for tests. */
  now?: () => number;
}

/**
 * A BlobInfoCache that lives in this process only: for tests, for library users who want no file,
 * and as the fallback when the cache on disk cannot be used (containers/image's memory cache).
 */
export class MemoryBlobInfoCache implements BlobInfoCache, CandidateStore {
  private readonly uncompressed = new Map<Digest, Digest>();
  private readonly byUncompressed = new Map<Digest, Set<Digest>>();
  private readonly compressions = new Map<Digest, CompressionName>();
  /** `transport \0 digest` → `scope \0 location` → row. */
  private readonly knownLocations = new Map<string, Map<string, LocationRow>>();
  private readonly now: () => number;
  private closed = false;

  constructor(options: MemoryBlobInfoCacheOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  uncompressedDigest(digest: Digest): Digest | undefined {
    const known = this.uncompressed.get(digest);
    if (known !== undefined) return known;
    // Being the uncompressed side of a pair, or recorded as uncompressed, makes a digest its own.
    if ((this.byUncompressed.get(digest)?.size ?? 0) > 0) return digest;
    if (this.compressions.get(digest) === 'none') return digest;
    return undefined;
  }

  recordDigestUncompressedPair(compressed: Digest, uncompressed: Digest): void {
    if (this.closed) return;
    const previous = this.uncompressed.get(compressed);
    if (previous !== undefined && previous !== uncompressed)
      this.byUncompressed.get(previous)?.delete(compressed);
    this.uncompressed.set(compressed, uncompressed);
    let set = this.byUncompressed.get(uncompressed);
    if (!set) {
      set = new Set();
      this.byUncompressed.set(uncompressed, set);
    }
    set.add(compressed);
  }

  recordDigestCompression(digest: Digest, compression: CompressionName): void {
    if (this.closed) return;
    if (compression === 'unknown') this.compressions.delete(digest);
    else this.compressions.set(digest, compression);
  }

  digestCompression(digest: Digest): CompressionName {
    return this.compressions.get(digest) ?? 'unknown';
  }

  recordKnownLocation(where: Omit<BlobLocation, 'location'>, digest: Digest, location: string): void {
    if (this.closed) return;
    const key = `${where.transport}\0${digest}`;
    let rows = this.knownLocations.get(key);
    if (!rows) {
      rows = new Map();
      this.knownLocations.set(key, rows);
    }
    const rowKey = `${where.scope}\0${location}`;
    const lastSeen = Math.max(this.now(), rows.get(rowKey)?.lastSeen ?? 0);
    rows.set(rowKey, { scope: where.scope, location, lastSeen });
  }

  candidateLocations(
    transport: string,
    scope: string | undefined,
    digest: Digest,
    canSubstitute: boolean,
  ): BlobReuseCandidate[] {
    return gatherCandidates(this, transport, scope, digest, { canSubstitute }) as BlobReuseCandidate[];
  }

  reuseCandidates(
    transport: string,
    scope: string | undefined,
    digest: Digest,
    options: BlobCandidateOptions,
  ): BlobCandidate[] {
    return gatherCandidates(this, transport, scope, digest, options);
  }

  /** @internal For candidate gathering. */
  digestsWithUncompressed(uncompressed: Digest): Digest[] {
    return [...(this.byUncompressed.get(uncompressed) ?? [])];
  }

  /** @internal For candidate gathering. */
  locations(transport: string, scope: string | undefined, digest: Digest): LocationRow[] {
    const rows = this.knownLocations.get(`${transport}\0${digest}`);
    if (!rows) return [];
    const all = [...rows.values()];
    return scope === undefined ? all : all.filter((row) => row.scope === scope);
  }

  /** Forgets everything; later records are ignored. */
  close(): void {
    this.closed = true;
    this.uncompressed.clear();
    this.byUncompressed.clear();
    this.compressions.clear();
    this.knownLocations.clear();
  }
}
