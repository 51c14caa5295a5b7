import { type BlobInfoCache, computeDigest, type Digest } from '@img/core';
import { afterEach, describe, expect, it } from 'vitest';

/** Makes a fresh, empty cache whose `lastSeen` times come from `now`. */
export type BlobInfoCacheFactory = (options: { now: () => number }) => BlobInfoCache | Promise<BlobInfoCache>;

const digest = (name: string): Digest => computeDigest(`blob ${name}`);

/**
 * The shared BlobInfoCache suite (containers/image's pkg/blobinfocache/internal/test): every
 * implementation runs it from a three-line test with a factory.
 *
 * @example
 * describeBlobInfoCacheConformance('memory', ({ now }) => new MemoryBlobInfoCache({ now }));
 */
export function describeBlobInfoCacheConformance(name: string, factory: BlobInfoCacheFactory): void {
  describe(`BlobInfoCache conformance: ${name}`, () => {
    let clock = 1_000;
    const open: BlobInfoCache[] = [];
    /** A fresh cache with a clock that moves one millisecond per record, so that order is by record. */
    const fresh = async () => {
      clock = 1_000;
      const cache = await factory({ now: () => clock++ });
      open.push(cache);
      return cache;
    };
    afterEach(() => {
      for (const cache of open.splice(0)) cache.close();
    });

    const u = digest('uncompressed');
    const gz = digest('gzip');
    const zs = digest('zstd');
    const other = digest('other');
    const docker = (scope: string) => ({ transport: 'docker', scope });

    it('knows nothing of a digest never recorded', async () => {
      const cache = await fresh();
      expect(cache.uncompressedDigest(gz)).toBeUndefined();
      expect(cache.digestCompression(gz)).toBe('unknown');
      expect(cache.candidateLocations('docker', 'r.example', gz, true)).toEqual([]);
      expect(
        cache.reuseCandidates('docker', 'r.example', gz, {
          canSubstitute: true,
          includeUnknownLocations: true,
        }),
      ).toEqual([]);
    });

    it('gives the uncompressed digest of a recorded pair, and an uncompressed digest itself', async () => {
      const cache = await fresh();
      cache.recordDigestUncompressedPair(gz, u);
      expect(cache.uncompressedDigest(gz)).toBe(u);
      expect(cache.uncompressedDigest(u)).toBe(u);
      expect(cache.uncompressedDigest(other)).toBeUndefined();
    });

    it('takes a digest recorded as uncompressed as its own uncompressed digest', async () => {
      const cache = await fresh();
      cache.recordDigestCompression(u, 'none');
      expect(cache.uncompressedDigest(u)).toBe(u);
      cache.recordDigestUncompressedPair(other, other);
      expect(cache.uncompressedDigest(other)).toBe(other);
    });

    it('replaces a pair recorded again with another uncompressed digest', async () => {
      const cache = await fresh();
      cache.recordDigestUncompressedPair(gz, other);
      cache.recordDigestUncompressedPair(gz, u);
      expect(cache.uncompressedDigest(gz)).toBe(u);
    });

    it('records the compression of a digest, and forgets it when told unknown', async () => {
      const cache = await fresh();
      cache.recordDigestCompression(gz, 'gzip');
      cache.recordDigestCompression(zs, 'zstd');
      expect(cache.digestCompression(gz)).toBe('gzip');
      expect(cache.digestCompression(zs)).toBe('zstd');
      cache.recordDigestCompression(gz, 'zstd');
      expect(cache.digestCompression(gz)).toBe('zstd');
      cache.recordDigestCompression(gz, 'unknown');
      expect(cache.digestCompression(gz)).toBe('unknown');
    });

    it('returns the locations of the digest in the scope only, most recent first', async () => {
      const cache = await fresh();
      cache.recordKnownLocation(docker('r.example'), gz, 'team/a');
      cache.recordKnownLocation(docker('r.example'), gz, 'team/b');
      cache.recordKnownLocation(docker('other.example'), gz, 'team/c');
      cache.recordKnownLocation({ transport: 'oci', scope: 'r.example' }, gz, 'team/d');
      cache.recordKnownLocation(docker('r.example'), other, 'team/e');
      const found = cache.candidateLocations('docker', 'r.example', gz, false);
      expect(found.map((c) => [c.digest, c.location])).toEqual([
        [gz, 'team/b'],
        [gz, 'team/a'],
      ]);
      expect(found[0]!.lastSeen).toBeGreaterThan(found[1]!.lastSeen);
    });

    it('moves a location seen again to the front', async () => {
      const cache = await fresh();
      cache.recordKnownLocation(docker('r.example'), gz, 'team/a');
      cache.recordKnownLocation(docker('r.example'), gz, 'team/b');
      cache.recordKnownLocation(docker('r.example'), gz, 'team/a');
      expect(cache.candidateLocations('docker', 'r.example', gz, false).map((c) => c.location)).toEqual([
        'team/a',
        'team/b',
      ]);
    });

    it('returns locations in every scope of the transport when no scope is given, naming the scope', async () => {
      const cache = await fresh();
      cache.recordKnownLocation(docker('r.example'), gz, 'team/a');
      cache.recordKnownLocation(docker('s.example'), gz, 'team/b');
      const found = cache.candidateLocations('docker', undefined, gz, false);
      expect(found.map((c) => [c.scope, c.location])).toEqual([
        ['s.example', 'team/b'],
        ['r.example', 'team/a'],
      ]);
    });

    it('substitutes nothing unless allowed', async () => {
      const cache = await fresh();
      cache.recordDigestUncompressedPair(gz, u);
      cache.recordDigestUncompressedPair(zs, u);
      cache.recordKnownLocation(docker('r.example'), zs, 'team/z');
      expect(cache.candidateLocations('docker', 'r.example', gz, false)).toEqual([]);
      expect(cache.candidateLocations('docker', 'r.example', gz, true).map((c) => c.digest)).toEqual([zs]);
    });

    it('orders substitutes: the digest asked for first, other variants by recency, the uncompressed one last', async () => {
      const cache = await fresh();
      cache.recordDigestUncompressedPair(gz, u);
      cache.recordDigestUncompressedPair(zs, u);
      cache.recordDigestUncompressedPair(other, u);
      cache.recordDigestCompression(gz, 'gzip');
      cache.recordDigestCompression(zs, 'zstd');
      cache.recordDigestCompression(u, 'none');
      // Recorded oldest to newest: the primary's location is the oldest and still comes first.
      cache.recordKnownLocation(docker('r.example'), gz, 'team/gz');
      cache.recordKnownLocation(docker('r.example'), zs, 'team/zs');
      cache.recordKnownLocation(docker('r.example'), other, 'team/other');
      cache.recordKnownLocation(docker('r.example'), u, 'team/u');
      const found = cache.candidateLocations('docker', 'r.example', gz, true);
      expect(found.map((c) => [c.digest, c.location, c.compression])).toEqual([
        [gz, 'team/gz', 'gzip'],
        [other, 'team/other', 'unknown'],
        [zs, 'team/zs', 'zstd'],
        [u, 'team/u', 'none'],
      ]);
    });

    it('finds the compressed variants of an uncompressed digest', async () => {
      const cache = await fresh();
      cache.recordDigestUncompressedPair(gz, u);
      cache.recordDigestCompression(gz, 'gzip');
      cache.recordKnownLocation({ transport: 'oci', scope: '/layout/blobs' }, gz, '/layout/blobs/sha256/x');
      const found = cache.candidateLocations('oci', '/layout/blobs', u, true);
      expect(found).toEqual([
        expect.objectContaining({ digest: gz, compression: 'gzip', location: '/layout/blobs/sha256/x' }),
      ]);
    });

    it('returns at most 5 candidates', async () => {
      const cache = await fresh();
      for (let i = 0; i < 8; i++) cache.recordKnownLocation(docker('r.example'), gz, `team/${i}`);
      const found = cache.candidateLocations('docker', 'r.example', gz, false);
      expect(found.map((c) => c.location)).toEqual(['team/7', 'team/6', 'team/5', 'team/4', 'team/3']);
    });

    it('filters substitutes by compression, never the digest asked for', async () => {
      const cache = await fresh();
      cache.recordDigestUncompressedPair(gz, u);
      cache.recordDigestUncompressedPair(zs, u);
      cache.recordDigestCompression(zs, 'zstd');
      cache.recordDigestCompression(u, 'none');
      cache.recordKnownLocation(docker('r.example'), gz, 'team/gz');
      cache.recordKnownLocation(docker('r.example'), zs, 'team/zs');
      cache.recordKnownLocation(docker('r.example'), u, 'team/u');
      const found = cache.reuseCandidates('docker', 'r.example', gz, {
        canSubstitute: true,
        compressions: ['gzip'],
      });
      expect(found.map((c) => c.digest)).toEqual([gz]);
      const any = cache.reuseCandidates('docker', 'r.example', u, {
        canSubstitute: true,
        compressions: ['gzip', 'zstd'],
      });
      expect(any.map((c) => c.digest)).toEqual([u, zs]);
    });

    it('adds at most 2 variants of unknown location after the located ones, within 5 in all', async () => {
      const cache = await fresh();
      const variants = ['a', 'b', 'c'].map(digest);
      for (const v of variants) cache.recordDigestUncompressedPair(v, u);
      cache.recordDigestUncompressedPair(gz, u);
      cache.recordKnownLocation(docker('r.example'), gz, 'team/gz');
      const found = cache.reuseCandidates('docker', 'r.example', gz, {
        canSubstitute: true,
        includeUnknownLocations: true,
      });
      expect(found[0]).toEqual(expect.objectContaining({ digest: gz, location: 'team/gz' }));
      expect(found.slice(1).every((c) => c.location === undefined && c.digest !== gz)).toBe(true);
      expect(found).toHaveLength(3);
      // Without the option, the located candidates only.
      expect(cache.candidateLocations('docker', 'r.example', gz, true)).toHaveLength(1);

      for (let i = 0; i < 4; i++) cache.recordKnownLocation(docker('r.example'), gz, `team/${i}`);
      const full = cache.reuseCandidates('docker', 'r.example', gz, {
        canSubstitute: true,
        includeUnknownLocations: true,
      });
      expect(full).toHaveLength(5);
      expect(full.every((c) => c.location !== undefined)).toBe(true);
    });

    it('never lists the digest asked for as of unknown location', async () => {
      const cache = await fresh();
      cache.recordDigestUncompressedPair(gz, u);
      const found = cache.reuseCandidates('docker', 'r.example', gz, {
        canSubstitute: true,
        includeUnknownLocations: true,
      });
      expect(found).toEqual([{ digest: u, compression: 'unknown' }]);
    });

    it('records nothing and throws nothing after close', async () => {
      const cache = await fresh();
      cache.recordKnownLocation(docker('r.example'), gz, 'team/a');
      cache.close();
      expect(() => {
        cache.recordKnownLocation(docker('r.example'), gz, 'team/b');
        cache.recordDigestUncompressedPair(gz, u);
        cache.recordDigestCompression(gz, 'gzip');
        cache.close();
      }).not.toThrow();
      expect(cache.candidateLocations('docker', 'r.example', gz, false)).toEqual([]);
      expect(cache.uncompressedDigest(gz)).toBeUndefined();
    });
  });
}
