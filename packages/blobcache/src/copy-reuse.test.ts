import {
  type BlobInfo,
  type CopyEvent,
  computeDigest,
  copyImage,
  type ImageDestination,
  type ImageReference,
  MediaTypes,
  manifestDescriptors,
  type PolicyChecker,
  type TryReusingBlobOptions,
  type UploadInfo,
} from '@img/core';
import { MemoryStore, randomImage, type TestImage } from '@img/testing';
import { describe, expect, it } from 'vitest';
import { MemoryBlobInfoCache } from './memory.js';

const policy: PolicyChecker = { isRunningImageAllowed: async () => {} };

/**
 * A memory destination that uses the cache as a real transport does: it records where it stores
 * blobs (scope: the store's name) and, with canSubstitute, reuses a variant it holds.
 */
function cachingRef(
  store: MemoryStore,
  image: string,
  seen: { reuse: TryReusingBlobOptions[]; put: UploadInfo[] },
) {
  const ref = store.ref(image);
  const wrapped: ImageReference = Object.create(ref);
  wrapped.newImageDestination = async (ctx, options) => {
    const dest: ImageDestination = await ref.newImageDestination(ctx, options);
    const where = { transport: 'memory', scope: store.name };
    const putBlob = dest.putBlob.bind(dest);
    dest.putBlob = async (stream, info, opts) => {
      seen.put.push(info);
      const stored = await putBlob(stream, info, opts);
      opts?.cache?.recordKnownLocation(where, stored.digest, stored.digest);
      return stored;
    };
    const tryReusingBlob = dest.tryReusingBlob.bind(dest);
    dest.tryReusingBlob = async (info: BlobInfo, opts: TryReusingBlobOptions = {}) => {
      seen.reuse.push(opts);
      const exact = await tryReusingBlob(info, opts);
      if (exact || !opts.canSubstitute || !opts.cache) return exact;
      for (const c of opts.cache.reuseCandidates('memory', store.name, info.digest, {
        canSubstitute: true,
        compressions: opts.compressions,
      })) {
        const bytes = store.blobs.get(c.digest);
        if (bytes) return { digest: c.digest, size: bytes.length, how: 'substituted' as const };
      }
      return undefined;
    };
    return dest;
  };
  return wrapped;
}

describe('copyImage with a BlobInfoCache', () => {
  it('records the compression of each layer copied and the pair of each one it compresses', async () => {
    const src = new MemoryStore('src');
    const dst = new MemoryStore('dst');
    dst.capabilities.desiredLayerCompression = 'compress';
    const image = await randomImage({ seed: 31, compressed: false, layers: 2 });
    const cache = new MemoryBlobInfoCache();
    const result = await copyImage(dst.ref('a'), src.add('a', image), { policy, cache });
    const written = manifestDescriptors(result.manifest.bytes).layers;
    for (const [i, layer] of image.layers.entries()) {
      expect(cache.digestCompression(layer.digest)).toBe('none');
      expect(cache.uncompressedDigest(layer.digest)).toBe(layer.digest);
      expect(cache.digestCompression(written[i]!.digest)).toBe('gzip');
      expect(cache.uncompressedDigest(written[i]!.digest)).toBe(layer.digest);
    }
  });

  it('records gzip for a compressed layer copied as it is', async () => {
    const src = new MemoryStore('src');
    const dst = new MemoryStore('dst');
    const image = await randomImage({ seed: 32, layers: 1 });
    const cache = new MemoryBlobInfoCache();
    await copyImage(dst.ref('a'), src.add('a', image), { policy, cache });
    expect(cache.digestCompression(image.layers[0]!.digest)).toBe('gzip');
  });

  it('reuses the compressed variant of an uncompressed layer on the second copy, moving 0 bytes', async () => {
    const src = new MemoryStore('src');
    const dst = new MemoryStore('dst');
    dst.capabilities.desiredLayerCompression = 'compress';
    dst.capabilities.supportedManifestMediaTypes = [MediaTypes.ociManifest];
    const image = await randomImage({ seed: 33, compressed: false, layers: 3 });
    const cache = new MemoryBlobInfoCache();
    const seen = { reuse: [] as TryReusingBlobOptions[], put: [] as UploadInfo[] };
    const srcRef = src.add('a', image);
    const first = await copyImage(cachingRef(dst, 'a', seen), srcRef, { policy, cache });
    expect(first.bytesMoved).toBeGreaterThan(0);
    src.resetCounters();
    dst.resetCounters();
    const events: CopyEvent[] = [];
    const second = await copyImage(cachingRef(dst, 'a', seen), srcRef, {
      policy,
      cache,
      onEvent: (e) => events.push(e),
    });
    expect(second.bytesMoved).toBe(0);
    expect(src.counters.getBlob).toBe(0);
    expect(dst.counters.putBlob).toBe(0);
    expect(second.manifestDigest).toBe(first.manifestDigest);
    const reused = events.filter((e) => e.type === 'blob-reused');
    expect(reused.map((e) => e.how).sort()).toEqual(['present', 'substituted', 'substituted', 'substituted']);
    // An OCI image into an OCI-only destination: a zstd variant would do too; the layers' media type is the substitute's.
    expect(seen.reuse.find((o) => o.canSubstitute)?.compressions).toEqual(['gzip', 'zstd']);
    expect(manifestDescriptors(second.manifest.bytes).layers.map((l) => l.mediaType)).toEqual([
      MediaTypes.ociLayerGzip,
      MediaTypes.ociLayerGzip,
      MediaTypes.ociLayerGzip,
    ]);
  });

  it('asks for no zstd substitute when the image may be written in a Docker format', async () => {
    const src = new MemoryStore('src');
    const dst = new MemoryStore('dst');
    dst.capabilities.desiredLayerCompression = 'compress';
    const image = await randomImage({ seed: 34, format: 'docker', layers: 1 });
    const seen = { reuse: [] as TryReusingBlobOptions[], put: [] as UploadInfo[] };
    await copyImage(cachingRef(dst, 'a', seen), src.add('a', image), {
      policy,
      cache: new MemoryBlobInfoCache(),
    });
    const layerAsk = seen.reuse.find((o) => o.layerIndex === 0);
    expect(layerAsk).toEqual(expect.objectContaining({ canSubstitute: true, compressions: ['gzip'] }));
  });

  it('substitutes nothing when the manifest may not change', async () => {
    const src = new MemoryStore('src');
    const dst = new MemoryStore('dst');
    dst.capabilities.desiredLayerCompression = 'compress';
    const image = await randomImage({ seed: 35, layers: 1 });
    const seen = { reuse: [] as TryReusingBlobOptions[], put: [] as UploadInfo[] };
    await copyImage(cachingRef(dst, 'a', seen), src.add('a', image), {
      policy,
      cache: new MemoryBlobInfoCache(),
      preserveDigests: true,
    });
    expect(seen.reuse.every((o) => o.canSubstitute === false && o.compressions === undefined)).toBe(true);
  });

  it('gives the destination the uncompressed digest the cache knows when it decompresses', async () => {
    const src = new MemoryStore('src');
    const dst = new MemoryStore('dst');
    dst.capabilities.desiredLayerCompression = 'decompress';
    const image = await randomImage({ seed: 36, layers: 1, format: 'docker' });
    const cache = new MemoryBlobInfoCache();
    const srcRef = src.add('a', image);
    await copyImage(dst.ref('a'), srcRef, { policy, cache });
    const seen = { reuse: [] as TryReusingBlobOptions[], put: [] as UploadInfo[] };
    // A second destination: nothing to reuse there, so the layer is decompressed again.
    const other = new MemoryStore('other');
    other.capabilities.desiredLayerCompression = 'decompress';
    await copyImage(cachingRef(other, 'a', seen), srcRef, { policy, cache });
    const layerPut = seen.put.find((p) => p.digest !== image.configDigest);
    expect(layerPut).toEqual({ digest: image.layers[0]!.diffID, size: -1 });
  });

  it('converts a schema 1 image with the DiffIDs the cache knows, reading no layer the destination has', async () => {
    const image = await randomImage({ seed: 37, layers: 2, format: 'docker' });
    const schema1 = schema1Of(image);
    const src = new MemoryStore('src');
    const srcRef = src.add('a', schema1);
    const cache = new MemoryBlobInfoCache();
    const dst = new MemoryStore('dst');
    dst.capabilities.supportedManifestMediaTypes = [MediaTypes.dockerV2Schema2];
    const first = await copyImage(dst.ref('a'), srcRef, { policy, cache });
    // Without the cache's knowledge, DiffIDs need the bytes: no layer was offered for reuse.
    expect(dst.counters.tryReusingBlob).toBe(0);
    for (const layer of image.layers) expect(cache.uncompressedDigest(layer.digest)).toBe(layer.diffID);

    src.resetCounters();
    dst.resetCounters();
    const second = await copyImage(dst.ref('b'), srcRef, { policy, cache });
    expect(second.manifestDigest).toBe(first.manifestDigest);
    expect(dst.counters.tryReusingBlob).toBe(image.layers.length);
    expect(src.counters.getBlob).toBe(0);
    expect(second.bytesMoved).toBe(0);
  });
});

/** The image as an unsigned Docker schema 1 manifest (layers newest first, as schema 1 lists them). */
function schema1Of(image: TestImage): TestImage {
  const ids = image.layers.map((_, i) => `${String(i + 1).repeat(64)}`);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 1,
      name: 'app',
      tag: 'v1',
      architecture: 'amd64',
      fsLayers: [...image.layers].reverse().map((l) => ({ blobSum: l.digest })),
      history: ids
        .map((id, i) => ({
          v1Compatibility: JSON.stringify({
            id,
            ...(i > 0 ? { parent: ids[i - 1] } : {}),
            created: '2026-01-01T00:00:00Z',
            os: 'linux',
            architecture: 'amd64',
          }),
        }))
        .reverse(),
    }),
  );
  const blobs = new Map(image.layers.map((l) => [l.digest, l.bytes] as const));
  return {
    ...image,
    manifest,
    manifestDigest: computeDigest(manifest),
    mediaType: MediaTypes.dockerV2Schema1,
    blobs,
  };
}
