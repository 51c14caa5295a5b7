import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  type BlobInfo,
  BlobUnknownError,
  computeDigest,
  type Digest,
  DigestMismatchError,
  digestHex,
  guessMediaType,
  type ImageDestination,
  type ImageReference,
  ImgError,
  InvalidManifestError,
  isManifestListMediaType,
  type LayerCompression,
  type ManifestPresence,
  ManifestTypeRejectedError,
  MediaTypes,
  manifestDescriptors,
  manifestDigest,
  NotSupportedError,
  type OperationOptions,
  type PutBlobOptions,
  parseManifestList,
  type ReusedBlob,
  type Signature,
  type SystemContext,
  type TryReusingBlobOptions,
  type UploadInfo,
  writeBlobFile,
} from '@img/core';
import { assertWritable, resolveStore } from './config.js';
import { createLayer, createLayerLocked, layerIdFor } from './layers.js';
import type { HeldLock } from './lock.js';
import type { StorageReference } from './reference.js';
import { decodeSignatures, encodeSignature, imageMetadata, signatureSizes } from './signatures.js';
import { layerChain, lookupImage, readBigData } from './source.js';
import {
  type ImageRecord,
  type LayerRecord,
  manifestKey,
  Store,
  signatureKey,
  writeFileAtomically,
} from './store.js';

/** The instance digests a manifest list names. */
function manifestListDigests(bytes: Uint8Array, mediaType: string): Digest[] {
  return parseManifestList(bytes, mediaType).manifests.map((m) => m.digest);
}

import { reassembleLayer } from './tar-split.js';

/** What the destination knows of one layer blob: its diff ID and, once it is in the store, its layer. */
interface KnownLayer {
  diffDigest: Digest;
  /** The layer created (or found) for it, with the parent it was put under. */
  layer?: LayerRecord;
  /** A stored layer with the same content under another parent, to copy from at commit. */
  sameContent?: LayerRecord;
}

const configLimit = 32 * 1024 * 1024;

/**
 * Writes one image into a containers/storage store, as containers/image's storage destination
 * does but streaming each new layer straight into the store: layers are created (under
 * layers.lock) as they arrive when their parent is known, else spooled and created at commit;
 * the image record, its big data and names are written at commit under layers.lock and images.lock.
 */
export class StorageImageDestination implements ImageDestination {
  /**
   * The manifest types stored as they are; schema 1 is converted by the engine (image IDs differ for
   * it). Lists are kept as big data beside their one image (containers/image's top-level manifest).
   */
  readonly supportedManifestMediaTypes: readonly string[] = [
    MediaTypes.ociManifest,
    MediaTypes.dockerV2Schema2,
    MediaTypes.ociIndex,
    MediaTypes.dockerV2List,
  ];
  readonly desiredLayerCompression: LayerCompression = 'preserve';
  readonly supportsSignatures = true;
  readonly mustMatchRuntimeOS = true;
  /** Layers go in one at a time, in order, so each is extracted on top of its parent as it streams. */
  readonly hasThreadSafePutBlob = false;
  readonly supportsOutOfOrderPuts = true;

  private readonly layersByIndex = new Map<number, { digest: Digest; known: KnownLayer }>();
  private readonly layersByDigest = new Map<Digest, KnownLayer>();
  /** Blobs that could not be placed yet (no layer index, or the parent unknown), by digest. */
  private readonly spooled = new Map<Digest, string>();
  private readonly configs = new Map<Digest, Buffer>();
  private manifest: Buffer | undefined;
  /** The instance digest the manifest was put under, when it is an instance of a list. */
  private manifestInstance: Digest | undefined;
  /** The manifest list put with the image (stored as `manifest-<list digest>`). */
  private toplevel: Buffer | undefined;
  private signatures: Signature[] | undefined;
  private spoolDir: string | undefined;

  private constructor(
    readonly reference: ImageReference,
    private readonly ref: StorageReference,
    private readonly store: Store,
    private readonly tmpRoot: string,
  ) {}

  /** Resolves the store and refuses, with one line, a store img cannot write. */
  static async open(
    ref: StorageReference,
    ctx: SystemContext,
    options: OperationOptions = {},
  ): Promise<StorageImageDestination> {
    options.signal?.throwIfAborted();
    const resolved = await resolveStore(ref.store);
    assertWritable(resolved);
    const store = new Store(resolved);
    if (store.driver === 'overlay') {
      try {
        const mp = await readFile(join(store.graphRoot, 'overlay', '.has-mount-program'), 'utf8');
        if (mp.trim() === 'true') {
          throw new NotSupportedError(
            `cannot write to the containers-storage store at "${store.graphRoot}": it uses a mount program (fuse-overlayfs)`,
          );
        }
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    return new StorageImageDestination(ref, ref, store, ctx.tmpDir ?? tmpdir());
  }

  private async spoolPath(): Promise<string> {
    this.spoolDir ??= await mkdtemp(join(this.tmpRoot, 'img-storage-'));
    return join(this.spoolDir, randomBytes(8).toString('hex'));
  }

  /** The layer put at `index - 1` when known (undefined parent for index 0); null when not known. */
  private parentFor(index: number | undefined): LayerRecord | undefined | null {
    if (index === undefined) return null;
    if (index === 0) return undefined;
    return this.layersByIndex.get(index - 1)?.known.layer ?? null;
  }

  async putBlob(stream: Readable, info: UploadInfo, options: PutBlobOptions = {}): Promise<BlobInfo> {
    const ignore = () => {};
    stream.on('error', ignore);
    try {
      if (options.isConfig) {
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of stream) {
          size += (chunk as Buffer).length;
          if (size > configLimit) throw new ImgError(`config blob is larger than ${configLimit} bytes`);
          chunks.push(chunk as Buffer);
        }
        const bytes = Buffer.concat(chunks);
        const digest = computeDigest(bytes);
        if (info.digest && digest !== info.digest)
          throw new DigestMismatchError(info.digest, digest, 'config');
        this.configs.set(digest, bytes);
        return { digest, size: bytes.length, ...(info.mediaType ? { mediaType: info.mediaType } : {}) };
      }
      const parent = this.parentFor(options.layerIndex);
      if (parent !== null && info.digest) {
        const { layer, applied } = await createLayer(this.store, stream, {
          parent: parent?.id,
          expectedDigest: info.digest,
          expectedSize: info.size,
          signal: options.signal,
        });
        const known: KnownLayer = { diffDigest: layer['diff-digest'] as Digest, layer };
        this.layersByIndex.set(options.layerIndex!, { digest: info.digest, known });
        this.layersByDigest.set(info.digest, known);
        return {
          digest: info.digest,
          size: applied?.compressedSize ?? info.size,
          ...(info.mediaType ? { mediaType: info.mediaType } : {}),
        };
      }
      // Not placeable yet: keep the verified blob in a temp file until commit.
      const path = await this.spoolPath();
      const written = await writeBlobFile(
        stream,
        path,
        { ...(info.digest ? { digest: info.digest } : {}), size: info.size },
        options,
      );
      this.spooled.set(written.digest, path);
      return { ...written, ...(info.mediaType ? { mediaType: info.mediaType } : {}) };
    } catch (error) {
      stream.destroy();
      throw error;
    } finally {
      stream.off('error', ignore);
    }
  }

  /**
   * Reports a layer as present when the store has a complete layer made from this blob (its
   * compressed or its uncompressed digest) or when this destination already has it; nothing is read.
   */
  async tryReusingBlob(info: BlobInfo, options: TryReusingBlobOptions = {}): Promise<ReusedBlob | undefined> {
    options.signal?.throwIfAborted();
    const found = (): ReusedBlob => ({
      digest: info.digest,
      size: info.size,
      ...(info.mediaType ? { mediaType: info.mediaType } : {}),
      how: 'present',
    });
    if (this.spooled.has(info.digest) || this.configs.has(info.digest)) return found();
    const mine = this.layersByDigest.get(info.digest);
    const uncompressed = options.cache?.uncompressedDigest(info.digest);
    const layers = mine
      ? []
      : await this.store.withLayersLock(false, () => this.store.readLayers(), options.signal);
    const candidates = layers.filter(
      (l) =>
        !l.flags?.incomplete &&
        l['diff-digest'] !== undefined &&
        (l['compressed-diff-digest'] === info.digest ||
          l['diff-digest'] === info.digest ||
          (uncompressed !== undefined && l['diff-digest'] === uncompressed)),
    );
    if (!mine && candidates.length === 0) {
      // A config already stored as an image's big data.
      if (info.size < configLimit) {
        const images = await this.store.withImagesLock(false, () => this.store.readImages(), options.signal);
        const owner = images.find((i) => i.id === digestHex(info.digest));
        const bytes = owner ? await readBigData(this.store, owner.id, info.digest, configLimit) : undefined;
        if (bytes && computeDigest(bytes) === info.digest) {
          this.configs.set(info.digest, bytes);
          return found();
        }
      }
      return undefined;
    }
    const diffDigest = (mine?.diffDigest ?? candidates[0]!['diff-digest']) as Digest;
    const index = options.layerIndex;
    const parent = this.parentFor(index);
    const known: KnownLayer = { diffDigest, ...(mine?.layer ? { sameContent: mine.layer } : {}) };
    if (!mine) known.sameContent = candidates[0]!;
    if (parent !== null) {
      const id = layerIdFor(parent?.id, diffDigest);
      const exact =
        mine?.layer?.id === id ? mine.layer : layers.find((l) => l.id === id && !l.flags?.incomplete);
      if (exact) known.layer = exact;
    }
    if (index !== undefined) this.layersByIndex.set(index, { digest: info.digest, known });
    if (!this.layersByDigest.has(info.digest)) this.layersByDigest.set(info.digest, known);
    return found();
  }

  async putManifest(
    bytes: Uint8Array,
    instanceDigest?: Digest,
    options: OperationOptions = {},
  ): Promise<void> {
    options.signal?.throwIfAborted();
    const mediaType = guessMediaType(bytes);
    if (!this.supportedManifestMediaTypes.includes(mediaType)) {
      throw new ManifestTypeRejectedError(mediaType, this.ref.toString());
    }
    if (isManifestListMediaType(mediaType)) {
      if (instanceDigest !== undefined) throw new ManifestTypeRejectedError(mediaType, this.ref.toString());
      this.toplevel = Buffer.from(bytes);
      return;
    }
    // One image per reference: a second, different instance of a list cannot be stored with it.
    if (
      instanceDigest !== undefined &&
      this.manifestInstance !== undefined &&
      this.manifestInstance !== instanceDigest
    ) {
      throw new NotSupportedError(
        `${this.ref} stores one image; the list has several instances, copy one without --all`,
      );
    }
    this.manifest = Buffer.from(bytes);
    this.manifestInstance = instanceDigest;
  }

  async putSignatures(
    signatures: Signature[],
    instanceDigest?: Digest,
    options: OperationOptions = {},
  ): Promise<void> {
    options.signal?.throwIfAborted();
    if (instanceDigest !== undefined && instanceDigest !== this.manifestInstance) {
      throw new NotSupportedError(`${this.ref} stores one image; per-instance signatures are not supported`);
    }
    // Signatures of the list itself are kept with the image only when no instance has its own.
    if (instanceDigest === undefined && this.signatures !== undefined && this.toplevel !== undefined) return;
    this.signatures = signatures;
  }

  /**
   * The image is present when the name (or ID) of the reference points at an image holding this
   * manifest, its config, and every layer, complete. Only JSON records and file existence are read.
   */
  async alreadyContainsManifest(
    digest: Digest,
    _bytes: Uint8Array,
    options: OperationOptions = {},
  ): Promise<ManifestPresence> {
    const store = this.store;
    const image = await store.withLayersLock(
      false,
      () =>
        store.withImagesLock(
          false,
          async () => {
            const image = lookupImage(this.ref, await store.readImages());
            if (!image || !layerChain(image, await store.readLayers())) return undefined;
            return image;
          },
          options.signal,
        ),
      options.signal,
    );
    if (!image) return { present: false };
    const digests = image['big-data-digests'] ?? {};
    const key = manifestKey(digest);
    const hasManifest = digests[key] === digest || image.digest === digest;
    if (!hasManifest) return { present: false };
    const manifest =
      (await readBigData(store, image.id, key, 4 * 1024 * 1024)) ??
      (await readBigData(store, image.id, 'manifest', 4 * 1024 * 1024));
    if (!manifest || manifestDigest(manifest) !== digest) return { present: false };
    const type = guessMediaType(manifest);
    if (isManifestListMediaType(type)) {
      // A list is present with its image when that image holds every instance the list names.
      const instances = manifestListDigests(manifest, type);
      if (instances.length === 0 || instances.some((d) => digests[manifestKey(d)] !== d)) {
        return { present: false };
      }
    } else {
      try {
        await stat(store.bigDataPath(image.id, manifestDescriptors(manifest, type).config!.digest));
      } catch {
        return { present: false };
      }
    }
    const sigBytes = await readBigData(store, image.id, 'signatures', 64 * 1024 * 1024);
    return {
      present: true,
      signatures: sigBytes ? decodeSignatures(sigBytes, signatureSizes(image, undefined)) : [],
    };
  }

  /** The layer chain for the manifest: existing layers by ID, the others created now (spooled or copied). */
  private async placeLayers(
    lock: HeldLock,
    layerBlobs: BlobInfo[],
    diffIds: string[],
    signal: AbortSignal | undefined,
  ): Promise<string | undefined> {
    let parent: string | undefined;
    const layers = await this.store.readLayers();
    for (const [i, blob] of layerBlobs.entries()) {
      const byIndex = this.layersByIndex.get(i);
      const known = byIndex?.digest === blob.digest ? byIndex.known : this.layersByDigest.get(blob.digest);
      let diffDigest = known?.diffDigest;
      let layer: LayerRecord | undefined;
      const spooled = this.spooled.get(blob.digest);
      if (diffDigest !== undefined) {
        if (diffDigest !== diffIds[i]) {
          throw new DigestMismatchError(diffIds[i] ?? 'none', diffDigest, `diff ID of layer ${i}`);
        }
        const id = layerIdFor(parent, diffDigest);
        layer = layers.find((l) => l.id === id && !l.flags?.incomplete);
        if (!layer && known?.layer?.id === id) layer = known.layer;
        if (!layer) {
          const from = known?.sameContent ?? known?.layer;
          if (from) {
            const tar = Readable.from(
              reassembleLayer(
                this.store.tarSplitPath(from.id),
                Buffer.from(this.store.layerFilesDir(from.id)).toString('latin1'),
                signal,
              ),
            );
            ({ layer } = await createLayerLocked(this.store, lock, tar, {
              parent,
              expectedDigest: diffDigest,
              expectedSize: from['diff-size'],
              signal,
            }));
          }
        }
      }
      if (!layer && spooled) {
        ({ layer } = await createLayerLocked(this.store, lock, createReadStream(spooled), {
          parent,
          expectedDigest: blob.digest,
          expectedSize: blob.size,
          signal,
        }));
        diffDigest = layer['diff-digest'] as Digest;
        if (diffDigest !== diffIds[i]) {
          throw new DigestMismatchError(diffIds[i] ?? 'none', diffDigest, `diff ID of layer ${i}`);
        }
      }
      if (!layer) throw new BlobUnknownError(blob.digest, this.ref.toString());
      parent = layer.id;
    }
    return parent;
  }

  private async configBytes(digest: Digest): Promise<Buffer> {
    const cached = this.configs.get(digest);
    if (cached) return cached;
    const spooled = this.spooled.get(digest);
    if (spooled) return readFile(spooled);
    throw new BlobUnknownError(digest, this.ref.toString());
  }

  /**
   * Creates the layers still missing, then the image: big data first (config, manifests, signatures),
   * then the record in images.json, with this reference's name taken from any other image.
   */
  async commit(options: OperationOptions = {}): Promise<void> {
    const signal = options.signal;
    signal?.throwIfAborted();
    if (!this.manifest) {
      // The image was present: only signatures may need writing, or nothing at all.
      if (this.signatures !== undefined) await this.commitSignaturesOnly(signal);
      return;
    }
    const manifest = this.manifest;
    const mediaType = guessMediaType(manifest);
    const mDigest = manifestDigest(manifest);
    const descriptors = manifestDescriptors(manifest, mediaType);
    if (!descriptors.config) throw new InvalidManifestError('the manifest has no config');
    const configDigest = descriptors.config.digest;
    const config = await this.configBytes(configDigest);
    let parsedConfig: { created?: string; rootfs?: { diff_ids?: string[] } };
    try {
      parsedConfig = JSON.parse(config.toString('utf8'));
    } catch (error) {
      throw new InvalidManifestError(`the image config is not JSON: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const diffIds = parsedConfig.rootfs?.diff_ids ?? [];
    if (diffIds.length !== descriptors.layers.length) {
      throw new InvalidManifestError(
        `the config lists ${diffIds.length} layers, the manifest ${descriptors.layers.length}`,
      );
    }
    const imageId = digestHex(configDigest);
    const store = this.store;
    await store.withLayersLock(
      true,
      async (layersLock) => {
        const top = await this.placeLayers(layersLock, descriptors.layers, diffIds, signal);
        await store.withImagesLock(
          true,
          async (imagesLock) => {
            const images = await store.readImages();
            const existing = images.find((i) => i.id === imageId);
            const bigData: Array<[string, Buffer]> = [
              [configDigest, config],
              [manifestKey(mDigest), manifest],
              ['manifest', manifest],
            ];
            // containers/image keeps the list the instance came from under its own digest.
            if (this.toplevel) bigData.push([manifestKey(manifestDigest(this.toplevel)), this.toplevel]);
            const sigs = this.signatures ?? [];
            const encoded = sigs.map(encodeSignature);
            const sigBlob = Buffer.concat(encoded);
            bigData.push([signatureKey(mDigest), sigBlob]);
            if (encoded.length > 0) bigData.push(['signatures', sigBlob]);
            const meta = imageMetadata(existing);
            const perManifest = { ...((meta['signatures-sizes'] as Record<string, number[]>) ?? {}) };
            perManifest[mDigest] = encoded.map((b) => b.length);
            meta['signatures-sizes'] = perManifest;
            if (encoded.length > 0) meta['signature-sizes'] = encoded.map((b) => b.length);
            else delete meta['signature-sizes'];
            await writeBigData(store, imageId, bigData);
            if (encoded.length === 0 && existing)
              await rm(store.bigDataPath(imageId, 'signatures'), { force: true });

            const record: ImageRecord = existing ? { ...existing } : { id: imageId };
            record.digest = mDigest;
            if (top !== undefined) record.layer = top;
            else delete record.layer;
            record.metadata = JSON.stringify(meta);
            mergeBigDataFields(record, bigData, encoded.length === 0);
            record.created = createdTime(parsedConfig.created);
            const others = addName(images, record, this.ref.named?.toString());
            await store.writeImages([...others, record], imagesLock);
          },
          signal,
        );
      },
      signal,
    );
  }

  /** The image is present: only its signatures (and their sizes) are replaced. */
  private async commitSignaturesOnly(signal: AbortSignal | undefined): Promise<void> {
    const store = this.store;
    await store.withImagesLock(
      true,
      async (lock) => {
        const images = await store.readImages();
        const image = lookupImage(this.ref, images);
        if (!image) throw new ImgError(`cannot commit ${this.ref}: no manifest was written`);
        const encoded = (this.signatures ?? []).map(encodeSignature);
        const blob = Buffer.concat(encoded);
        const meta = imageMetadata(image);
        const bigData: Array<[string, Buffer]> = [['signatures', blob]];
        if (image.digest) {
          bigData.push([signatureKey(image.digest as Digest), blob]);
          const per = { ...((meta['signatures-sizes'] as Record<string, number[]>) ?? {}) };
          per[image.digest] = encoded.map((b) => b.length);
          meta['signatures-sizes'] = per;
        }
        meta['signature-sizes'] = encoded.map((b) => b.length);
        await writeBigData(store, image.id, bigData);
        const record = { ...image, metadata: JSON.stringify(meta) };
        mergeBigDataFields(record, bigData, false);
        await store.writeImages(
          images.map((i) => (i.id === image.id ? record : i)),
          lock,
        );
      },
      signal,
    );
  }

  async close(): Promise<void> {
    if (this.spoolDir) await rm(this.spoolDir, { recursive: true, force: true });
    this.spoolDir = undefined;
  }
}

async function writeBigData(store: Store, id: string, items: Array<[string, Buffer]>): Promise<void> {
  await mkdir(store.imageDir(id), { recursive: true, mode: 0o700 });
  for (const [key, data] of items) await writeFileAtomically(store.bigDataPath(id, key), data);
}

function mergeBigDataFields(
  record: ImageRecord,
  items: Array<[string, Buffer]>,
  dropSignatures: boolean,
): void {
  const names = [...(record['big-data-names'] ?? [])];
  const sizes = { ...(record['big-data-sizes'] ?? {}) };
  const digests = { ...(record['big-data-digests'] ?? {}) };
  for (const [key, data] of items) {
    if (!names.includes(key)) names.push(key);
    sizes[key] = data.length;
    digests[key] = computeDigest(data);
  }
  if (dropSignatures) {
    const i = names.indexOf('signatures');
    if (i !== -1) names.splice(i, 1);
    delete sizes.signatures;
    delete digests.signatures;
  }
  record['big-data-names'] = names;
  record['big-data-sizes'] = sizes;
  record['big-data-digests'] = digests;
}

function createdTime(configCreated: string | undefined): string {
  if (configCreated && !Number.isNaN(Date.parse(configCreated))) return configCreated;
  return new Date().toISOString();
}

/**
 * Adds `name` to `record` (names, and first in names-history) and removes it from every other image,
 * as containers/storage's AddNames does; returns the other images.
 */
function addName(
  images: readonly ImageRecord[],
  record: ImageRecord,
  name: string | undefined,
): ImageRecord[] {
  const others = images.filter((i) => i.id !== record.id);
  if (name === undefined) return others;
  const names = record.names ?? [];
  if (!names.includes(name)) record.names = [...names, name];
  record['names-history'] = [name, ...(record['names-history'] ?? []).filter((n) => n !== name)];
  return others.map((i) => {
    if (!i.names?.includes(name)) return i;
    const rest = i.names.filter((n) => n !== name);
    const copy = { ...i };
    if (rest.length > 0) copy.names = rest;
    else delete copy.names;
    return copy;
  });
}
