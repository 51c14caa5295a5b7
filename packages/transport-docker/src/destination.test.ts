import { Readable } from 'node:stream';
import {
  type BlobCandidate,
  type BlobInfoCache,
  type BlobReuseCandidate,
  type CompressionName,
  copyImage,
  type Digest,
  insecureAcceptAnythingPolicy,
  MediaTypes,
  manifestDescriptors,
  PolicyContext,
} from '@img/core';
import {
  BLOB_GET,
  BLOB_UPLOAD,
  type FaultProxy,
  MemoryStore,
  type RegistryServer,
  randomImage,
  readImage,
  startFaultProxy,
  startRegistry,
  type TestImage,
} from '@img/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dockerTransport } from './index.js';
import { chunkSize } from './registry/upload.js';
import { useTestConfig } from './test-helpers.js';

const policy = new PolicyContext(insecureAcceptAnythingPolicy);

/**
 * A BlobInfoCache in memory (the real ones live in @img/blobcache): locations, most recent first, and
 * the compressed/uncompressed pairs and compressions the engine records, enough for substitutes.
 */
function memoryCache(): BlobInfoCache & { locations: Map<string, string[]> } {
  const locations = new Map<string, string[]>();
  const uncompressed = new Map<Digest, Digest>();
  const compressions = new Map<Digest, CompressionName>();
  const compressionOf = (d: Digest) => compressions.get(d) ?? 'unknown';
  const located = (transport: string, scope: string | undefined, digest: Digest) =>
    (locations.get(`${transport}\0${scope}\0${digest}`) ?? []).map((location) => ({
      digest,
      compression: compressionOf(digest),
      location,
      lastSeen: Date.now(),
    }));
  return {
    locations,
    uncompressedDigest: (d) => uncompressed.get(d),
    recordDigestUncompressedPair: (c, u) => void uncompressed.set(c, u),
    recordDigestCompression: (d, c) => void compressions.set(d, c),
    digestCompression: compressionOf,
    recordKnownLocation: (where, digest, location) => {
      const key = `${where.transport}\0${where.scope}\0${digest}`;
      const list = (locations.get(key) ?? []).filter((l) => l !== location);
      locations.set(key, [location, ...list]);
    },
    candidateLocations: (transport, scope, digest): BlobReuseCandidate[] => located(transport, scope, digest),
    reuseCandidates: (transport, scope, digest, options): BlobCandidate[] => {
      const base = uncompressed.get(digest) ?? digest;
      const variants = options.canSubstitute
        ? [...new Set([...uncompressed.keys(), base])].filter(
            (d) =>
              d !== digest &&
              (uncompressed.get(d) ?? d) === base &&
              (options.compressions ?? []).includes(compressionOf(d)),
          )
        : [];
      const out: BlobCandidate[] = located(transport, scope, digest);
      for (const v of variants) {
        const at = located(transport, scope, v);
        if (at.length > 0) out.push(...at);
        else if (options.includeUnknownLocations) out.push({ digest: v, compression: compressionOf(v) });
      }
      return out;
    },
    close: () => {},
  };
}

describe('docker destination, counted through a proxy', () => {
  let registry: RegistryServer;
  let proxy: FaultProxy;
  let image: TestImage;
  const store = new MemoryStore('mem');
  const ref = (name: string) => dockerTransport.parseReference(`//${proxy.host}/${name}`);

  beforeAll(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy({ target: registry.url });
    useTestConfig({ insecureHosts: [proxy.host, registry.host] });
    image = await randomImage({ seed: 21, layers: 3, layerSize: 50_000 });
  });
  afterAll(async () => {
    await proxy?.close();
    await registry?.stop();
  });
  beforeEach(() => {
    proxy.clearFaults();
    proxy.reset();
  });

  it('copies a present image again with one manifest HEAD and no blob request', async () => {
    const src = store.add('present', image);
    await copyImage(ref('present:v1'), src, { policy });
    await proxy.settled();
    proxy.reset();
    const second = await copyImage(ref('present:v1'), src, { policy });
    await proxy.settled();
    expect(second.alreadyPresent).toBe(true);
    expect(proxy.count({ method: 'HEAD' })).toBe(1);
    expect(proxy.count({ path: '/blobs/' })).toBe(0);
    expect(proxy.count({ method: ['PUT', 'POST', 'PATCH'] })).toBe(0);
  });

  it('skips the upload of every blob a HEAD finds', async () => {
    const src = store.add('skip', image);
    await copyImage(ref('skip:v1'), src, { policy });
    await proxy.settled();
    proxy.reset();
    // Another tag: the manifest is not there under it, every blob is.
    const result = await copyImage(ref('skip:v2'), src, { policy });
    await proxy.settled();
    expect(result.blobsReused).toBe(4);
    expect(proxy.count({ method: 'HEAD', path: '/blobs/' })).toBe(4);
    expect(proxy.count(BLOB_UPLOAD)).toBe(0);
    expect(proxy.blobBytesUp).toBe(0);
  });

  it('mounts every blob from the source repository of the same registry, with an empty cache', async () => {
    await copyImage(ref('mount-src:v1'), store.add('mount', image), { policy });
    await proxy.settled();
    proxy.reset();
    const result = await copyImage(ref('mount-dest:v1'), ref('mount-src:v1'), { policy });
    await proxy.settled();
    expect(result.blobsReused).toBe(4);
    expect(proxy.count({ method: 'POST', path: /mount=.*from=mount-src/ })).toBe(4);
    expect(proxy.count({ method: ['PATCH', 'PUT'], path: '/blobs/uploads/' })).toBe(0);
    expect(proxy.blobBytesUp).toBe(0);
    expect(proxy.count(BLOB_GET)).toBe(0);
    const back = await readImage(ref('mount-dest:v1'));
    expect(back.layers.map((l) => l.digest)).toEqual(image.layers.map((l) => l.digest));
  });

  it('mounts from a repository the cache knows, most recent first', async () => {
    const cache = memoryCache();
    await copyImage(ref('cached-a:v1'), store.add('cached', image), { policy, cache });
    await proxy.settled();
    proxy.reset();
    // The source is not on this registry: only the cache can say where the blobs are.
    const result = await copyImage(ref('cached-b:v1'), store.ref('cached'), { policy, cache });
    await proxy.settled();
    expect(result.blobsReused).toBe(4);
    expect(proxy.count({ method: 'POST', path: /mount=.*from=cached-a/ })).toBe(4);
    expect(proxy.blobBytesUp).toBe(0);
    expect(cache.candidateLocations('docker', proxy.host, image.layers[0]!.digest, false)[0]?.location).toBe(
      'cached-b',
    );
  });

  it('pushes an uncompressed image a second time without uploading a byte, finding the gzip variants by HEAD', async () => {
    const cache = memoryCache();
    const plain = await randomImage({ seed: 22, layers: 2, layerSize: 50_000, compressed: false });
    const src = store.add('plain', plain);
    const first = await copyImage(ref('plain:v1'), src, { policy, cache });
    await proxy.settled();
    expect(proxy.blobBytesUp).toBeGreaterThan(0);
    proxy.reset();
    const second = await copyImage(ref('plain:v1'), src, { policy, cache });
    await proxy.settled();
    expect(second.bytesMoved).toBe(0);
    expect(proxy.blobBytesUp).toBe(0);
    expect(proxy.count(BLOB_UPLOAD)).toBe(0);
    expect(proxy.count(BLOB_GET)).toBe(0);
    expect(second.manifestDigest).toBe(first.manifestDigest);
    // Per layer: a HEAD of the tar (absent), then of its gzip variant (present); one for the config.
    expect(proxy.count({ method: 'HEAD', path: '/blobs/' })).toBe(2 * plain.layers.length + 1);
    const layers = manifestDescriptors(second.manifest.bytes).layers;
    expect(layers.map((l) => l.mediaType)).toEqual([MediaTypes.ociLayerGzip, MediaTypes.ociLayerGzip]);
    const back = await readImage(ref('plain:v1'));
    expect(back.layers.map((l) => l.digest)).toEqual(layers.map((l) => l.digest));
  });

  it('mounts the gzip variant of an uncompressed layer from another repository the cache knows', async () => {
    const cache = memoryCache();
    const plain = await randomImage({ seed: 23, layers: 1, layerSize: 50_000, compressed: false });
    const src = store.add('plain-mount', plain);
    await copyImage(ref('variant-a:v1'), src, { policy, cache });
    await proxy.settled();
    proxy.reset();
    const dest = await ref('variant-b:v1').newImageDestination({});
    try {
      const layer = plain.layers[0]!;
      const found = await dest.tryReusingBlob(
        { digest: layer.digest, size: layer.bytes.length, mediaType: layer.mediaType },
        { cache, canSubstitute: true, compressions: ['gzip'] },
      );
      const gzip = cache.reuseCandidates('docker', proxy.host, layer.digest, {
        canSubstitute: true,
        compressions: ['gzip'],
      })[0]!.digest;
      expect(found).toEqual({
        digest: gzip,
        size: expect.any(Number),
        how: 'mounted',
        compression: 'gzip',
      });
      await proxy.settled();
      expect(
        proxy.count({ method: 'POST', path: new RegExp(`mount=${encodeURIComponent(gzip)}&from=variant-a`) }),
      ).toBe(1);
      expect(proxy.blobBytesUp).toBe(0);
      expect((await dest.tryReusingBlob({ digest: gzip, size: found!.size }))?.how).toBe('present');
    } finally {
      await dest.close();
    }
  });

  it('takes no substitute without canSubstitute', async () => {
    const cache = memoryCache();
    const plain = await randomImage({ seed: 24, layers: 1, layerSize: 10_000, compressed: false });
    await copyImage(ref('nosub:v1'), store.add('nosub', plain), { policy, cache });
    const dest = await ref('nosub:v1').newImageDestination({});
    try {
      const layer = plain.layers[0]!;
      expect(await dest.tryReusingBlob({ digest: layer.digest, size: layer.bytes.length }, { cache })).toBe(
        undefined,
      );
    } finally {
      await dest.close();
    }
  });

  it('retries a request answered 429 after its Retry-After', async () => {
    proxy.addFault({
      match: { method: 'PUT', path: '/manifests/' },
      action: { kind: 'too-many-requests', retryAfter: 1 },
      times: 1,
    });
    const started = Date.now();
    await copyImage(ref('busy:v1'), store.add('busy', image), { policy });
    await proxy.settled();
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(
      proxy.requests.filter((r) => r.method === 'PUT' && r.path.includes('/manifests/')).map((r) => r.status),
    ).toEqual([429, 201, 201]);
  });

  it('streams a large blob of unknown size as PATCH chunks and verifies it', async () => {
    const data = Buffer.alloc(2 * chunkSize + 12345);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    const { createHash } = await import('node:crypto');
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
    const dest = await ref('chunked:v1').newImageDestination({});
    try {
      const stored = await dest.putBlob(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), {
        digest,
        size: -1,
      });
      expect(stored).toEqual({ digest, size: data.length });
      await proxy.settled();
      expect(proxy.count({ method: 'PATCH' })).toBe(3);
      expect(proxy.blobBytesUp).toBe(data.length);
      expect((await dest.tryReusingBlob({ digest, size: data.length }))?.how).toBe('present');
    } finally {
      await dest.close();
    }
  });

  it('resends a PATCH chunk the registry refused with 503', async () => {
    const data = Buffer.alloc(chunkSize + 999, 7);
    const { createHash } = await import('node:crypto');
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
    proxy.addFault({ match: { method: 'PATCH' }, action: { kind: 'status', status: 503 }, times: 1 });
    const dest = await ref('patch-retry:v1').newImageDestination({
      transportOptions: { docker: { retryDelayMs: 10 } },
    });
    try {
      const stored = await dest.putBlob(Readable.from([data]), { digest, size: data.length });
      expect(stored.digest).toBe(digest);
      await proxy.settled();
      expect(proxy.requests.filter((r) => r.method === 'PATCH').map((r) => r.status)).toEqual([
        503, 202, 202,
      ]);
    } finally {
      await dest.close();
    }
  });

  it('refuses a large blob whose digest does not match and cancels the upload', async () => {
    const data = Buffer.alloc(chunkSize / 2 + 5_000_000, 1);
    const claimed = `sha256:${'0'.repeat(64)}` as Digest;
    const dest = await ref('mismatch:v1').newImageDestination({});
    try {
      await expect(
        dest.putBlob(Readable.from([data]), { digest: claimed, size: data.length }),
      ).rejects.toMatchObject({
        code: 'IMG_DIGEST_MISMATCH',
      });
      await proxy.settled();
      expect(proxy.count({ method: 'DELETE', path: '/blobs/uploads/' })).toBe(1);
      expect(proxy.count({ method: 'PUT' })).toBe(0);
    } finally {
      await dest.close();
    }
  });
});

describe('docker destination, broken uploads', () => {
  let registry: RegistryServer;
  let proxy: FaultProxy;
  const ref = (name: string) => dockerTransport.parseReference(`//${proxy.host}/${name}`);
  const fast = { transportOptions: { docker: { retryDelayMs: 10 } } };

  beforeAll(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy({ target: registry.url });
    useTestConfig({ insecureHosts: [proxy.host, registry.host] });
  });
  afterAll(async () => {
    await proxy?.close();
    await registry?.stop();
  });

  async function blob(size: number, seed: number): Promise<{ data: Buffer; digest: Digest }> {
    const { createHash } = await import('node:crypto');
    const data = Buffer.alloc(size, seed);
    for (let i = 0; i < size; i += 1000) data[i] = (i / 1000) & 0xff;
    return { data, digest: `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest };
  }

  it('starts a new session when the first chunk breaks and the registry cannot resume it', async () => {
    const { data, digest } = await blob(chunkSize - 1000, 3);
    proxy.reset();
    proxy.addFault({
      match: { method: 'PATCH' },
      action: { kind: 'reset-request', afterBytes: 100_000 },
      times: 1,
    });
    const dest = await ref('broken-first:v1').newImageDestination(fast);
    try {
      expect(await dest.putBlob(Readable.from([data]), { digest, size: -1 })).toEqual({
        digest,
        size: data.length,
      });
    } finally {
      await dest.close();
    }
    await proxy.settled();
    expect(proxy.count({ method: 'POST' })).toBe(2);
    expect(proxy.requests.filter((r) => r.method === 'PUT').map((r) => r.status)).toEqual([201]);
  });

  it('fails one clear error when a later chunk breaks and the registry cannot resume it', async () => {
    const { data, digest } = await blob(chunkSize * 2 + 10, 4);
    proxy.clearFaults();
    proxy.reset();
    proxy.addFault({
      match: { method: 'PATCH' },
      action: { kind: 'reset-request', afterBytes: 100_000 },
      every: 2,
      times: 1,
    });
    const dest = await ref('broken-later:v1').newImageDestination(fast);
    try {
      await expect(dest.putBlob(Readable.from([data]), { digest, size: data.length })).rejects.toThrow(
        /the upload broke after 8388608 bytes and the registry cannot resume it/,
      );
      expect(await dest.tryReusingBlob({ digest, size: data.length })).toBeUndefined();
    } finally {
      await dest.close();
    }
  });
});
