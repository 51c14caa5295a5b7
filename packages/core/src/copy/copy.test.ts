import { MemoryStore, randomImage, randomIndex } from '@img/testing';
import { describe, expect, it } from 'vitest';
import {
  DigestMismatchError,
  ManifestConversionError,
  NotSupportedError,
  PolicyRejectedError,
} from '../errors.js';
import { offloadedHashThreshold } from '../hash-pool.js';
import { guessMediaType, manifestDescriptors } from '../manifest/descriptors.js';
import { MediaTypes } from '../manifest/media-types.js';
import { copyImage, type PolicyChecker } from './copy.js';
import type { CopyEvent } from './events.js';

const allow: PolicyChecker = { isRunningImageAllowed: async () => {} };

function stores() {
  return { src: new MemoryStore('src'), dst: new MemoryStore('dst') };
}

describe('copyImage', () => {
  it('copies every blob and the manifest unchanged when the destination takes the format', async () => {
    const { src, dst } = stores();
    const image = await randomImage({ seed: 1, layers: 3 });
    const result = await copyImage(dst.ref('a'), src.add('a', image), { policy: allow });
    expect(result.manifestDigest).toBe(image.manifestDigest);
    expect(result.blobsCopied).toBe(4);
    expect(result.bytesMoved).toBe([...image.blobs.values()].reduce((n, b) => n + b.length, 0));
    expect(result.imageSize).toBe(result.bytesMoved);
    for (const [digest, bytes] of image.blobs) expect(dst.blobs.get(digest)?.equals(bytes)).toBe(true);
  });

  it('moves no blob the second time, asking the destination once', async () => {
    const { src, dst } = stores();
    const ref = src.add('a', await randomImage({ seed: 2 }));
    await copyImage(dst.ref('a'), ref, { policy: allow });
    src.resetCounters();
    dst.resetCounters();
    const events: CopyEvent[] = [];
    const again = await copyImage(dst.ref('a'), ref, { policy: allow, onEvent: (e) => events.push(e) });
    expect(again.alreadyPresent).toBe(true);
    expect(again.bytesMoved).toBe(0);
    expect(src.counters.getBlob).toBe(0);
    expect(dst.counters.putBlob + dst.counters.tryReusingBlob + dst.counters.putManifest).toBe(0);
    expect(events.map((e) => e.type)).toEqual(['image-present', 'done']);
  });

  it('offers every blob for reuse and copies only the missing ones without the presence capability', async () => {
    const { src, dst } = stores();
    dst.capabilities.alreadyContainsManifest = false;
    const base = await randomImage({ seed: 3, layers: 3 });
    await copyImage(dst.ref('base'), src.add('base', base), { policy: allow });
    const derived = await randomImage({ seed: 3, layers: 4 });
    src.resetCounters();
    const result = await copyImage(dst.ref('derived'), src.add('derived', derived), { policy: allow });
    // Same seed: the first three layers are the base's; only the fourth layer and the config move.
    expect(result.blobsReused).toBe(3);
    expect(result.blobsCopied).toBe(2);
    expect(src.counters.getBlob).toBe(2);
  });

  it('writes only the missing signatures into a destination that has the image', async () => {
    const { src, dst } = stores();
    const image = await randomImage({ seed: 4 });
    await copyImage(dst.ref('a'), src.add('plain', image), { policy: allow });
    dst.resetCounters();
    const signed = src.add('signed', image, [{ format: 'simple-signing', bytes: Buffer.from('sig') }]);
    const result = await copyImage(dst.ref('a'), signed, { policy: allow });
    expect(result.alreadyPresent).toBe(true);
    expect(dst.counters.putBlob).toBe(0);
    expect(dst.counters.putManifest).toBe(0);
    expect(dst.counters.putSignatures).toBe(1);
    expect(
      dst.images
        .get('a')
        ?.signatures.get('')
        ?.map((s) => Buffer.from(s.bytes).toString()),
    ).toEqual(['sig']);
  });

  it('falls back to a full copy with reuse when signatures are missing and puts cannot be out of order', async () => {
    const { src, dst } = stores();
    dst.capabilities.supportsOutOfOrderPuts = false;
    const image = await randomImage({ seed: 5 });
    await copyImage(dst.ref('a'), src.add('plain', image), { policy: allow });
    src.resetCounters();
    const signed = src.add('signed', image, [{ format: 'simple-signing', bytes: Buffer.from('sig') }]);
    const result = await copyImage(dst.ref('a'), signed, { policy: allow });
    expect(result.bytesMoved).toBe(0);
    expect(src.counters.getBlob).toBe(0);
    expect(result.blobsReused).toBe(3);
  });

  it('fails on a corrupted blob and commits nothing', async () => {
    const { src, dst } = stores();
    const image = await randomImage({ seed: 6 });
    const bad = Buffer.from(image.layers[0]!.bytes);
    bad[100]! ^= 1;
    image.blobs.set(image.layers[0]!.digest, bad);
    await expect(copyImage(dst.ref('a'), src.add('a', image), { policy: allow })).rejects.toBeInstanceOf(
      DigestMismatchError,
    );
    expect(dst.images.has('a')).toBe(false);
    expect(dst.counters.commits).toBe(0);
  });

  it('verifies a large blob on the hashing worker: copies it intact, fails it on one changed byte', async () => {
    const image = await randomImage({ seed: 61, layers: 1, layerSize: 17 << 20, compressed: false });
    const layer = image.layers[0]!;
    expect(layer.bytes.length).toBeGreaterThanOrEqual(offloadedHashThreshold);
    const good = stores();
    await copyImage(good.dst.ref('a'), good.src.add('a', image), { policy: allow });
    expect(Buffer.from(good.dst.blobs.get(layer.digest)!).equals(Buffer.from(layer.bytes))).toBe(true);

    const bad = stores();
    const corrupt = Buffer.from(layer.bytes);
    corrupt[corrupt.length - 5]! ^= 1;
    image.blobs.set(layer.digest, corrupt);
    await expect(
      copyImage(bad.dst.ref('a'), bad.src.add('a', image), { policy: allow }),
    ).rejects.toBeInstanceOf(DigestMismatchError);
    expect(bad.dst.blobs.has(layer.digest)).toBe(false);
    expect(bad.dst.counters.commits).toBe(0);
  });

  it('converts the manifest to a format the destination accepts', async () => {
    const { src, dst } = stores();
    dst.capabilities.supportedManifestMediaTypes = [MediaTypes.ociManifest, MediaTypes.ociIndex];
    const image = await randomImage({ seed: 7, format: 'docker' });
    const result = await copyImage(dst.ref('a'), src.add('a', image), { policy: allow });
    expect(result.manifest.mediaType).toBe(MediaTypes.ociManifest);
    const d = manifestDescriptors(result.manifest.bytes);
    expect(d.config?.mediaType).toBe(MediaTypes.ociConfig);
    expect(d.layers.map((l) => l.mediaType)).toEqual(image.layers.map(() => MediaTypes.ociLayerGzip));
    expect(d.layers.map((l) => l.digest)).toEqual(image.layers.map((l) => l.digest));
  });

  it('converts to the forced format', async () => {
    const { src, dst } = stores();
    const image = await randomImage({ seed: 8, format: 'oci' });
    const result = await copyImage(dst.ref('a'), src.add('a', image), {
      policy: allow,
      forceManifestMediaType: MediaTypes.dockerV2Schema2,
    });
    expect(guessMediaType(result.manifest.bytes)).toBe(MediaTypes.dockerV2Schema2);
  });

  it('refuses to convert a signed image unless its signatures are removed', async () => {
    const { src, dst } = stores();
    const image = await randomImage({ seed: 9, format: 'docker' });
    const signed = src.add('a', image, [{ format: 'simple-signing', bytes: Buffer.from('sig') }]);
    await expect(
      copyImage(dst.ref('a'), signed, { policy: allow, forceManifestMediaType: MediaTypes.ociManifest }),
    ).rejects.toBeInstanceOf(ManifestConversionError);
    const result = await copyImage(dst.ref('a'), signed, {
      policy: allow,
      forceManifestMediaType: MediaTypes.ociManifest,
      removeSignatures: true,
    });
    expect(result.manifest.mediaType).toBe(MediaTypes.ociManifest);
  });

  it('refuses signatures a destination cannot store', async () => {
    const { src, dst } = stores();
    dst.capabilities.supportsSignatures = false;
    const signed = src.add('a', await randomImage({ seed: 10 }), [
      { format: 'simple-signing', bytes: Buffer.from('s') },
    ]);
    await expect(copyImage(dst.ref('a'), signed, { policy: allow })).rejects.toBeInstanceOf(
      NotSupportedError,
    );
  });

  it('compresses uncompressed layers for a destination that wants them compressed', async () => {
    const { src, dst } = stores();
    dst.capabilities.desiredLayerCompression = 'compress';
    const image = await randomImage({ seed: 11, compressed: false, layers: 2 });
    const result = await copyImage(dst.ref('a'), src.add('a', image), { policy: allow });
    const d = manifestDescriptors(result.manifest.bytes);
    expect(d.layers.map((l) => l.mediaType)).toEqual([MediaTypes.ociLayerGzip, MediaTypes.ociLayerGzip]);
    for (const layer of d.layers)
      expect(dst.blobs.get(layer.digest)?.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
  });

  it('decompresses layers for a destination that wants them uncompressed', async () => {
    const { src, dst } = stores();
    dst.capabilities.desiredLayerCompression = 'decompress';
    const image = await randomImage({ seed: 12, layers: 2, format: 'docker' });
    const result = await copyImage(dst.ref('a'), src.add('a', image), { policy: allow });
    const d = manifestDescriptors(result.manifest.bytes);
    expect(d.layers.map((l) => l.digest)).toEqual(image.layers.map((l) => l.diffID));
    expect(d.layers.map((l) => l.mediaType)).toEqual([MediaTypes.dockerLayer, MediaTypes.dockerLayer]);
  });

  it('copies the instance for the wanted platform from a list', async () => {
    const { src, dst } = stores();
    const index = await randomIndex(['linux/amd64', 'linux/arm64/v8']);
    const result = await copyImage(dst.ref('a'), src.add('a', index), {
      policy: allow,
      sourceCtx: { osChoice: 'linux', architectureChoice: 'arm64' },
    });
    expect(result.manifestDigest).toBe(index.images[1]!.manifestDigest);
  });

  it('copies every instance and the list unchanged with all', async () => {
    const { src, dst } = stores();
    const index = await randomIndex(['linux/amd64', 'linux/arm64/v8', 'linux/s390x']);
    const result = await copyImage(dst.ref('a'), src.add('a', index), {
      policy: allow,
      imageListSelection: 'all',
    });
    expect(result.manifestDigest).toBe(index.manifestDigest);
    expect(dst.images.get('a')?.manifests.size).toBe(4);
    src.resetCounters();
    const again = await copyImage(dst.ref('a'), src.ref('a'), { policy: allow, imageListSelection: 'all' });
    expect(again.alreadyPresent).toBe(true);
    expect(src.counters.getBlob).toBe(0);
  });

  it('checks the policy before copying anything', async () => {
    const { src, dst } = stores();
    const deny: PolicyChecker = {
      isRunningImageAllowed: async () => {
        throw new PolicyRejectedError('rejected by policy');
      },
    };
    await expect(
      copyImage(dst.ref('a'), src.add('a', await randomImage()), { policy: deny }),
    ).rejects.toBeInstanceOf(PolicyRejectedError);
    expect(src.counters.getBlob).toBe(0);
  });

  it('stops when aborted', async () => {
    const { src, dst } = stores();
    const controller = new AbortController();
    controller.abort();
    await expect(
      copyImage(dst.ref('a'), src.add('a', await randomImage()), {
        policy: allow,
        signal: controller.signal,
      }),
    ).rejects.toThrow();
    expect(dst.images.has('a')).toBe(false);
  });

  describe('failure and abort paths', () => {
    it('commits nothing when aborted after the copy has started', async () => {
      const { src, dst } = stores();
      const controller = new AbortController();
      const copying = copyImage(dst.ref('a'), src.add('a', await randomImage({ seed: 20, layers: 4 })), {
        policy: allow,
        signal: controller.signal,
        onEvent: (e) => {
          if (e.type === 'image-start') controller.abort();
        },
      });
      await expect(copying).rejects.toThrow();
      expect(dst.images.has('a')).toBe(false);
      expect(src.counters.getBlob).toBe(0);
    });

    it('starts no queued layer once one has failed', async () => {
      const { src, dst } = stores();
      const image = await randomImage({ seed: 21, layers: 6 });
      const bad = Buffer.from(image.layers[0]!.bytes);
      bad[50]! ^= 1;
      image.blobs.set(image.layers[0]!.digest, bad);
      await expect(
        copyImage(dst.ref('a'), src.add('a', image), { policy: allow, concurrency: 1 }),
      ).rejects.toBeInstanceOf(DigestMismatchError);
      expect(src.counters.getBlob).toBe(1);
    });

    it('fails the copy, without crashing, when an event listener throws', async () => {
      const { src, dst } = stores();
      const copying = copyImage(dst.ref('a'), src.add('a', await randomImage({ seed: 22 })), {
        policy: allow,
        onEvent: (e) => {
          if (e.type === 'blob-done') throw new Error('listener bug');
        },
      });
      await expect(copying).rejects.toThrow('listener bug');
      expect(dst.images.has('a')).toBe(false);
    });
  });

  describe('signatures on a present image', () => {
    const sig = (text: string) => ({ format: 'simple-signing' as const, bytes: Buffer.from(text) });
    const sigstore = (key: string) => ({
      format: 'sigstore' as const,
      bytes: Buffer.from('{"critical":{}}'),
      mimeType: 'application/vnd.dev.cosign.simplesigning.v1+json',
      annotations: { 'dev.cosignproject.cosign/signature': key },
    });

    it('adds a second sigstore signature over the same payload', async () => {
      const { src, dst } = stores();
      const image = await randomImage({ seed: 23 });
      await copyImage(dst.ref('a'), src.add('one', image, [sigstore('KEY-A')]), { policy: allow });
      await copyImage(dst.ref('a'), src.add('two', image, [sigstore('KEY-B')]), { policy: allow });
      const stored = dst.images.get('a')?.signatures.get('') ?? [];
      expect(stored.map((s) => s.annotations?.['dev.cosignproject.cosign/signature'])).toEqual([
        'KEY-A',
        'KEY-B',
      ]);
    });

    it('writes nothing when the same signatures are there in another order', async () => {
      const { src, dst } = stores();
      const image = await randomImage({ seed: 24 });
      await copyImage(dst.ref('a'), src.add('ab', image, [sig('a'), sig('b')]), { policy: allow });
      dst.resetCounters();
      const again = await copyImage(dst.ref('a'), src.add('ba', image, [sig('b'), sig('a')]), {
        policy: allow,
      });
      expect(again.alreadyPresent).toBe(true);
      expect(dst.counters.putSignatures + dst.counters.commits).toBe(1);
      expect(dst.counters.putSignatures).toBe(0);
    });

    it('keeps the destination signatures with --remove-signatures on a present image', async () => {
      const { src, dst } = stores();
      const image = await randomImage({ seed: 25 });
      const signed = src.add('signed', image, [sig('kept')]);
      await copyImage(dst.ref('a'), signed, { policy: allow });
      dst.resetCounters();
      await copyImage(dst.ref('a'), signed, { policy: allow, removeSignatures: true });
      expect(dst.counters.putSignatures).toBe(0);
      expect(
        dst.images
          .get('a')
          ?.signatures.get('')
          ?.map((s) => Buffer.from(s.bytes).toString()),
      ).toEqual(['kept']);
    });

    it('refuses a forced conversion of a signed image even when the converted image is present', async () => {
      const { src, dst } = stores();
      const image = await randomImage({ seed: 26, format: 'docker' });
      await copyImage(dst.ref('a'), src.add('plain', image), {
        policy: allow,
        forceManifestMediaType: MediaTypes.ociManifest,
      });
      const signed = src.add('signed', image, [sig('s')]);
      await expect(
        copyImage(dst.ref('a'), signed, { policy: allow, forceManifestMediaType: MediaTypes.ociManifest }),
      ).rejects.toBeInstanceOf(ManifestConversionError);
      await expect(
        copyImage(dst.ref('a'), src.ref('plain'), {
          policy: allow,
          forceManifestMediaType: MediaTypes.ociManifest,
          preserveDigests: true,
        }),
      ).rejects.toBeInstanceOf(ManifestConversionError);
    });

    it('writes instance signatures into a destination that already holds the list', async () => {
      const { src, dst } = stores();
      const index = await randomIndex(['linux/amd64', 'linux/arm64/v8']);
      await copyImage(dst.ref('a'), src.add('a', index), { policy: allow, imageListSelection: 'all' });
      const instance = index.images[1]!.manifestDigest;
      src.images.get('a')!.signatures.set(instance, [sig('instance')]);
      src.resetCounters();
      await copyImage(dst.ref('a'), src.ref('a'), { policy: allow, imageListSelection: 'all' });
      expect(
        dst.images
          .get('a')
          ?.signatures.get(instance)
          ?.map((s) => Buffer.from(s.bytes).toString()),
      ).toEqual(['instance']);
      expect(src.counters.getBlob).toBe(0);
    });
  });

  describe('layers that must not change', () => {
    it('keeps uncompressed layers of a signed image as they are rather than compress them', async () => {
      const { src, dst } = stores();
      dst.capabilities.desiredLayerCompression = 'compress';
      const image = await randomImage({ seed: 27, compressed: false });
      const signed = src.add('a', image, [{ format: 'simple-signing', bytes: Buffer.from('s') }]);
      const result = await copyImage(dst.ref('a'), signed, { policy: allow });
      expect(result.manifestDigest).toBe(image.manifestDigest);
    });

    it('passes zstd layers through a destination that wants layers decompressed', async () => {
      const { src, dst } = stores();
      dst.capabilities.desiredLayerCompression = 'decompress';
      const image = await randomImage({ seed: 28, layers: 1 });
      const manifest = JSON.parse(image.manifest.toString());
      manifest.layers[0].mediaType = MediaTypes.ociLayerZstd;
      const bytes = Buffer.from(JSON.stringify(manifest));
      const { computeDigest } = await import('../digest.js');
      const zstdImage = { ...image, manifest: bytes, manifestDigest: computeDigest(bytes) };
      const result = await copyImage(dst.ref('a'), src.add('a', zstdImage), { policy: allow });
      expect(manifestDescriptors(result.manifest.bytes).layers[0]?.digest).toBe(image.layers[0]!.digest);
    });

    it('reports the same image size whether it copies or finds the image present', async () => {
      const { src, dst } = stores();
      const image = await randomImage({ seed: 29, layers: 2 });
      const manifest = JSON.parse(image.manifest.toString());
      manifest.layers.push(manifest.layers[0]);
      const bytes = Buffer.from(JSON.stringify(manifest));
      const { computeDigest } = await import('../digest.js');
      const repeated = { ...image, manifest: bytes, manifestDigest: computeDigest(bytes) };
      const first = await copyImage(dst.ref('a'), src.add('a', repeated), { policy: allow });
      const again = await copyImage(dst.ref('a'), src.ref('a'), { policy: allow });
      expect(again.alreadyPresent).toBe(true);
      expect(again.imageSize).toBe(first.imageSize);
    });
  });
});
