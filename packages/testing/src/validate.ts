import { pipeline } from 'node:stream/promises';
import {
  type BlobInfo,
  type Digest,
  DigestingStream,
  type ImageReference,
  isManifestListMediaType,
  manifestDescriptors,
  manifestDigest,
  type SystemContext,
} from '@img/core';

/** What {@link readImage} found: the manifest and every blob, each verified. */
export interface ReadBackImage {
  manifestDigest: Digest;
  mediaType: string;
  configDigest: Digest | undefined;
  layers: BlobInfo[];
  /** For lists: each instance read back the same way. */
  instances: ReadBackImage[];
}

/**
 * Reads a whole image back through its transport and verifies every digest and size on the way
 * (go-containerregistry's `validate.Image`): the manifest, the config and each layer, for lists each
 * instance. Throws the transport's typed error when anything is missing or wrong.
 */
export async function readImage(ref: ImageReference, ctx: SystemContext = {}): Promise<ReadBackImage> {
  const source = await ref.newImageSource(ctx);
  try {
    const read = async (instance?: Digest): Promise<ReadBackImage> => {
      const raw = await source.getManifest(instance);
      const digest = manifestDigest(raw.bytes);
      if (instance && digest !== instance) throw new Error(`instance ${instance} read back as ${digest}`);
      const d = manifestDescriptors(raw.bytes, raw.mediaType);
      if (isManifestListMediaType(raw.mediaType)) {
        const instances = [];
        for (const m of d.manifests) instances.push(await read(m.digest));
        return {
          manifestDigest: digest,
          mediaType: raw.mediaType,
          configDigest: undefined,
          layers: [],
          instances,
        };
      }
      for (const blob of [...(d.config ? [d.config] : []), ...d.layers]) {
        const { stream } = await source.getBlob(blob);
        const verify = new DigestingStream({ expectedDigest: blob.digest, expectedSize: blob.size });
        await pipeline(stream, verify, async (chunks: AsyncIterable<Buffer>) => {
          for await (const _ of chunks) {
            // Only the verification matters.
          }
        });
      }
      return {
        manifestDigest: digest,
        mediaType: raw.mediaType,
        configDigest: d.config?.digest,
        layers: d.layers,
        instances: [],
      };
    };
    return await read();
  } finally {
    await source.close();
  }
}
