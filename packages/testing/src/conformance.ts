import { Readable } from 'node:stream';
import {
  type BlobInfo,
  type CopyResult,
  computeDigest,
  copyImage,
  DigestMismatchError,
  type ImageReference,
  ImgError,
  insecureAcceptAnythingPolicy,
  manifestDescriptors,
  PolicyContext,
  type Signature,
} from '@img/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from './memory-transport.js';
import { randomImage, type TestImage } from './random.js';
import { readImage } from './validate.js';

/** What a transport under test stores, so the suite knows what to expect. */
export interface ConformanceCapabilities {
  /** The transport stores signatures (dir:, containers-storage:, registries). */
  signatures: boolean;
  /** The transport implements alreadyContainsManifest (required of built-ins). */
  alreadyContainsManifest: boolean;
  /** A destination opened anew sees the blobs already stored (false for archives rewritten whole). */
  blobReuse?: boolean;
  /** The image format the transport keeps without conversion; default: both. */
  formats?: Array<'oci' | 'docker'>;
  /**
   * The transport keeps an image's config and layer contents but not its manifest (the Docker
   * engine): the test images then have uncompressed layers, as such a store hands them back, and a
   * manifest read back is compared by its config and layers, not by its digest.
   */
  rebuildsManifest?: boolean;
}

/** A transport under test: where to write a fresh image, and how to clean up. */
export interface ConformanceTarget {
  /** A new, empty reference each call (e.g. a new directory). */
  newReference(): Promise<ImageReference> | ImageReference;
  cleanup?(): Promise<void>;
}

const policy = new PolicyContext(insecureAcceptAnythingPolicy);

function copy(
  dest: ImageReference,
  src: ImageReference,
  extra: { removeSignatures?: boolean } = {},
): Promise<CopyResult> {
  return copyImage(dest, src, { policy, ...extra });
}

/**
 * The shared transport conformance suite: any transport (built-in or plugin) runs it from a
 * three-line test with a factory.
 *
 * @example
 * describeTransportConformance('dir', async () => ({ newReference: async () => dirRef(await tmp()) }), {
 *   signatures: true, alreadyContainsManifest: true,
 * });
 */
export function describeTransportConformance(
  name: string,
  factory: () => Promise<ConformanceTarget>,
  capabilities: ConformanceCapabilities,
): void {
  describe(`${name} transport conformance`, () => {
    let target: ConformanceTarget;
    let store: MemoryStore;
    let image: TestImage;
    const format = capabilities.formats?.[0] ?? 'oci';
    const compressed = !capabilities.rebuildsManifest;

    beforeAll(async () => {
      target = await factory();
      store = new MemoryStore(`conformance-${name.replace(/[^a-z0-9-]/g, '-')}`);
      image = await randomImage({ seed: 7, layers: 3, layerSize: 4096, format, compressed });
    });
    afterAll(async () => {
      await target.cleanup?.();
    });

    it('round-trips an image with every blob byte-identical', async () => {
      const dest = await target.newReference();
      const result = await copy(dest, store.add('round-trip', image));
      const back = await readImage(dest);
      if (!capabilities.rebuildsManifest) expect(back.manifestDigest).toBe(result.manifestDigest);
      expect(back.layers.map((l) => l.digest)).toEqual(image.layers.map((l) => l.digest));
      expect(back.configDigest).toBe(image.configDigest);
      if (!capabilities.rebuildsManifest && result.manifest.mediaType === image.mediaType)
        expect(back.manifestDigest).toBe(image.manifestDigest);
    });

    it.runIf(capabilities.blobReuse ?? true)('reuses every blob it already holds', async () => {
      const dest = await target.newReference();
      await copy(dest, store.add('reuse', image));
      const destination = await dest.newImageDestination({});
      try {
        for (const layer of image.layers) {
          const reused = await destination.tryReusingBlob({ digest: layer.digest, size: layer.bytes.length });
          expect(reused?.digest).toBe(layer.digest);
        }
        const other = computeDigest('not stored');
        expect(await destination.tryReusingBlob({ digest: other, size: 10 })).toBeUndefined();
      } finally {
        await destination.close();
      }
    });

    it('moves no blob byte when the image is copied again', async () => {
      const dest = await target.newReference();
      const src = store.add('again', image);
      await copy(dest, src);
      store.resetCounters();
      const second = await copy(dest, src);
      expect(store.counters.getBlob).toBe(0);
      expect(second.bytesMoved).toBe(0);
      if (capabilities.alreadyContainsManifest) expect(second.alreadyPresent).toBe(true);
    });

    it('refuses a blob whose bytes do not match its digest and stores nothing for it', async () => {
      const dest = await target.newReference();
      const destination = await dest.newImageDestination({});
      const claimed = computeDigest('the claimed content');
      try {
        await expect(
          destination.putBlob(Readable.from([Buffer.from('other content')]), { digest: claimed, size: 13 }),
        ).rejects.toSatisfy((e: unknown) => e instanceof ImgError);
        expect(await destination.tryReusingBlob({ digest: claimed, size: 13 })).toBeUndefined();
      } finally {
        await destination.close();
      }
    });

    it('fails a copy from a corrupted source and leaves no image', async () => {
      const dest = await target.newReference();
      const corrupted = await randomImage({ seed: 8, layers: 2, layerSize: 2048, format, compressed });
      const bad = Buffer.from(corrupted.layers[1]!.bytes);
      bad[bad.length - 20]! ^= 0xff;
      corrupted.blobs.set(corrupted.layers[1]!.digest, bad);
      await expect(copy(dest, store.add('corrupted', corrupted))).rejects.toBeInstanceOf(DigestMismatchError);
      await expect(readImage(dest)).rejects.toBeInstanceOf(ImgError);
    });

    it('leaves no image when a copy is interrupted before commit', async () => {
      const dest = await target.newReference();
      const destination = await dest.newImageDestination({});
      const descriptors = manifestDescriptors(image.manifest, image.mediaType);
      for (const blob of [descriptors.config!, ...descriptors.layers] as BlobInfo[]) {
        await destination.putBlob(Readable.from([image.blobs.get(blob.digest)!]), blob);
      }
      try {
        await destination.putManifest(image.manifest);
      } catch {
        // A destination that wants another format refuses here; the point is the missing commit.
      }
      await destination.close();
      await expect(readImage(dest)).rejects.toBeInstanceOf(ImgError);
    });

    it.runIf(capabilities.alreadyContainsManifest)('answers alreadyContainsManifest truthfully', async () => {
      const dest = await target.newReference();
      const result = await copy(dest, store.add('presence', image));
      const destination = await dest.newImageDestination({});
      try {
        const ask = destination.alreadyContainsManifest!.bind(destination);
        expect((await ask(result.manifestDigest, result.manifest.bytes)).present).toBe(true);
        const other = await randomImage({ seed: 9, layers: 1, format, compressed });
        expect((await ask(other.manifestDigest, other.manifest)).present).toBe(false);
      } finally {
        await destination.close();
      }
      const empty = await (await target.newReference()).newImageDestination({});
      try {
        expect(
          (await empty.alreadyContainsManifest!(result.manifestDigest, result.manifest.bytes)).present,
        ).toBe(false);
      } finally {
        await empty.close();
      }
    });

    it('replaces an image with a different one under the same reference', async () => {
      const dest = await target.newReference();
      await copy(dest, store.add('first', image));
      const other = await randomImage({ seed: 10, layers: 2, layerSize: 1000, format, compressed });
      const result = await copy(dest, store.add('second', other));
      const back = await readImage(dest);
      if (!capabilities.rebuildsManifest) expect(back.manifestDigest).toBe(result.manifestDigest);
      expect(back.configDigest).toBe(other.configDigest);
      expect(back.layers.map((l) => l.digest)).toEqual(other.layers.map((l) => l.digest));
    });

    it.runIf(capabilities.signatures)(
      'carries signatures and adds missing ones without moving blobs',
      async () => {
        const dest = await target.newReference();
        const unsigned = store.add('unsigned', image);
        await copy(dest, unsigned);
        const signatures: Signature[] = [
          { format: 'simple-signing', bytes: Buffer.from('\x89sig-one', 'latin1') },
        ];
        const signed = store.add('signed', image, signatures);
        store.resetCounters();
        const result = await copy(dest, signed);
        expect(store.counters.getBlob).toBe(0);
        expect(result.bytesMoved).toBe(0);
        const source = await dest.newImageSource({});
        try {
          const back = await source.getSignatures();
          expect(back.map((s) => Buffer.from(s.bytes).toString('latin1'))).toEqual(['\x89sig-one']);
        } finally {
          await source.close();
        }
      },
    );
  });
}

export type { BlobInfoCacheFactory } from './cache-conformance.js';
export { describeBlobInfoCacheConformance } from './cache-conformance.js';
