import { pipeline } from 'node:stream/promises';
import {
  BlobUnknownError,
  computeDigest,
  copyImage,
  DigestingStream,
  type ImageReference,
  insecureAcceptAnythingPolicy,
  isManifestListMediaType,
  ManifestUnknownError,
  manifestDescriptors,
  manifestDigest,
  NotSupportedError,
  PolicyContext,
} from '@img/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from './memory-transport.js';
import { readImage } from './validate.js';

/** A transport under test as a source: where an image is, and where none is. */
export interface SourceConformanceTarget {
  /** A reference to an existing image, which the suite only reads. May return the same one each call. */
  existingReference(): Promise<ImageReference> | ImageReference;
  /** A reference of the same transport at which no image exists. */
  missingReference(): Promise<ImageReference> | ImageReference;
  cleanup?(): Promise<void>;
}

const policy = new PolicyContext(insecureAcceptAnythingPolicy);

async function drain(stream: NodeJS.ReadableStream, digest: `${string}:${string}`, size: number) {
  const verify = new DigestingStream({ expectedDigest: digest, expectedSize: size });
  await pipeline(stream, verify, async (chunks: AsyncIterable<Buffer>) => {
    for await (const _ of chunks) {
      // Only the verification matters.
    }
  });
}

/**
 * The transport conformance suite for the reading side, for every transport and alone for read-only
 * ones (whose references cannot be written, so the main suite, `describeTransportConformance`,
 * cannot run): reference round-trips, verified reads, typed errors for what is absent, a copy out
 * that moves nothing the second time, and a read-only transport refusing to be written.
 *
 * @example
 * describeSourceConformance('tarball', async () => ({
 *   existingReference: () => tarball.parseReference(file),
 *   missingReference: () => tarball.parseReference(`${file}.missing`),
 * }));
 */
export function describeSourceConformance(
  name: string,
  factory: () => Promise<SourceConformanceTarget>,
): void {
  describe(`${name} transport source conformance`, () => {
    let target: SourceConformanceTarget;

    beforeAll(async () => {
      target = await factory();
    });
    afterAll(async () => {
      await target.cleanup?.();
    });

    it('round-trips its references through parseReference', async () => {
      const ref = await target.existingReference();
      expect(ref.toString()).toBe(`${ref.transport.name}:${ref.stringWithinTransport()}`);
      const again = ref.transport.parseReference(ref.stringWithinTransport());
      expect(again.toString()).toBe(ref.toString());
      expect(again.policyConfigurationIdentity()).toBe(ref.policyConfigurationIdentity());
      expect(again.policyConfigurationNamespaces()).toEqual(ref.policyConfigurationNamespaces());
    });

    it('reads the image with every digest and size verified', async () => {
      const back = await readImage(await target.existingReference());
      if (back.instances.length === 0) {
        expect(back.configDigest).toBeDefined();
        expect(back.layers.length).toBeGreaterThan(0);
      }
    });

    it('gives the same manifest each time the image is opened', async () => {
      const first = await readImage(await target.existingReference());
      const second = await readImage(await target.existingReference());
      expect(second.manifestDigest).toBe(first.manifestDigest);
    });

    it('fails with typed errors for an absent blob and an absent instance', async () => {
      const source = await (await target.existingReference()).newImageSource({});
      try {
        const raw = await source.getManifest();
        const unknown = computeDigest('a blob this image does not have');
        await expect(source.getBlob({ digest: unknown, size: -1 })).rejects.toBeInstanceOf(BlobUnknownError);
        if (!isManifestListMediaType(raw.mediaType)) {
          await expect(source.getManifest(unknown)).rejects.toBeInstanceOf(ManifestUnknownError);
        }
        expect(Array.isArray(await source.getSignatures())).toBe(true);
      } finally {
        await source.close();
      }
    });

    it('fails with ManifestUnknownError where there is no image', async () => {
      const ref = await target.missingReference();
      const read = async () => {
        const source = await ref.newImageSource({});
        try {
          await source.getManifest();
        } finally {
          await source.close();
        }
      };
      await expect(read()).rejects.toBeInstanceOf(ManifestUnknownError);
    });

    it('serves concurrent reads when it says getBlob is thread-safe', async () => {
      const source = await (await target.existingReference()).newImageSource({});
      try {
        const raw = await source.getManifest();
        if (isManifestListMediaType(raw.mediaType) || !source.hasThreadSafeGetBlob) return;
        const d = manifestDescriptors(raw.bytes, raw.mediaType);
        const blobs = [...(d.config ? [d.config] : []), ...d.layers];
        await Promise.all(
          [...blobs, ...blobs].map(async (blob) => {
            const { stream, size } = await source.getBlob(blob);
            if (size !== -1) expect(size).toBe(blob.size);
            await drain(stream, blob.digest, blob.size);
          }),
        );
      } finally {
        await source.close();
      }
    });

    it('copies out whole, and moves nothing when copied again', async () => {
      const store = new MemoryStore(`source-conformance-${name.replace(/[^a-z0-9-]/g, '-')}`);
      const src = await target.existingReference();
      const dest = store.ref('copy');
      const first = await copyImage(dest, src, { policy });
      const source = await src.newImageSource({});
      try {
        const raw = await source.getManifest();
        // The memory destination takes any format and compression, so nothing may be converted.
        expect(first.manifestDigest).toBe(manifestDigest(raw.bytes));
      } finally {
        await source.close();
      }
      expect((await readImage(dest)).manifestDigest).toBe(first.manifestDigest);
      const second = await copyImage(dest, src, { policy });
      expect(second.bytesMoved).toBe(0);
      expect(second.alreadyPresent).toBe(true);
    });

    it('declares its capabilities truthfully: a read-only transport refuses to be written', async () => {
      const ref = await target.existingReference();
      const declared = ref.transport.capabilities;
      if (declared?.destination === false) {
        await expect(ref.newImageDestination({})).rejects.toBeInstanceOf(NotSupportedError);
      }
      if (declared?.deleteImage === true) expect(typeof ref.deleteImage).toBe('function');
      if (declared?.getBlobPath === true) {
        const source = await ref.newImageSource({});
        try {
          expect(typeof source.getBlobPath).toBe('function');
        } finally {
          await source.close();
        }
      }
    });
  });
}
