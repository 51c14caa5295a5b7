import type { BlobCandidate, BlobCandidateOptions, CompressionName, Digest } from '@img/core';

/** How many candidates with a known location are returned (containers/image's replacementAttempts). */
export const maxLocatedCandidates = 5;
/** How many variants of unknown location may follow them, within the same total. */
export const maxUnknownLocationCandidates = 2;

/** A location row as both stores keep it. */
export interface LocationRow {
  scope: string;
  location: string;
  lastSeen: number;
}

/** What candidate gathering needs from a store; both implementations provide it. */
export interface CandidateStore {
  uncompressedDigest(digest: Digest): Digest | undefined;
  /** Every digest recorded with this uncompressed digest (the uncompressed one itself not included unless recorded so). */
  digestsWithUncompressed(uncompressed: Digest): Digest[];
  digestCompression(digest: Digest): CompressionName;
  locations(transport: string, scope: string | undefined, digest: Digest): LocationRow[];
}

/**
 * Gathers and orders the reuse candidates of `primary`: its own locations, then (when substitutes
 * are allowed) those of the digests with the same uncompressed content. The order is
 * containers/image's: the primary digest first, the uncompressed digest last, the others by most
 * recent sighting; ties by digest, then location, so that the order is deterministic.
 */
export function gatherCandidates(
  store: CandidateStore,
  transport: string,
  scope: string | undefined,
  primary: Digest,
  options: BlobCandidateOptions,
): BlobCandidate[] {
  const digests: Digest[] = [primary];
  let uncompressed: Digest | undefined;
  if (options.canSubstitute) {
    uncompressed = store.uncompressedDigest(primary);
    if (uncompressed !== undefined) {
      for (const d of store.digestsWithUncompressed(uncompressed)) {
        if (d !== primary && d !== uncompressed) digests.push(d);
      }
      if (uncompressed !== primary) digests.push(uncompressed);
    }
  }
  const allowed = options.compressions;
  const located: Array<Required<Omit<BlobCandidate, 'scope'>> & { scope: string }> = [];
  const unknown: BlobCandidate[] = [];
  for (const digest of digests) {
    const compression = store.digestCompression(digest);
    if (digest !== primary && allowed && !allowed.includes(compression)) continue;
    const rows = store.locations(transport, scope, digest);
    for (const row of rows) {
      located.push({ digest, compression, location: row.location, lastSeen: row.lastSeen, scope: row.scope });
    }
    // The digest asked for is never an unknown-location candidate: the caller looks for it in its own
    // place before asking the cache.
    if (rows.length === 0 && digest !== primary && options.includeUnknownLocations) {
      unknown.push({ digest, compression });
    }
  }
  const rank = (digest: Digest) => (digest === primary ? 0 : digest === uncompressed ? 2 : 1);
  located.sort(
    (a, b) =>
      rank(a.digest) - rank(b.digest) ||
      b.lastSeen - a.lastSeen ||
      compareStrings(a.digest, b.digest) ||
      compareStrings(a.scope, b.scope) ||
      compareStrings(a.location, b.location),
  );
  unknown.sort((a, b) => rank(a.digest) - rank(b.digest) || compareStrings(a.digest, b.digest));
  const result: BlobCandidate[] = located.slice(0, maxLocatedCandidates);
  const room = Math.min(maxUnknownLocationCandidates, maxLocatedCandidates - result.length);
  if (room > 0) result.push(...unknown.slice(0, room));
  return result;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
