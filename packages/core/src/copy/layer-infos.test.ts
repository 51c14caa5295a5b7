import { gunzipSync, gzipSync } from 'node:zlib';
import { MemoryStore, randomImage, readImage, type TestImage } from '@img/testing';
import { describe, expect, it } from 'vitest';
import type { BlobInfoCache, CompressionName } from '../blob-info-cache.js';
import { computeDigest, type Digest } from '../digest.js';
import { InvalidManifestError, ManifestConversionError } from '../errors.js';
import { manifestDescriptors } from '../manifest/descriptors.js';
import { MediaTypes } from '../manifest/media-types.js';
import { parseImageManifest } from '../manifest/validate.js';
import type { BlobInfo, ImageDestination, ImageReference, TryReusingBlobOptions } from '../types.js';
import { copyImage, type PolicyChecker } from './copy.js';
import type { CopyEvent } from './events.js';

const policy: PolicyChecker = { isRunningImageAllowed: async () => {} };

interface StoredImage {
  /** The source as a containers-storage-like store offers it: layerInfosForCopy gives the tars. */
  ref: ImageReference;
  /** The image as pulled: its manifest names gzip blobs the store cannot reproduce. */
  image: TestImage;
  tars: Buffer[];
  offered: BlobInfo[];
}

/**
 * An image "pulled" with another gzip implementation (level 1 here, Go's gzip in real life) and kept
 * uncompressed, as containers-storage does: the manifest names gzip blobs, the store holds only the
 * tars, and its source offers them through layerInfosForCopy (`offer` may tamper with the list).
 */
async function storedImage(
  store: MemoryStore,
  name: string,
  seed: number,
  format: 'oci' | 'docker' = 'oci',
  offer: (infos: BlobInfo[]) => BlobInfo[] = (infos) => infos,
  gzipLevel = 1,
): Promise<StoredImage> {
  const plain = await randomImage({ seed, layers: 2, format, compressed: false, layerSize: 20_000 });
  const tars = plain.layers.map((l) => l.bytes);
  const gzipType = format === 'oci' ? MediaTypes.ociLayerGzip : MediaTypes.dockerLayerGzip;
  const tarType = format === 'oci' ? MediaTypes.ociLayer : MediaTypes.dockerLayer;
  const layers = tars.map((tar) => {
    const bytes = gzipSync(tar, { level: gzipLevel });
    return { bytes, digest: computeDigest(bytes), diffID: computeDigest(tar), mediaType: gzipType };
  });
  const json = JSON.parse(plain.manifest.toString());
  json.layers = layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.bytes.length }));
  const manifest = Buffer.from(JSON.stringify(json));
  const image: TestImage = {
    ...plain,
    manifest,
    manifestDigest: computeDigest(manifest),
    layers,
    blobs: new Map([[plain.configDigest, plain.config]]),
  };
  const ref = store.add(name, image);
  for (const [i, tar] of tars.entries()) store.blobs.set(layers[i]!.diffID, tar);
  const offered = offer(
    tars.map((tar) => ({ digest: computeDigest(tar), size: tar.length, mediaType: tarType })),
  );
  const wrapped: ImageReference = Object.create(ref);
  wrapped.newImageSource = async (ctx, options) =>
    Object.assign(await ref.newImageSource(ctx, options), { layerInfosForCopy: async () => offered });
  return { ref: wrapped, image, tars, offered };
}

/** A cache of compressed/uncompressed pairs and compressions, enough for substitutes. */
function pairCache(): BlobInfoCache {
  const uncompressed = new Map<Digest, Digest>();
  const compressions = new Map<Digest, CompressionName>();
  const compressionOf = (d: Digest) => compressions.get(d) ?? 'unknown';
  return {
    uncompressedDigest: (d) => uncompressed.get(d),
    recordDigestUncompressedPair: (c, u) => void uncompressed.set(c, u),
    recordDigestCompression: (d, c) => void compressions.set(d, c),
    digestCompression: compressionOf,
    recordKnownLocation: () => {},
    candidateLocations: () => [],
    reuseCandidates: (_transport, _scope, digest, options) => {
      const base = uncompressed.get(digest) ?? digest;
      return [...uncompressed]
        .filter(([c, u]) => u === base && c !== digest)
        .filter(([c]) => options.canSubstitute && (options.compressions ?? []).includes(compressionOf(c)))
        .map(([c]) => ({ digest: c, compression: compressionOf(c) }));
    },
    close: () => {},
  };
}

/** The store's destination, reusing with canSubstitute a variant it holds, as a real transport does. */
function substitutingRef(store: MemoryStore, image: string): ImageReference {
  const ref = store.ref(image);
  const wrapped: ImageReference = Object.create(ref);
  wrapped.newImageDestination = async (ctx, options) => {
    const dest: ImageDestination = await ref.newImageDestination(ctx, options);
    const exact = dest.tryReusingBlob.bind(dest);
    dest.tryReusingBlob = async (info: BlobInfo, opts: TryReusingBlobOptions = {}) => {
      const found = await exact(info, opts);
      if (found || !opts.canSubstitute || !opts.cache) return found;
      for (const c of opts.cache.reuseCandidates('memory', store.name, info.digest, {
        canSubstitute: true,
        compressions: opts.compressions,
      })) {
        const bytes = store.blobs.get(c.digest);
        if (bytes)
          return { digest: c.digest, size: bytes.length, how: 'substituted', compression: c.compression };
      }
      return undefined;
    };
    return dest;
  };
  return wrapped;
}

describe('copyImage from a source with layerInfosForCopy', () => {
  it('writes the source manifest byte for byte when compressing the offered layers gives back its blobs, and finds it present the second time', async () => {
    const src = new MemoryStore('src');
    const dst = new MemoryStore('dst');
    dst.capabilities.desiredLayerCompression = 'compress';
    // Layers gzipped as img itself compresses them (zlib's defaults): compressing the tars again
    // reproduces the manifest's blobs.
    const { ref, image } = await storedImage(src, 'a', 54, 'oci', (infos) => infos, 6);
    const first = await copyImage(dst.ref('a'), ref, { policy });
    expect(first.manifestDigest).toBe(image.manifestDigest);
    expect(Buffer.from(first.manifest.bytes).equals(image.manifest)).toBe(true);
    await readImage(dst.ref('a'));

    src.resetCounters();
    dst.resetCounters();
    const again = await copyImage(dst.ref('a'), ref, { policy });
    expect(again.alreadyPresent).toBe(true);
    expect(again.manifestDigest).toBe(image.manifestDigest);
    expect(src.counters.getBlob).toBe(0);
    expect(dst.counters.putBlob + dst.counters.tryReusingBlob + dst.counters.putManifest).toBe(0);
  });

  it('compresses the offered uncompressed layers for a compressing destination and writes a manifest of them', async () => {
    const src = new MemoryStore('src');
    const dst = new MemoryStore('dst');
    dst.capabilities.desiredLayerCompression = 'compress';
    const { ref, image, tars } = await storedImage(src, 'a', 51);
    const result = await copyImage(dst.ref('a'), ref, { policy });

    // The manifest's gzip blobs are not in the store: only the tars and the config were read.
    expect(src.counters.getBlob).toBe(3);
    expect(src.counters.bytesRead).toBe(tars[0]!.length + tars[1]!.length + image.config.length);
    const written = parseImageManifest(result.manifest.bytes, result.manifest.mediaType);
    expect(written.mediaType).toBe(MediaTypes.ociManifest);
    expect(written.config).toEqual({
      mediaType: MediaTypes.ociConfig,
      digest: image.configDigest,
      size: image.config.length,
    });
    expect(dst.blobs.get(image.configDigest)?.equals(image.config)).toBe(true);
    for (const [i, layer] of written.layers.entries()) {
      const blob = dst.blobs.get(layer.digest)!;
      expect(layer.mediaType).toBe(MediaTypes.ociLayerGzip);
      expect(computeDigest(blob)).toBe(layer.digest);
      expect(layer.size).toBe(blob.length);
      expect(blob.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
      expect(gunzipSync(blob).equals(tars[i]!)).toBe(true);
      expect(layer.digest).not.toBe(image.layers[i]!.digest);
    }
    expect(result.manifestDigest).toBe(computeDigest(result.manifest.bytes));
    expect(result.manifestDigest).not.toBe(image.manifestDigest);
    // Read back through the transport: every digest and size checks out.
    const back = await readImage(dst.ref('a'));
    expect(back.manifestDigest).toBe(result.manifestDigest);
    expect(back.configDigest).toBe(image.configDigest);
  });

  it('writes the offered layers as they are for a destination that keeps layers, and finds that manifest present the second time', async () => {
    const src = new MemoryStore('src');
    const dst = new MemoryStore('dst');
    const { ref, offered } = await storedImage(src, 'a', 52, 'docker');
    const first = await copyImage(dst.ref('a'), ref, { policy });
    const layers = manifestDescriptors(first.manifest.bytes).layers;
    expect(layers).toEqual(offered);
    expect(first.manifest.mediaType).toBe(MediaTypes.dockerV2Schema2);
    await readImage(dst.ref('a'));

    src.resetCounters();
    dst.resetCounters();
    const events: CopyEvent[] = [];
    const again = await copyImage(dst.ref('a'), ref, { policy, onEvent: (e) => events.push(e) });
    expect(again.alreadyPresent).toBe(true);
    expect(again.manifestDigest).toBe(first.manifestDigest);
    expect(again.imageSize).toBe(first.imageSize);
    expect(src.counters.getBlob).toBe(0);
    expect(dst.counters.putBlob + dst.counters.tryReusingBlob + dst.counters.putManifest).toBe(0);
    expect(events.map((e) => e.type)).toEqual(['image-present', 'done']);
  });

  it('moves nothing the second time into a compressing destination that holds the compressed variants', async () => {
    const src = new MemoryStore('src');
    const dst = new MemoryStore('dst');
    dst.capabilities.desiredLayerCompression = 'compress';
    const cache = pairCache();
    const { ref } = await storedImage(src, 'a', 53);
    const first = await copyImage(substitutingRef(dst, 'a'), ref, { policy, cache });
    expect(first.bytesMoved).toBeGreaterThan(0);

    src.resetCounters();
    dst.resetCounters();
    const events: CopyEvent[] = [];
    const second = await copyImage(substitutingRef(dst, 'a'), ref, {
      policy,
      cache,
      onEvent: (e) => events.push(e),
    });
    expect(second.bytesMoved).toBe(0);
    expect(src.counters.getBlob).toBe(0);
    expect(dst.counters.putBlob).toBe(0);
    expect(second.manifestDigest).toBe(first.manifestDigest);
    const reused = events.filter((e) => e.type === 'blob-reused');
    expect(reused.map((e) => `${e.kind} ${e.how}`).sort()).toEqual([
      'config present',
      'layer substituted',
      'layer substituted',
    ]);
  });

  it('refuses to change the manifest with preserveDigests, before reading any blob', async () => {
    const src = new MemoryStore('src');
    const dst = new MemoryStore('dst');
    const { ref } = await storedImage(src, 'a', 54);
    const copy = copyImage(dst.ref('a'), ref, { policy, preserveDigests: true });
    await expect(copy).rejects.toBeInstanceOf(ManifestConversionError);
    await expect(copy).rejects.toThrow(
      'cannot change the manifest: digests must be preserved (--preserve-digests)',
    );
    expect(src.counters.getBlob).toBe(0);
    expect(dst.counters.putBlob).toBe(0);
    expect(dst.counters.commits).toBe(0);
  });

  it('fails clearly when the source offers another number of layers than its manifest lists', async () => {
    const src = new MemoryStore('src');
    const dst = new MemoryStore('dst');
    const { ref } = await storedImage(src, 'a', 55, 'oci', (infos) => infos.slice(1));
    const copy = copyImage(dst.ref('a'), ref, { policy });
    await expect(copy).rejects.toBeInstanceOf(InvalidManifestError);
    await expect(copy).rejects.toThrow('src:a offers 1 layers to copy, its manifest lists 2');
    expect(src.counters.getBlob).toBe(0);
    expect(dst.counters.commits).toBe(0);
  });

  it('copies the manifest as it is when the source offers the manifest layers themselves', async () => {
    const src = new MemoryStore('src');
    const dst = new MemoryStore('dst');
    const image = await randomImage({ seed: 56 });
    const ref = src.add('a', image);
    const wrapped: ImageReference = Object.create(ref);
    wrapped.newImageSource = async (ctx, options) =>
      Object.assign(await ref.newImageSource(ctx, options), {
        layerInfosForCopy: async () => manifestDescriptors(image.manifest).layers,
      });
    const result = await copyImage(dst.ref('a'), wrapped, { policy, preserveDigests: true });
    expect(result.manifestDigest).toBe(image.manifestDigest);
  });
});
