import { open } from 'node:fs/promises';
import {
  type BlobInfo,
  type BlobStream,
  BlobUnknownError,
  type Digest,
  guessMediaType,
  type ImageReference,
  type ImageSource,
  isManifestListMediaType,
  ManifestUnknownError,
  manifestDescriptors,
  maxManifestSize,
  type OperationOptions,
  type RawManifest,
  type Signature,
  verifyBytes,
} from '@img/core';
import {
  blobPath,
  blobsDirOf,
  type ImageSelector,
  type IndexDescriptor,
  isNotFound,
  readLayout,
  readSmallFile,
  selectDescriptor,
} from './layout.js';

/**
 * Reads one image of an OCI layout directory. Internal: references hand it out as an ImageSource.
 * Blobs are plain files, so reads may run concurrently and the engine may clone them by path.
 */
export class OciImageSource implements ImageSource {
  readonly hasThreadSafeGetBlob = true;
  /** Media types of the instances of the top-level index, once it has been read. */
  private readonly instanceTypes = new Map<string, string>();

  private constructor(
    readonly reference: ImageReference,
    private readonly blobs: string,
    private readonly descriptor: IndexDescriptor,
  ) {}

  /**
   * Opens the image `selector` picks in the layout at `root`; `reference` is what errors and the
   * engine see. `where.label` is the path layout errors name (for an archive, the archive, not the
   * temp directory), `where.blobs` a shared blob directory to read blobs from instead of `blobs/`.
   */
  static async open(
    reference: ImageReference,
    root: string,
    selector: ImageSelector,
    options: OperationOptions = {},
    where: { label?: string; blobs?: string | undefined } = {},
  ): Promise<OciImageSource> {
    options.signal?.throwIfAborted();
    const index = await readLayout(root, reference.toString(), options, where.label ?? root);
    const { descriptor } = selectDescriptor(index, selector, reference.toString());
    return new OciImageSource(reference, where.blobs ?? blobsDirOf(root), descriptor);
  }

  /**
   * Returns the image's manifest, or with `instanceDigest` that blob of the layout. The bytes are
   * checked against the digest (they are small); over 4 MiB fails with TooLargeError, a missing blob
   * with ManifestUnknownError.
   */
  async getManifest(instanceDigest?: Digest, options: OperationOptions = {}): Promise<RawManifest> {
    const digest = (instanceDigest ?? this.descriptor.digest) as Digest;
    let bytes: Buffer;
    try {
      bytes = await readSmallFile(
        blobPath(this.blobs, digest),
        maxManifestSize,
        `manifest ${digest}`,
        options,
      );
    } catch (error) {
      if (!isNotFound(error)) throw error;
      const what = instanceDigest
        ? `${this.reference} instance ${instanceDigest}`
        : this.reference.toString();
      throw new ManifestUnknownError(what, { cause: error });
    }
    verifyBytes(bytes, digest, 'manifest');
    const declared = instanceDigest ? this.instanceTypes.get(instanceDigest) : this.descriptor.mediaType;
    const mediaType = declared || guessMediaType(bytes);
    if (!instanceDigest && isManifestListMediaType(mediaType)) {
      for (const instance of manifestDescriptors(bytes, mediaType).manifests) {
        if (instance.mediaType) this.instanceTypes.set(instance.digest, instance.mediaType);
      }
    }
    return { bytes, mediaType };
  }

  /**
   * Streams `blobs/<alg>/<hex>`. Fails with BlobUnknownError when it is absent; URLs of foreign
   * layers are never fetched.
   */
  async getBlob(info: BlobInfo, options: OperationOptions = {}): Promise<BlobStream> {
    options.signal?.throwIfAborted();
    const path = blobPath(this.blobs, info.digest);
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (isNotFound(error)) throw this.blobUnknown(info, error);
      throw error;
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) throw this.blobUnknown(info);
      const stream = handle.createReadStream({
        highWaterMark: 1 << 20,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      return { stream, size: stats.size };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** The path of the blob's file, for destinations that clone files; BlobUnknownError when absent. */
  async getBlobPath(info: BlobInfo, _options: OperationOptions = {}): Promise<string | undefined> {
    const path = blobPath(this.blobs, info.digest);
    const handle = await open(path, 'r').catch((error: unknown) => {
      throw isNotFound(error) ? this.blobUnknown(info, error) : error;
    });
    try {
      if (!(await handle.stat()).isFile()) throw this.blobUnknown(info);
    } finally {
      await handle.close();
    }
    return path;
  }

  /** OCI layouts store no signatures: always empty. */
  async getSignatures(_instanceDigest?: Digest, _options?: OperationOptions): Promise<Signature[]> {
    return [];
  }

  /** Nothing to release: every read opens and closes its own file. */
  async close(): Promise<void> {}

  private blobUnknown(info: BlobInfo, cause?: unknown): BlobUnknownError {
    const where = info.urls?.length
      ? `${this.reference} (a foreign layer: its URLs are not fetched)`
      : this.reference.toString();
    return new BlobUnknownError(info.digest, where, cause === undefined ? undefined : { cause });
  }
}
