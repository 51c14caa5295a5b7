import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  type BlobInfo,
  type BlobStream,
  BlobUnknownError,
  type Digest,
  DigestingStream,
  guessMediaType,
  type ImageReference,
  type ImageSource,
  InvalidLayoutError,
  isManifestListMediaType,
  ManifestUnknownError,
  MediaTypes,
  manifestDescriptors,
  maxManifestSize,
  type OperationOptions,
  type RawManifest,
  type Signature,
  type SystemContext,
  TooLargeError,
} from '@img/core';
import { resolveStore } from './config.js';
import { acquireLock } from './lock.js';
import type { StorageReference } from './reference.js';
import { decodeSignatures, signatureSizes } from './signatures.js';
import {
  Compression,
  findImageById,
  findImageByName,
  type ImageRecord,
  type LayerRecord,
  manifestKey,
  Store,
  signatureKey,
} from './store.js';
import { reassembleLayer } from './tar-split.js';
import { zlib } from './zlib.js';

/** The store a reference names, resolved from storage.conf. */
export async function openStore(ref: StorageReference): Promise<Store> {
  return new Store(await resolveStore(ref.store));
}

/** The image a reference denotes in a list of image records, as containers/image resolves it. */
export function lookupImage(ref: StorageReference, images: readonly ImageRecord[]): ImageRecord | undefined {
  if (ref.id !== undefined) {
    const byId = ref.ambiguousId
      ? images.find(
          (i) => i.id.startsWith(ref.id!) && images.filter((j) => j.id.startsWith(ref.id!)).length === 1,
        )
      : findImageById(images, ref.id);
    if (byId || !ref.ambiguousId) return byId;
  }
  return ref.named ? findImageByName(images, ref.named) : undefined;
}

/** The layer chain of an image, base layer first; undefined when a layer is missing or incomplete. */
export function layerChain(image: ImageRecord, layers: readonly LayerRecord[]): LayerRecord[] | undefined {
  const byId = new Map(layers.map((l) => [l.id, l]));
  const chain: LayerRecord[] = [];
  for (let id = image.layer; id !== undefined && id !== ''; ) {
    const layer = byId.get(id);
    if (!layer || layer.flags?.incomplete || chain.length > 10_000) return undefined;
    chain.push(layer);
    id = layer.parent;
  }
  return chain.reverse();
}

/** Reads an image's big-data item, or undefined when it has none under that key. */
export async function readBigData(
  store: Store,
  id: string,
  key: string,
  limit: number,
): Promise<Buffer | undefined> {
  const path = store.bigDataPath(id, key);
  try {
    const s = await stat(path);
    if (s.size > limit) throw new TooLargeError(`big-data item "${key}" of image ${id}`, limit);
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Reads one image of a containers/storage store. Manifests, the config and signatures come from the
 * image's big data; each layer is rebuilt from its tar-split file and its extracted files, checked
 * against the diff digest while it streams, and gzip-compressed again when the manifest names the
 * compressed blob.
 */
export class StorageImageSource implements ImageSource {
  readonly hasThreadSafeGetBlob = true;

  private constructor(
    readonly reference: ImageReference,
    private readonly ref: StorageReference,
    private readonly store: Store,
    private readonly image: ImageRecord,
    private readonly layers: LayerRecord[],
  ) {}

  /** Finds the image and its layers (under images.lock and layers.lock, shared) or fails with ManifestUnknownError. */
  static async open(
    ref: StorageReference,
    _ctx: SystemContext,
    options: OperationOptions = {},
  ): Promise<StorageImageSource> {
    const store = await openStore(ref);
    const found = await store.withLayersLock(
      false,
      () =>
        store.withImagesLock(
          false,
          async () => {
            const image = lookupImage(ref, await store.readImages());
            if (!image) return undefined;
            const chain = layerChain(image, await store.readLayers());
            return chain ? { image, chain } : undefined;
          },
          options.signal,
        ),
      options.signal,
    );
    if (!found) throw new ManifestUnknownError(ref.toString());
    return new StorageImageSource(ref, ref, store, found.image, found.chain);
  }

  /** The image's ID (the config digest's hex for images containers/image wrote). */
  get imageId(): string {
    return this.image.id;
  }

  private async bigData(key: string): Promise<Buffer | undefined> {
    return readBigData(this.store, this.image.id, key, maxManifestSize);
  }

  async getManifest(instanceDigest?: Digest, options: OperationOptions = {}): Promise<RawManifest> {
    options.signal?.throwIfAborted();
    let bytes: Buffer | undefined;
    if (instanceDigest) bytes = await this.bigData(manifestKey(instanceDigest));
    else {
      const wanted = this.ref.named?.digest;
      if (wanted) bytes = await this.bigData(manifestKey(wanted));
      bytes ??= await this.bigData('manifest');
    }
    if (!bytes) {
      throw new ManifestUnknownError(instanceDigest ? `${this.ref}@${instanceDigest}` : this.ref.toString());
    }
    return { bytes, mediaType: guessMediaType(bytes) };
  }

  /**
   * The layers as this store can serve them byte for byte, in the manifest's order (containers/image's
   * LayerInfosForCopy). The store keeps each layer uncompressed (its files and tar-split), never the
   * compressed blob; gzip output depends on the compressor and its settings, so a compressed layer is
   * offered uncompressed: its diff digest, its uncompressed size and the manifest format's tar media
   * type. Layers the manifest already names uncompressed are kept as they are; when every layer is,
   * the answer is undefined (copy the manifest's layers). Fails when the image's layer chain does not
   * match the manifest.
   */
  async layerInfosForCopy(
    instanceDigest?: Digest,
    options: OperationOptions = {},
  ): Promise<BlobInfo[] | undefined> {
    options.signal?.throwIfAborted();
    const manifest = await this.getManifest(instanceDigest, options);
    // A list has no layers; schema 1 counts empty layers the store does not have (the engine converts it).
    if (
      isManifestListMediaType(manifest.mediaType) ||
      manifest.mediaType === MediaTypes.dockerV2Schema1 ||
      manifest.mediaType === MediaTypes.dockerV2Schema1Signed
    ) {
      return undefined;
    }
    const tarType =
      manifest.mediaType === MediaTypes.ociManifest ? MediaTypes.ociLayer : MediaTypes.dockerLayer;
    const descriptors = manifestDescriptors(manifest.bytes, manifest.mediaType).layers;
    if (descriptors.length !== this.layers.length) {
      throw new InvalidLayoutError(
        `image ${this.image.id} in ${this.store}: the manifest lists ${descriptors.length} layers, the store ${this.layers.length}`,
      );
    }
    let changed = false;
    const infos = descriptors.map((d, i): BlobInfo => {
      const layer = this.layers[i]!;
      const diffDigest = layer['diff-digest'] as Digest | undefined;
      const diffSize = layer['diff-size'];
      if (diffDigest === undefined || diffSize === undefined || diffSize < 0) {
        throw new InvalidLayoutError(`layer ${layer.id} in ${this.store} has no uncompressed digest or size`);
      }
      if (d.digest === diffDigest) return d;
      changed = true;
      return { digest: diffDigest, size: diffSize, mediaType: tarType };
    });
    return changed ? infos : undefined;
  }

  /** The layer records in the order of the manifest's layers. */
  private async manifestLayers(): Promise<BlobInfo[]> {
    const top = await this.getManifest();
    if (!isManifestListMediaType(top.mediaType)) return manifestDescriptors(top.bytes, top.mediaType).layers;
    return [];
  }

  private async findLayer(digest: Digest): Promise<LayerRecord | undefined> {
    // By position first: a layer reused from another compression keeps the manifest's digest.
    const descriptors = await this.manifestLayers();
    const index = descriptors.findIndex((d) => d.digest === digest);
    if (index !== -1 && descriptors.length === this.layers.length) return this.layers[index];
    return this.layers.find((l) => l['compressed-diff-digest'] === digest || l['diff-digest'] === digest);
  }

  async getBlob(info: BlobInfo, options: OperationOptions = {}): Promise<BlobStream> {
    options.signal?.throwIfAborted();
    // Non-layer blobs (the config) are big data under their digest.
    const bigPath = this.store.bigDataPath(this.image.id, info.digest);
    try {
      const s = await stat(bigPath);
      return { stream: createReadStream(bigPath), size: s.size };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const layer = await this.findLayer(info.digest);
    if (!layer?.['diff-digest']) throw new BlobUnknownError(info.digest, this.ref.toString());
    const uncompressed = info.digest === layer['diff-digest'];
    const stream = this.layerStream(layer, options.signal);
    if (uncompressed) return { stream, size: layer['diff-size'] ?? -1 };
    if (
      layer.compression !== undefined &&
      layer.compression !== Compression.gzip &&
      layer.compression !== 0
    ) {
      throw new BlobUnknownError(info.digest, `${this.ref} (only gzip layers can be compressed again)`);
    }
    // The stored layer is uncompressed; gzip with zlib's defaults rebuilds blobs that zlib made (the
    // copy engine verifies the digest either way).
    const gzip = zlib().createGzip();
    stream.on('error', (e) => gzip.destroy(e));
    const size = info.digest === layer['compressed-diff-digest'] ? (layer['compressed-size'] ?? -1) : -1;
    return { stream: stream.pipe(gzip), size };
  }

  /** The layer's tar, rebuilt and verified, under layers.lock (shared) until it ends. */
  private layerStream(layer: LayerRecord, signal: AbortSignal | undefined): Readable {
    const store = this.store;
    const expected = layer['diff-digest'] as Digest;
    async function* generate(): AsyncGenerator<Buffer> {
      const lock = await acquireLock(join(store.layersDir, 'layers.lock'), false, signal);
      try {
        yield* reassembleLayer(
          store.tarSplitPath(layer.id),
          Buffer.from(store.layerFilesDir(layer.id)).toString('latin1'),
          signal,
        );
      } finally {
        await lock.release();
      }
    }
    const verify = new DigestingStream({
      expectedDigest: expected,
      expectedSize: layer['diff-size'],
      what: 'layer',
    });
    const source = Readable.from(generate());
    source.on('error', (e) => verify.destroy(e));
    return source.pipe(verify);
  }

  async getSignatures(instanceDigest?: Digest, options: OperationOptions = {}): Promise<Signature[]> {
    options.signal?.throwIfAborted();
    const limit = 64 * 1024 * 1024;
    if (instanceDigest) {
      const bytes = await readBigData(this.store, this.image.id, signatureKey(instanceDigest), limit);
      return bytes ? decodeSignatures(bytes, signatureSizes(this.image, instanceDigest)) : [];
    }
    const bytes = await readBigData(this.store, this.image.id, 'signatures', limit);
    return bytes ? decodeSignatures(bytes, signatureSizes(this.image, undefined)) : [];
  }

  async close(): Promise<void> {}
}
