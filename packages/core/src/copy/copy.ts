import { setMaxListeners } from 'node:events';
import { pipeline, Readable, type Transform } from 'node:stream';
import { type BlobInfoCache, type CompressionName, noCache } from '../blob-info-cache.js';
import { computeDigest, type Digest, DigestingStream, digestAlgorithm, markVerified } from '../digest.js';
import {
  AbortedError,
  DigestMismatchError,
  ImgError as ImgErrorBase,
  InvalidManifestError,
  ManifestConversionError,
  ManifestTypeRejectedError,
  NotSupportedError,
} from '../errors.js';
import { offloadedHash, offloadedHashThreshold } from '../hash-pool.js';
import { parseJsonObject } from '../manifest/descriptors.js';
import {
  chooseInstance,
  convertManifest,
  convertManifestList,
  type ImageManifest,
  layerCompression,
  layerMediaType,
  type ManifestList,
  manifestDigest,
  matchesDigest,
  parseImageManifest,
  parseManifestList,
  schema1ToConfig,
  updateLayerInfos,
} from '../manifest/index.js';
import { isManifestListMediaType, MediaTypes } from '../manifest/media-types.js';
import type {
  BlobInfo,
  ImageDestination,
  ImageReference,
  ImageSource,
  RawManifest,
  Signature,
  SystemContext,
  UploadInfo,
} from '../types.js';
import { sniffCompression, UncompressedDigester, zlib } from './compression.js';
import type { CopyEvent } from './events.js';
import { wrapDestination, wrapSource } from './wrap.js';

/** Decides whether an image may be used; @img/core's PolicyContext implements it. */
export interface PolicyChecker {
  /** Resolves when the policy allows the image; throws PolicyRejectedError (or NotSupportedError) otherwise. */
  isRunningImageAllowed(source: ImageSource, manifest: RawManifest): Promise<void>;
}

/** Which images of a list to copy: the one for the platform, every one, or only the list itself. */
export type ImageListSelection = 'system' | 'all' | 'index-only';

/** Options of {@link copyImage}. */
export interface CopyOptions {
  /** The signature policy; see PolicyContext. */
  policy: PolicyChecker;
  sourceCtx?: SystemContext;
  destinationCtx?: SystemContext;
  /** Default `system`: one instance of a list, chosen for the platform. */
  imageListSelection?: ImageListSelection;
  /** Write this manifest media type (the CLI's --format), converting as needed. */
  forceManifestMediaType?: string;
  /** Do not copy the source's signatures. */
  removeSignatures?: boolean;
  /** Fail rather than change the manifest (and so its digest). */
  preserveDigests?: boolean;
  /** Makers of extra signatures over the written manifest. */
  signers?: Array<(manifest: Uint8Array, manifestDigest: Digest) => Promise<Signature>>;
  /** How many blobs are copied at once; default 6. */
  concurrency?: number;
  cache?: BlobInfoCache;
  onEvent?: (event: CopyEvent) => void;
  signal?: AbortSignal;
}

/** What a copy did. */
export interface CopyResult {
  /** The digest of the top-level manifest written (or found present). */
  manifestDigest: Digest;
  manifest: RawManifest;
  /** Whether the destination already held the image, so no blob was moved. */
  alreadyPresent: boolean;
  /** Blob bytes read from the source and written to the destination. */
  bytesMoved: number;
  /** The sum of the sizes of every blob of the image(s) copied. */
  imageSize: number;
  blobsCopied: number;
  /** Blobs the destination had or got without their bytes moving (mounted ones included). */
  blobsReused: number;
  /** Of the reused blobs, those mounted from another repository of the same registry. */
  blobsMounted: number;
}

const defaultConcurrency = 6;
const bytesEventInterval = 100;

/**
 * Copies an image from `srcRef` to `destRef`, moving only what the destination lacks: a destination
 * that already holds the image is asked first and gets at most its missing signatures; otherwise each
 * blob is offered for reuse before any byte is read. Every byte read is verified against its digest.
 *
 * @example
 * const result = await copyImage(parseImageName('dir:/tmp/out'), parseImageName('oci:/tmp/layout:v1'), {
 *   policy: new PolicyContext(insecureAcceptAnythingPolicy),
 * });
 */
export async function copyImage(
  destRef: ImageReference,
  srcRef: ImageReference,
  options: CopyOptions,
): Promise<CopyResult> {
  const signal = options.signal;
  signal?.throwIfAborted();
  // The source is opened, read and judged by the policy before the destination is touched, so a
  // refused or missing image leaves no trace at the destination.
  const src = wrapSource(await srcRef.newImageSource(options.sourceCtx ?? {}, { signal }));
  try {
    const top = await src.getManifest(undefined, { signal });
    const expected = src.reference.dockerReference?.digest;
    if (expected) verifyManifest(top, expected);
    await options.policy.isRunningImageAllowed(src, top);
    const dest = wrapDestination(await destRef.newImageDestination(options.destinationCtx ?? {}, { signal }));
    try {
      return await new Copier(src, dest, options).run(top);
    } finally {
      await dest.close();
    }
  } finally {
    await src.close();
  }
}

interface SingleResult {
  digest: Digest;
  bytes: Uint8Array;
  mediaType: string;
  present: boolean;
}

class Copier {
  private readonly signal: AbortSignal | undefined;
  private readonly cache: BlobInfoCache;
  private readonly emit: (event: CopyEvent) => void;
  private readonly concurrency: number;
  private listenerError: Error | undefined;
  private bytesMoved = 0;
  private imageSize = 0;
  private blobsCopied = 0;
  private blobsReused = 0;
  private blobsMounted = 0;

  constructor(
    private readonly src: ImageSource,
    private readonly dest: ImageDestination,
    private readonly options: CopyOptions,
  ) {
    this.signal = options.signal;
    this.cache = options.cache ?? noCache;
    const listener = options.onEvent;
    // A throwing listener must not crash a stream callback; its error fails the copy before commit.
    this.emit = (event) => {
      if (!listener) return;
      try {
        listener(event);
      } catch (error) {
        this.listenerError ??= error as Error;
      }
    };
    const parallel = src.hasThreadSafeGetBlob && dest.hasThreadSafePutBlob;
    this.concurrency = parallel ? Math.max(1, options.concurrency || defaultConcurrency) : 1;
  }

  async run(top: RawManifest): Promise<CopyResult> {
    const signal = this.signal;
    let result: SingleResult;
    if (isManifestListMediaType(top.mediaType)) {
      const list = parseManifestList(top.bytes, top.mediaType);
      const selection = this.options.imageListSelection ?? 'system';
      if (selection === 'system') {
        const instance = chooseInstance(list, this.options.sourceCtx);
        const raw = await this.src.getManifest(instance.digest, { signal });
        verifyManifest(raw, instance.digest);
        result = await this.copySingle(raw, instance.digest, undefined);
      } else {
        result = await this.copyList(top, list, selection);
      }
    } else {
      result = await this.copySingle(top, undefined, undefined);
    }
    signal?.throwIfAborted();
    if (this.listenerError) throw this.listenerError;
    await this.dest.commit({ signal });
    this.emit({
      type: 'done',
      manifestDigest: result.digest,
      bytesMoved: this.bytesMoved,
      imageSize: this.imageSize,
      blobsCopied: this.blobsCopied,
      blobsReused: this.blobsReused,
      blobsMounted: this.blobsMounted,
    });
    return {
      manifestDigest: result.digest,
      manifest: { bytes: result.bytes, mediaType: result.mediaType },
      alreadyPresent: result.present,
      bytesMoved: this.bytesMoved,
      imageSize: this.imageSize,
      blobsCopied: this.blobsCopied,
      blobsReused: this.blobsReused,
      blobsMounted: this.blobsMounted,
    };
  }

  /** The signatures the destination should end up with for one manifest. */
  private async wantedSignatures(instance: Digest | undefined): Promise<Signature[]> {
    const signatures = this.options.removeSignatures
      ? []
      : await this.src.getSignatures(instance, { signal: this.signal });
    if (signatures.length > 0 && !this.dest.supportsSignatures) {
      throw new NotSupportedError(
        `${this.dest.reference} cannot store signatures; copy with --remove-signatures to drop them`,
      );
    }
    return signatures;
  }

  /**
   * Asks the destination whether it already holds `bytes`; when it does, writes only the signatures it
   * lacks (out of order, where the destination allows) and reports the image present. Returns
   * undefined when a normal copy must run.
   */
  private async tryPresent(
    bytes: Uint8Array,
    mediaType: string,
    signatures: Signature[],
    sizeOf: () => Promise<number>,
  ): Promise<SingleResult | undefined> {
    if (!this.dest.alreadyContainsManifest || (this.options.signers?.length ?? 0) > 0) return undefined;
    const digest = manifestDigest(bytes);
    const presence = await this.dest.alreadyContainsManifest(digest, bytes, { signal: this.signal });
    if (!presence.present) return undefined;
    // Only signatures the destination lacks are written, added to those it keeps; with none
    // missing (--remove-signatures included) nothing is written at all.
    let missing: Signature[] = [];
    if (this.dest.supportsSignatures && signatures.length > 0) {
      const stored = presence.signatures;
      // A destination that stores signatures but did not say which it has: do the full copy.
      if (stored === undefined) return undefined;
      missing = signatures.filter((s) => !stored.some((t) => sameSignature(s, t)));
      if (missing.length > 0) {
        if (!this.dest.supportsOutOfOrderPuts) return undefined;
        await this.dest.putSignatures([...stored, ...missing], undefined, { signal: this.signal });
        this.emit({ type: 'signatures-written', count: missing.length, manifestDigest: digest });
      }
    }
    this.imageSize += await sizeOf();
    this.emit({ type: 'image-present', manifestDigest: digest, missingSignatures: missing.length });
    return { digest, bytes, mediaType, present: true };
  }

  private async copyList(
    top: RawManifest,
    list: ManifestList,
    selection: ImageListSelection,
  ): Promise<SingleResult> {
    const signal = this.signal;
    const signatures = await this.wantedSignatures(undefined);
    const accepted = this.dest.supportedManifestMediaTypes;
    const listTypes = accepted.length === 0 ? [top.mediaType] : accepted.filter(isManifestListMediaType);
    if (listTypes.length === 0) {
      throw new NotSupportedError(
        `${this.dest.reference} cannot store a manifest list; copy one image without --all`,
      );
    }
    const forced = this.options.forceManifestMediaType;
    const forcedList = forced
      ? forced === MediaTypes.ociManifest
        ? MediaTypes.ociIndex
        : MediaTypes.dockerV2List
      : undefined;
    const target = forcedList ?? (listTypes.includes(top.mediaType) ? top.mediaType : listTypes[0]!);

    // Presence is answered for the list and its own signatures; an instance that carries signatures
    // of its own takes the full copy (blobs are still reused), so none of them is left out.
    if (target === top.mediaType && !(await this.instancesHaveSignatures(list, selection))) {
      const present = await this.tryPresent(top.bytes, top.mediaType, signatures, () => this.listSize(list));
      if (present) return present;
    }

    const updates = new Map<Digest, BlobInfo>();
    if (selection === 'all') {
      for (const instance of list.manifests) {
        const raw = await this.src.getManifest(instance.digest, { signal });
        verifyManifest(raw, instance.digest);
        const written = await this.copySingle(raw, instance.digest, instance.digest);
        if (written.digest !== instance.digest) {
          updates.set(instance.digest, {
            digest: written.digest,
            size: written.bytes.byteLength,
            mediaType: written.mediaType,
          });
        }
      }
    }
    let bytes = top.bytes;
    if (updates.size > 0 || target !== top.mediaType) {
      this.refuseEdit(signatures, 'the manifest list');
      bytes = rewriteList(list, target, updates);
    }
    const digest = manifestDigest(bytes);
    await this.dest.putManifest(bytes, undefined, { signal });
    this.emit({ type: 'manifest-written', digest, mediaType: target, instance: false });
    await this.putSignatures(bytes, digest, signatures, undefined);
    return { digest, bytes, mediaType: target, present: false };
  }

  private async instancesHaveSignatures(list: ManifestList, selection: ImageListSelection): Promise<boolean> {
    if (this.options.removeSignatures || selection !== 'all' || !this.dest.supportsSignatures) return false;
    for (const instance of list.manifests) {
      if ((await this.src.getSignatures(instance.digest, { signal: this.signal })).length > 0) return true;
    }
    return false;
  }

  private async listSize(list: ManifestList): Promise<number> {
    let total = 0;
    for (const instance of list.manifests) {
      const raw = await this.src.getManifest(instance.digest, { signal: this.signal });
      total += imageBlobsSize(parseImageManifest(raw.bytes, raw.mediaType));
    }
    return total;
  }

  /** Why the manifest may not be changed, if it may not. */
  private cannotModifyReason(signatures: Signature[]): string | undefined {
    if (signatures.length > 0) return 'it would invalidate the signatures (use --remove-signatures)';
    if (this.dest.reference.dockerReference?.digest) return 'the destination names a digest';
    if (this.options.preserveDigests) return 'digests must be preserved (--preserve-digests)';
    return undefined;
  }

  private refuseEdit(signatures: Signature[], what: string): void {
    const reason = this.cannotModifyReason(signatures);
    if (reason) throw new ManifestConversionError(`cannot change ${what}: ${reason}`);
  }

  /** The manifest media types to try writing, most preferred first (containers/image's order). */
  private manifestCandidates(sourceType: string, reason: string | undefined): string[] {
    const canModify = reason === undefined;
    const forced = this.options.forceManifestMediaType;
    const accepted = this.dest.supportedManifestMediaTypes.filter((t) => !isManifestListMediaType(t));
    const supported = (t: string) => accepted.length === 0 || accepted.includes(t);
    if (forced) {
      if (!supported(forced)) throw new ManifestTypeRejectedError(forced, String(this.dest.reference));
      if (!canModify && forced !== sourceType) {
        throw new ManifestConversionError(`cannot convert the manifest to ${forced}: ${reason}`);
      }
      return [forced];
    }
    if (!canModify) return [sourceType];
    const order = [sourceType, MediaTypes.dockerV2Schema2, MediaTypes.ociManifest, ...accepted];
    const candidates: string[] = [];
    for (const t of order) {
      if (
        supported(t) &&
        !candidates.includes(t) &&
        t !== MediaTypes.dockerV2Schema1 &&
        t !== MediaTypes.dockerV2Schema1Signed
      ) {
        candidates.push(t);
      }
    }
    // Schema 1 is only ever kept, never produced.
    if (supported(sourceType) && !candidates.includes(sourceType)) candidates.unshift(sourceType);
    return candidates;
  }

  private async copySingle(
    sourceRaw: RawManifest,
    sourceInstance: Digest | undefined,
    destInstance: Digest | undefined,
  ): Promise<SingleResult> {
    const signal = this.signal;
    const sourceDigest = manifestDigest(sourceRaw.bytes);
    const signatures = await this.wantedSignatures(sourceInstance);
    const reason = this.cannotModifyReason(signatures);
    // From here on, the manifest is the one whose layers are copied: the source's, or the source's
    // updated to the layer blobs it offers instead (layerInfosForCopy).
    const { raw, manifest } = await this.manifestForCopy(
      sourceRaw,
      parseImageManifest(sourceRaw.bytes, sourceRaw.mediaType),
      sourceInstance,
      reason,
    );
    const candidates = this.manifestCandidates(manifest.mediaType, reason);
    if (candidates.length === 0) {
      throw new ManifestTypeRejectedError(manifest.mediaType, String(this.dest.reference));
    }
    const isSchema1 = manifest.config === undefined;
    const compressionPlan = manifest.layers.map((layer) => this.layerPlan(layer, reason));
    const layersChange = compressionPlan.some((p) => p !== 'preserve');

    // Ask first: if what would be written is already there, move nothing. When the source offered
    // other blobs for its layers, its own manifest may well be at the destination already (a store
    // copied out before): that is asked first, as it names the same image.
    if (
      destInstance === undefined &&
      raw !== sourceRaw &&
      !reason &&
      candidates.includes(sourceRaw.mediaType)
    ) {
      const original = parseImageManifest(sourceRaw.bytes, sourceRaw.mediaType);
      const present = await this.tryPresent(sourceRaw.bytes, sourceRaw.mediaType, signatures, async () =>
        imageBlobsSize(original),
      );
      if (present) return present;
    }
    if (destInstance === undefined && !layersChange && !isSchema1) {
      const first = candidates[0]!;
      const predicted = first === manifest.mediaType ? raw.bytes : tryConvert(manifest, first);
      if (predicted) {
        const present = await this.tryPresent(predicted, first, signatures, async () =>
          imageBlobsSize(manifest),
        );
        if (present) return present;
      }
    }

    const size = imageBlobsSize(manifest);
    this.imageSize += size;
    this.emit({
      type: 'image-start',
      manifestDigest: sourceDigest,
      instance: destInstance !== undefined,
      layers: manifest.layers.length,
      size,
    });

    const needDiffIDs = isSchema1 && candidates[0] !== manifest.mediaType;
    const substitutes = this.substituteCompressions(manifest, candidates, reason);
    const layers = await this.copyLayers(manifest, compressionPlan, needDiffIDs, substitutes);

    let config: BlobInfo | undefined = manifest.config;
    if (manifest.config) {
      await this.copyBlob(manifest.config, 'config', 'preserve', false);
    } else if (needDiffIDs) {
      const diffIDs = layers.filter((l) => !l.emptyLayer).map((l) => l.diffID!);
      const bytes = schema1ToConfig(manifest, diffIDs);
      const digest = computeDigest(bytes);
      config = await this.dest.putBlob(
        Readable.from([Buffer.from(bytes)]),
        { digest, size: bytes.byteLength },
        {
          signal,
          cache: this.cache,
          isConfig: true,
        },
      );
      config.mediaType = MediaTypes.dockerConfig;
    }

    const errors: Error[] = [];
    for (const mediaType of candidates) {
      let bytes: Uint8Array;
      try {
        bytes = this.buildManifest(raw, manifest, mediaType, layers, config, reason, sourceRaw);
      } catch (error) {
        if (error instanceof ManifestConversionError && candidates.length > 1) {
          errors.push(error);
          continue;
        }
        throw error;
      }
      const digest = manifestDigest(bytes);
      try {
        await this.dest.putManifest(bytes, destInstance === undefined ? undefined : digest, { signal });
      } catch (error) {
        if (error instanceof ManifestTypeRejectedError) {
          errors.push(error);
          continue;
        }
        throw error;
      }
      this.emit({ type: 'manifest-written', digest, mediaType, instance: destInstance !== undefined });
      await this.putSignatures(bytes, digest, signatures, destInstance === undefined ? undefined : digest);
      return { digest, bytes, mediaType, present: false };
    }
    throw new ManifestConversionError(
      `${this.dest.reference} accepts none of the manifest types tried: ${errors.map((e) => e.message).join('; ')}`,
    );
  }

  /**
   * The source manifest, or, when the source offers other blobs for its layers (containers/image's
   * LayerInfosForCopy: a store that keeps layers uncompressed), the manifest updated to them, so that
   * every later step (presence, compression, reuse, the manifest written) works on what is copied.
   * Fails when the offered layers do not match the manifest's one for one, or the manifest may not
   * change (`reason`).
   */
  private async manifestForCopy(
    raw: RawManifest,
    manifest: ImageManifest,
    instance: Digest | undefined,
    reason: string | undefined,
  ): Promise<{ raw: RawManifest; manifest: ImageManifest }> {
    const infos = await this.src.layerInfosForCopy?.(instance, { signal: this.signal });
    if (infos === undefined) return { raw, manifest };
    const layers = manifest.layers;
    const source = String(this.src.reference);
    if (infos.length !== layers.length) {
      throw new InvalidManifestError(
        `${source} offers ${infos.length} layers to copy, its manifest lists ${layers.length}`,
      );
    }
    const differs = (info: BlobInfo, layer: BlobInfo) =>
      info.digest !== layer.digest ||
      (info.size >= 0 && info.size !== layer.size) ||
      (info.mediaType !== undefined && info.mediaType !== layer.mediaType);
    if (!infos.some((info, i) => differs(info, layers[i]!))) return { raw, manifest };
    if (reason) throw new ManifestConversionError(`cannot change the manifest: ${reason}`);
    infos.forEach((info, i) => {
      if (info.digest !== layers[i]!.digest && (info.size < 0 || !info.mediaType)) {
        throw new InvalidManifestError(
          `${source} offers layer ${i} (${info.digest}) to copy without its size and media type`,
        );
      }
    });
    const bytes = updateLayerInfos(manifest, infos);
    return { raw: { bytes, mediaType: raw.mediaType }, manifest: parseImageManifest(bytes, raw.mediaType) };
  }

  private buildManifest(
    raw: RawManifest,
    manifest: ImageManifest,
    mediaType: string,
    layers: CopiedLayer[],
    config: BlobInfo | undefined,
    reason: string | undefined,
    sourceRaw: RawManifest = raw,
  ): Uint8Array {
    const changed = layers.some((l, i) => l.info.digest !== manifest.layers[i]!.digest);
    if (mediaType === manifest.mediaType && !changed) return raw.bytes;
    // Layers offered uncompressed (layerInfosForCopy) and compressed again may come out as the very
    // blobs the source manifest names: then that manifest, byte for byte, is what was copied.
    if (raw !== sourceRaw && mediaType === sourceRaw.mediaType) {
      const original = parseImageManifest(sourceRaw.bytes, sourceRaw.mediaType).layers;
      const same = layers.every(
        (l, i) =>
          l.info.digest === original[i]?.digest &&
          l.info.size === original[i]?.size &&
          (l.info.mediaType ?? original[i]?.mediaType) === original[i]?.mediaType,
      );
      if (same && layers.length === original.length) return sourceRaw.bytes;
    }
    if (reason) throw new ManifestConversionError(`cannot change the manifest: ${reason}`);
    const infos = layers.map((l) => l.info);
    if (mediaType === manifest.mediaType) return updateLayerInfos(manifest, infos);
    const kept = manifest.config ? infos : infos.filter((_, i) => !layers[i]!.emptyLayer);
    return convertManifest(manifest, mediaType, config ? { layers: kept, config } : { layers: kept });
  }

  private async putSignatures(
    bytes: Uint8Array,
    digest: Digest,
    signatures: Signature[],
    instance: Digest | undefined,
  ): Promise<void> {
    const all = [...signatures];
    for (const sign of this.options.signers ?? []) all.push(await sign(bytes, digest));
    if (!this.dest.supportsSignatures) return;
    await this.dest.putSignatures(all, instance, { signal: this.signal });
    if (all.length > 0) this.emit({ type: 'signatures-written', count: all.length, manifestDigest: digest });
  }

  /** What to do to a layer's compression; nothing when the manifest may not change (`reason`). */
  private layerPlan(
    layer: BlobInfo,
    reason: string | undefined,
  ): 'preserve' | 'compress' | 'decompress' | 'detect' {
    const want = this.dest.desiredLayerCompression;
    if (want === 'preserve' || reason !== undefined || layer.urls?.length) return 'preserve';
    const compression = layer.mediaType ? layerCompression(layer.mediaType) : 'unknown';
    if (compression === 'unknown') return 'detect';
    if (want === 'compress') return compression === 'none' ? 'compress' : 'preserve';
    // Only gzip is decompressed here; zstd layers go as they are.
    return compression === 'gzip' ? 'decompress' : 'preserve';
  }

  /**
   * The compressions a layer substitute may have (another compression of the same content that the
   * destination already holds), or undefined when no substitute may be used: the manifest may not
   * change, the destination wants layers as they are, or nothing else fits. zstd only when every
   * manifest this image may be written as is OCI (Docker formats cannot carry it).
   */
  private substituteCompressions(
    manifest: ImageManifest,
    candidates: readonly string[],
    reason: string | undefined,
  ): CompressionName[] | undefined {
    if (reason !== undefined || manifest.config === undefined) return undefined;
    switch (this.dest.desiredLayerCompression) {
      case 'decompress':
        return ['none'];
      case 'compress': {
        const oci = (t: string) => t.startsWith('application/vnd.oci.');
        return oci(manifest.mediaType) && candidates.every(oci) ? ['gzip', 'zstd'] : ['gzip'];
      }
      default:
        return undefined;
    }
  }

  private async copyLayers(
    manifest: ImageManifest,
    plans: Array<'preserve' | 'compress' | 'decompress' | 'detect'>,
    needDiffIDs: boolean,
    substitutes: CompressionName[] | undefined,
  ): Promise<CopiedLayer[]> {
    // Identical layers are copied once; every copy after the first waits for it.
    const byDigest = new Map<string, Promise<CopiedLayer>>();
    const controller = new AbortController();
    // Every blob in flight listens to it (its reads, its requests): many listeners are expected.
    setMaxListeners(0, controller.signal);
    const outer = this.signal;
    const abort = () => controller.abort(outer?.reason);
    if (outer?.aborted) abort();
    else outer?.addEventListener('abort', abort, { once: true });
    const limit = limiter(this.concurrency);
    try {
      const tasks = manifest.layers.map((layer, index) => {
        const key = `${layer.digest}/${plans[index]}`;
        let task = byDigest.get(key);
        if (!task) {
          task = limit(async () => {
            // A queued copy does not start once the copy has failed or been aborted.
            controller.signal.throwIfAborted();
            const layerSubstitutes = layer.urls?.length ? undefined : substitutes;
            return this.copyLayer(
              layer,
              index,
              plans[index]!,
              needDiffIDs,
              layerSubstitutes,
              controller.signal,
            );
          });
          task.catch(() => controller.abort());
          byDigest.set(key, task);
        }
        return task.then((copied) => ({
          ...copied,
          emptyLayer: Boolean((layer as { emptyLayer?: boolean }).emptyLayer),
        }));
      });
      const settled = await Promise.allSettled(tasks);
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) {
        // Report the first real failure, not the aborts it caused in the other copies.
        const real = settled.find(
          (s): s is PromiseRejectedResult => s.status === 'rejected' && !isAbort(s.reason),
        );
        throw (real ?? failed).reason;
      }
      return settled.map((s) => (s as PromiseFulfilledResult<CopiedLayer>).value);
    } finally {
      outer?.removeEventListener('abort', abort);
    }
  }

  private async copyLayer(
    layer: BlobInfo,
    index: number,
    plan: 'preserve' | 'compress' | 'decompress' | 'detect',
    needDiffID: boolean,
    substitutes: CompressionName[] | undefined,
    signal: AbortSignal,
  ): Promise<CopiedLayer> {
    const { info, diffID } = await this.copyBlob(
      layer,
      'layer',
      plan,
      needDiffID,
      index,
      signal,
      substitutes,
    );
    return diffID ? { info, diffID, emptyLayer: false } : { info, emptyLayer: false };
  }

  /** Reuses or copies one blob; returns the descriptor to put in the manifest. */
  private async copyBlob(
    blob: BlobInfo,
    kind: 'layer' | 'config',
    plan: 'preserve' | 'compress' | 'decompress' | 'detect',
    needDiffID: boolean,
    layerIndex?: number,
    signal: AbortSignal | undefined = this.signal,
    substitutes?: CompressionName[],
  ): Promise<{ info: BlobInfo; diffID?: Digest }> {
    const src = this.src;
    const dest = this.dest;
    const cache = this.cache;
    // A DiffID the cache knows (from verified bytes) needs neither the bytes nor a decompression.
    const knownDiffID = needDiffID ? cache.uncompressedDigest(blob.digest) : undefined;

    if (!needDiffID || knownDiffID) {
      const canSubstitute = substitutes !== undefined;
      const reused = await dest.tryReusingBlob(blob, {
        signal,
        cache,
        canSubstitute,
        ...(canSubstitute ? { compressions: substitutes } : {}),
        srcRef: src.reference,
        ...(layerIndex === undefined ? {} : { layerIndex }),
      });
      if (reused) {
        const { how, compression, ...found } = reused;
        const substituted = found.digest !== blob.digest;
        const outcome = how ?? (substituted ? 'substituted' : 'present');
        this.blobsReused++;
        if (outcome === 'mounted') this.blobsMounted++;
        this.emit({
          type: 'blob-reused',
          digest: blob.digest,
          size: blob.size,
          kind,
          how: outcome,
          ...(substituted ? { substitute: found.digest } : {}),
        });
        let mediaType = found.mediaType ?? blob.mediaType;
        if (substituted && kind === 'layer') {
          // The substitute's media type follows its compression, not the source layer's.
          const known = compression ?? cache.digestCompression(found.digest);
          if (known !== 'unknown') mediaType = this.layerTypeFor(blob, known) ?? mediaType;
        }
        const info = withMediaType({ ...blob, ...found }, mediaType);
        return knownDiffID ? { info, diffID: knownDiffID } : { info };
      }
    }

    this.emit({ type: 'blob-start', digest: blob.digest, size: blob.size, kind });
    let lastProgress = 0;
    const onProgress = (bytes: number) => {
      const now = Date.now();
      if (now - lastProgress < bytesEventInterval) return;
      lastProgress = now;
      this.emit({ type: 'blob-bytes', digest: blob.digest, bytes, size: blob.size });
    };
    const putOptions = {
      signal,
      cache,
      isConfig: kind === 'config',
      ...(layerIndex === undefined ? {} : { layerIndex }),
    };

    // Fast path: a file-backed source into a file-backed destination, copied by the kernel.
    if (plan === 'preserve' && !needDiffID && src.getBlobPath && dest.putBlobFromFile && blob.size >= 0) {
      const path = await src.getBlobPath(blob, { signal });
      if (path) {
        const stored = await dest.putBlobFromFile(path, blob, { ...putOptions, onProgress });
        this.finishBlob(blob, kind, blob.size, stored.digest);
        return { info: { ...blob, digest: stored.digest, size: stored.size } };
      }
    }

    const { stream: fetched } = await src.getBlob(blob, { signal, cache });
    let raw: Readable = fetched;
    let action = plan;
    let sourceCompression: CompressionName | undefined;
    if (plan === 'detect' || (needDiffID && !knownDiffID)) {
      // Peeking the first bytes of the source leaves them in the stream: verification below still sees all.
      let head: Buffer;
      try {
        head = await peekHead(fetched);
      } catch (error) {
        fetched.destroy();
        throw error;
      }
      sourceCompression = sniffCompression(head);
      if (plan === 'detect') {
        const want = dest.desiredLayerCompression;
        action =
          want === 'compress' && sourceCompression === 'none'
            ? 'compress'
            : want === 'decompress' && sourceCompression === 'gzip'
              ? 'decompress'
              : 'preserve';
      }
    }
    // A large blob is hashed on a worker thread: the thread reading it (sockets, files, writes) then
    // spends one memory copy per byte on the digest instead of the hash itself.
    const hash =
      blob.size >= offloadedHashThreshold
        ? await offloadedHash(digestAlgorithm(blob.digest)).catch((error: unknown) => {
            fetched.destroy();
            throw error;
          })
        : undefined;
    let moved = 0;
    let last = 0;
    // The first bytes, for the compression the cache records (magic numbers are at most 4 bytes).
    let head = Buffer.alloc(0);
    const verified = new DigestingStream({
      expectedDigest: blob.digest,
      expectedSize: blob.size,
      what: kind,
      hash,
      onChunk: (chunk) => {
        moved += chunk.length;
        if (head.length < 4) head = Buffer.concat([head, chunk.subarray(0, 4 - head.length)]);
        const now = Date.now();
        if (now - last >= bytesEventInterval) {
          last = now;
          this.emit({ type: 'blob-bytes', digest: blob.digest, bytes: moved, size: blob.size });
        }
      },
    });
    const stages: Transform[] = [verified];
    const diffDigester =
      needDiffID && !knownDiffID ? new UncompressedDigester(sourceCompression === 'gzip') : undefined;
    if (diffDigester) stages.push(diffDigester);
    if (action === 'compress') stages.push(zlib().createGzip());
    else if (action === 'decompress') stages.push(zlib().createGunzip());
    // One pipeline owns every stage: an error or an early end anywhere destroys them all (the source
    // included), and the last stage carries the error to the destination's reader.
    let failure: Error | undefined;
    const stream = pipelineStreams([raw, ...stages], (error) => {
      failure = error;
    });
    // The destination may attach only after its own set-up; an early error then waits in the stream's
    // state (its reader sees it) rather than crashing the process.
    stream.on('error', () => {});
    raw = stream;
    const unknownDigest = action === 'compress' || action === 'decompress';
    // The bytes as they come are verified above: a destination need not hash them again.
    if (!unknownDigest) markVerified(stream, { digest: blob.digest, size: blob.size });
    // Decompression is deterministic: an uncompressed digest the cache knows is the one the
    // destination will compute, and it verifies it. Compression output is not: no digest is given.
    const expectedUncompressed = action === 'decompress' ? cache.uncompressedDigest(blob.digest) : undefined;
    const upload: UploadInfo = unknownDigest
      ? expectedUncompressed && expectedUncompressed !== blob.digest
        ? { digest: expectedUncompressed, size: -1 }
        : { size: -1 }
      : blob;
    let stored: BlobInfo;
    try {
      stored = await dest.putBlob(raw, upload, putOptions);
    } catch (error) {
      raw.destroy();
      throw failure && !(error instanceof ImgErrorBase) ? failure : error;
    } finally {
      if (!raw.destroyed && !raw.readableEnded) raw.destroy();
    }
    // A destination that returned without reading to the end (or ignored an error) stored unverified bytes.
    if (failure) throw failure;
    if (!verified.writableFinished || verified.digest !== blob.digest) {
      throw new DigestMismatchError(
        blob.digest,
        verified.writableFinished ? verified.digest : 'an incomplete read',
        kind,
      );
    }
    this.finishBlob(blob, kind, moved, stored.digest);
    if (kind === 'layer') {
      // Only what these verified bytes showed is recorded, never what a manifest claims.
      const compression = sourceCompression ?? sniffCompression(head);
      cache.recordDigestCompression(blob.digest, compression);
      if (compression === 'none') cache.recordDigestUncompressedPair(blob.digest, blob.digest);
      if (action === 'compress') {
        cache.recordDigestUncompressedPair(stored.digest, blob.digest);
        cache.recordDigestCompression(stored.digest, 'gzip');
      } else if (action === 'decompress') {
        cache.recordDigestUncompressedPair(blob.digest, stored.digest);
        cache.recordDigestCompression(stored.digest, 'none');
      }
    }
    const mediaType =
      action === 'compress' || action === 'decompress'
        ? layerMediaType(this.manifestKindFor(blob), action === 'compress' ? 'gzip' : 'none')
        : blob.mediaType;
    // A schema 1 layer states no media type: none is set, and conversion gives it the gzip type.
    const result: { info: BlobInfo; diffID?: Digest } = {
      info: withMediaType({ ...blob, digest: stored.digest, size: stored.size }, mediaType),
    };
    if (diffDigester?.uncompressedDigest) {
      result.diffID = diffDigester.uncompressedDigest;
      cache.recordDigestUncompressedPair(blob.digest, result.diffID);
    } else if (knownDiffID) {
      result.diffID = knownDiffID;
    }
    return result;
  }

  /** The layer media type for a blob of this compression in the source layer's format; undefined when it has none. */
  private layerTypeFor(blob: BlobInfo, compression: Exclude<CompressionName, 'unknown'>): string | undefined {
    try {
      return layerMediaType(
        compression === 'zstd' ? MediaTypes.ociManifest : this.manifestKindFor(blob),
        compression,
      );
    } catch {
      return undefined;
    }
  }

  private manifestKindFor(blob: BlobInfo): string {
    return blob.mediaType?.startsWith('application/vnd.oci.')
      ? MediaTypes.ociManifest
      : MediaTypes.dockerV2Schema2;
  }

  private finishBlob(blob: BlobInfo, kind: 'layer' | 'config', bytes: number, stored: Digest): void {
    this.bytesMoved += bytes;
    this.blobsCopied++;
    this.emit({ type: 'blob-done', digest: blob.digest, bytes, kind, stored });
  }
}

interface CopiedLayer {
  info: BlobInfo;
  diffID?: Digest;
  emptyLayer: boolean;
}

/** The descriptor with this media type, or with none when it is undefined or empty. */
function withMediaType(info: BlobInfo, mediaType: string | undefined): BlobInfo {
  const { mediaType: _, ...rest } = info;
  return mediaType ? { ...rest, mediaType } : rest;
}

/** Throws DigestMismatchError unless the manifest has the digest it was asked for by. */
function verifyManifest(raw: RawManifest, digest: Digest): void {
  if (!matchesDigest(raw.bytes, digest)) {
    throw new DigestMismatchError(digest, manifestDigest(raw.bytes), 'manifest');
  }
}

/** The list in the target type, with the instances whose manifests changed pointed at their new digests. */
function rewriteList(list: ManifestList, target: string, updates: Map<Digest, BlobInfo>): Uint8Array {
  const base = target === list.mediaType ? list.raw : convertManifestList(list, target);
  if (updates.size === 0) return base;
  const json = parseJsonObject(base) as {
    manifests: Array<{ digest: Digest; size: number; mediaType?: string }>;
  };
  for (const entry of json.manifests) {
    const update = updates.get(entry.digest);
    if (!update) continue;
    entry.digest = update.digest;
    entry.size = update.size;
    if (update.mediaType) entry.mediaType = update.mediaType;
  }
  return Buffer.from(JSON.stringify(json, null, 3));
}

function tryConvert(manifest: ImageManifest, mediaType: string): Uint8Array | undefined {
  try {
    return convertManifest(manifest, mediaType);
  } catch {
    return undefined;
  }
}

function imageBlobsSize(manifest: ImageManifest): number {
  let total = manifest.config && manifest.config.size > 0 ? manifest.config.size : 0;
  for (const layer of manifest.layers) if (layer.size > 0) total += layer.size;
  return total;
}

/** Whether two signatures are the same: format, bytes and, for sigstore, the MIME type and annotations (where the signature itself is). */
function sameSignature(a: Signature, b: Signature): boolean {
  return (
    a.format === b.format &&
    a.mimeType === b.mimeType &&
    Buffer.from(a.bytes).equals(Buffer.from(b.bytes)) &&
    JSON.stringify(sortedEntries(a.annotations)) === JSON.stringify(sortedEntries(b.annotations))
  );
}

function sortedEntries(record: Record<string, string> | undefined): Array<[string, string]> {
  return Object.entries(record ?? {}).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
}

function isAbort(error: unknown): boolean {
  return error instanceof AbortedError || (error instanceof Error && error.name === 'AbortError');
}

/** `stream.pipeline` in its callback form over a list: returns the last stage to read from. */
function pipelineStreams(
  streams: [Readable, ...Transform[]],
  done: (error: Error | undefined) => void,
): Readable {
  return (pipeline as unknown as (...args: unknown[]) => Readable)(
    ...streams,
    (error: Error | null | undefined) => done(error ?? undefined),
  );
}

/**
 * Reads the first chunk of a stream and puts it back, so the stream still yields every byte; empty
 * for an empty stream.
 */
function peekHead(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const finish = (result: Buffer | Error) => {
      stream.off('readable', onReadable);
      stream.off('error', onError);
      stream.off('end', onEnd);
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const onReadable = () => {
      const chunk = stream.read() as Buffer | null;
      if (chunk === null) return;
      stream.unshift(chunk);
      finish(chunk);
    };
    const onError = (error: Error) => finish(error);
    const onEnd = () => finish(Buffer.alloc(0));
    stream.on('readable', onReadable);
    stream.on('error', onError);
    stream.on('end', onEnd);
  });
}

/** Runs at most `n` tasks at once. */
function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: Array<() => void> = [];
  const next = () => {
    active--;
    queue.shift()?.();
  };
  return (task) =>
    new Promise((resolve, reject) => {
      const start = () => {
        active++;
        task().then(resolve, reject).finally(next);
      };
      if (active < n) start();
      else queue.push(start);
    });
}
