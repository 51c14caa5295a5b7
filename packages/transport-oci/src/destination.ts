import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import {
  type BlobInfo,
  type BlobInfoCache,
  canonicalAlgorithm,
  computeDigest,
  copyBlobFile,
  type Digest,
  digestAlgorithm,
  guessMediaType,
  type ImageDestination,
  type ImageReference,
  type LayerCompression,
  type ManifestPresence,
  ManifestTypeRejectedError,
  MediaTypes,
  NotSupportedError,
  type OperationOptions,
  type PutBlobOptions,
  parseDigest,
  type ReusedBlob,
  removeStaleTempFiles,
  type Signature,
  type TryReusingBlobOptions,
  tempPathFor,
  type UploadInfo,
  verifyBytes,
  writeBlobFile,
} from '@img/core';
import { withIndexLock } from './index-lock.js';
import {
  blobPath,
  blobsDirOf,
  directoryBlobLookup,
  type IndexDescriptor,
  isImageComplete,
  isNotFound,
  type LayoutIndex,
  layoutDirectoryState,
  ociLayoutContent,
  readIndexIfExists,
  refNameAnnotation,
  refNameOf,
  selectDescriptor,
  writeFileAtomically,
} from './layout.js';

/** The top-level manifest put, to be referenced from index.json at commit. */
interface PutManifest {
  mediaType: string;
  digest: Digest;
  size: number;
}

/**
 * Returns `manifests` with `entry` in place of the entries it supersedes: those with the same ref
 * name, and unnamed entries for the same digest (containers/image's addManifest folds those in too).
 * The new entry takes the position of the first one replaced, else goes last; the others stay as they were.
 */
export function replaceIndexEntry(
  manifests: readonly IndexDescriptor[],
  entry: IndexDescriptor,
): IndexDescriptor[] {
  const name = refNameOf(entry);
  const out: IndexDescriptor[] = [];
  let placed = false;
  for (const existing of manifests) {
    const existingName = refNameOf(existing);
    const superseded =
      (name !== undefined && existingName === name) ||
      (existingName === undefined && existing.digest === entry.digest);
    if (!superseded) out.push(existing);
    else if (!placed) {
      out.push(entry);
      placed = true;
    }
  }
  if (!placed) out.push(entry);
  return out;
}

/**
 * Writes one image into an OCI layout directory. Internal: references hand it out as an
 * ImageDestination. Blobs go to `blobs/<alg>/<hex>` through verified temp files; index.json is
 * rewritten (temp file and rename) only at commit, so an interrupted copy leaves it as it was.
 */
export class OciImageDestination implements ImageDestination {
  /** OCI only: a Docker schema 2 manifest is refused so that the engine converts it. */
  readonly supportedManifestMediaTypes: readonly string[] = [MediaTypes.ociManifest, MediaTypes.ociIndex];
  /** Compressed layers, as containers/image asks, unless `acceptUncompressedLayers` was set. */
  readonly desiredLayerCompression: LayerCompression;
  readonly supportsSignatures = false;
  readonly mustMatchRuntimeOS = false;
  readonly hasThreadSafePutBlob = true;
  private topLevel: PutManifest | undefined;

  private constructor(
    readonly reference: ImageReference,
    private readonly root: string,
    private readonly blobs: string,
    private readonly image: string,
    acceptUncompressedLayers: boolean,
  ) {
    this.desiredLayerCompression = acceptUncompressedLayers ? 'preserve' : 'compress';
  }

  /**
   * Opens (creating when missing) the layout at `root` for writing the image named `image` (none when
   * empty), its blobs going to `settings.sharedBlobDir` when set. A file at `root` or an unreadable
   * index.json fails with InvalidLayoutError.
   */
  static async open(
    reference: ImageReference,
    root: string,
    image: string,
    options: OperationOptions = {},
    settings: { sharedBlobDir?: string | undefined; acceptUncompressedLayers?: boolean } = {},
  ): Promise<OciImageDestination> {
    options.signal?.throwIfAborted();
    if ((await layoutDirectoryState(root)) === 'directory') await readIndexIfExists(root, options);
    // image-spec "image-layout.md": the blobs directory MUST exist, and MAY be empty (it stays empty
    // when the blobs go to a shared directory).
    await mkdir(blobsDirOf(root), { recursive: true });
    const blobs = settings.sharedBlobDir ?? blobsDirOf(root);
    // A copy killed mid-blob left its temp files; they are nobody's now.
    await removeStaleTempFiles(join(blobs, 'sha256'));
    await removeStaleTempFiles(root);
    return new OciImageDestination(reference, root, blobs, image, settings.acceptUncompressedLayers ?? false);
  }

  /** Whether a top-level manifest has been put, i.e. whether commit has an image to record. */
  get hasManifest(): boolean {
    return this.topLevel !== undefined;
  }

  /**
   * Stores a blob, verified against `info` while streaming; with no digest given, it is computed and
   * the file renamed into place afterwards. On any failure the input is destroyed and no file is
   * left under a digest name.
   */
  async putBlob(stream: Readable, info: UploadInfo, options: PutBlobOptions = {}): Promise<BlobInfo> {
    // The stream may fail while a directory is being made, before writeBlobFile listens to it: the
    // error then must not go unhandled; writeBlobFile's pipeline still sees that the stream failed.
    const ignore = () => {};
    stream.on('error', ignore);
    try {
      let stored: BlobInfo;
      if (info.digest) {
        const path = await this.prepareBlobPath(info.digest);
        stored = await writeBlobFile(stream, path, { digest: info.digest, size: info.size }, options);
      } else {
        stored = await this.putBlobOfUnknownDigest(stream, info, options);
      }
      this.recordLocation(options.cache, stored.digest);
      return withMediaType(stored, info);
    } catch (error) {
      stream.destroy();
      throw error;
    } finally {
      stream.off('error', ignore);
    }
  }

  /**
   * The name is known only at the end: the file is staged under a temp name (never a digest) in
   * the directory of the algorithm it will be hashed with, so the final rename stays on one filesystem.
   */
  private async putBlobOfUnknownDigest(
    stream: Readable,
    info: UploadInfo,
    options: PutBlobOptions,
  ): Promise<BlobInfo> {
    const dir = join(this.blobs, canonicalAlgorithm);
    await mkdir(dir, { recursive: true });
    const staging = join(dir, tempPathFor('upload'));
    const written = await writeBlobFile(stream, staging, { size: info.size }, options);
    try {
      await rename(staging, await this.prepareBlobPath(written.digest));
    } catch (error) {
      await rm(staging, { force: true });
      throw error;
    }
    return written;
  }

  /** Stores a blob from a regular file by kernel copy (a clone where possible), verified as putBlob. */
  async putBlobFromFile(path: string, info: BlobInfo, options: PutBlobOptions = {}): Promise<BlobInfo> {
    const target = await this.prepareBlobPath(info.digest);
    const stored = await copyBlobFile(path, target, info, options);
    this.recordLocation(options.cache, stored.digest);
    return withMediaType(stored, info);
  }

  /**
   * Reports the blob as present when `blobs/<alg>/<hex>` is a file of the expected size (stat only,
   * nothing is read). With `canSubstitute`, another compression of the same content that the cache
   * remembers in these blobs (within `compressions`) is looked for the same way, most recent first.
   */
  async tryReusingBlob(info: BlobInfo, options: TryReusingBlobOptions = {}): Promise<ReusedBlob | undefined> {
    options.signal?.throwIfAborted();
    const lookup = directoryBlobLookup(this.blobs);
    const size = await lookup.size(parseDigest(info.digest));
    if (size !== undefined && (info.size === -1 || size === info.size)) {
      this.recordLocation(options.cache, info.digest);
      return withMediaType({ digest: info.digest, size }, info);
    }
    if (!options.canSubstitute || !options.cache) return undefined;
    const candidates = options.cache.reuseCandidates('oci', this.blobsScope, info.digest, {
      canSubstitute: true,
      compressions: options.compressions,
    });
    for (const candidate of candidates) {
      if (candidate.digest === info.digest) continue;
      options.signal?.throwIfAborted();
      const found = await lookup.size(parseDigest(candidate.digest));
      if (found === undefined) continue;
      this.recordLocation(options.cache, candidate.digest);
      // The media type follows the substitute's compression; the engine sets it.
      return {
        digest: candidate.digest,
        size: found,
        how: 'substituted',
        compression: candidate.compression,
      };
    }
    return undefined;
  }

  /** The cache's scope for this layout's blobs: the blob directory (shared or the layout's own). */
  private get blobsScope(): string {
    return resolve(this.blobs);
  }

  private recordLocation(cache: BlobInfoCache | undefined, digest: Digest): void {
    cache?.recordKnownLocation(
      { transport: 'oci', scope: this.blobsScope },
      digest,
      blobPath(this.blobsScope, digest),
    );
  }

  /**
   * Stores a manifest blob: the image's, or with `instanceDigest` one instance of the index put
   * last. Only OCI manifests and indexes are accepted (else ManifestTypeRejectedError, so the engine
   * converts); the bytes must match `instanceDigest` when given.
   */
  async putManifest(
    bytes: Uint8Array,
    instanceDigest?: Digest,
    options: OperationOptions = {},
  ): Promise<void> {
    const mediaType = guessMediaType(bytes);
    if (!this.supportedManifestMediaTypes.includes(mediaType)) {
      throw new ManifestTypeRejectedError(mediaType, this.reference.toString());
    }
    let digest: Digest;
    if (instanceDigest) {
      verifyBytes(bytes, instanceDigest, 'manifest');
      digest = instanceDigest;
    } else {
      digest = computeDigest(bytes);
    }
    const path = await this.prepareBlobPath(digest);
    await writeBlobFile(
      Readable.from([Buffer.from(bytes)]),
      path,
      { digest, size: bytes.byteLength },
      options,
    );
    if (!instanceDigest) this.topLevel = { mediaType, digest, size: bytes.byteLength };
  }

  /** Signatures cannot be stored in an OCI layout: an empty list is accepted, any other refused. */
  async putSignatures(
    signatures: Signature[],
    _instanceDigest?: Digest,
    _options?: OperationOptions,
  ): Promise<void> {
    if (signatures.length > 0) {
      throw new NotSupportedError(
        `${this.reference} cannot store signatures: OCI layouts have no place for them`,
      );
    }
  }

  /**
   * Records the image in index.json: under the layout's lock (`index.json.lock`, so that concurrent
   * writers, in this process or others, do not lose each other's entries), the file is read again
   * (another writer may have added images since open), the entry with this ref name is replaced and
   * the others kept, and the result renamed over index.json. Without a top-level manifest put,
   * nothing changes.
   */
  async commit(options: OperationOptions = {}): Promise<void> {
    options.signal?.throwIfAborted();
    const manifest = this.topLevel;
    if (!manifest) return;
    await withIndexLock(
      this.root,
      async () => {
        const layoutPath = join(this.root, 'oci-layout');
        if (!(await exists(layoutPath))) await writeFileAtomically(layoutPath, ociLayoutContent);
        const index: LayoutIndex = (await readIndexIfExists(this.root, options)) ?? {
          schemaVersion: 2,
          mediaType: MediaTypes.ociIndex,
          manifests: [],
        };
        const entry: IndexDescriptor = {
          mediaType: manifest.mediaType,
          digest: manifest.digest,
          size: manifest.size,
        };
        if (this.image !== '') entry.annotations = { [refNameAnnotation]: this.image };
        index.manifests = replaceIndexEntry(index.manifests, entry);
        await writeFileAtomically(join(this.root, 'index.json'), JSON.stringify(index));
      },
      options,
    );
  }

  /** Nothing to release; without a commit, index.json was never touched (uploaded blobs stay for reuse). */
  async close(): Promise<void> {}

  /**
   * Whether index.json already gives this digest to a reader of this reference (see
   * {@link indexHasImage}), and every blob the manifest needs is present with the right size: stat only,
   * no layer is read; the instance manifests of an index are read and followed.
   */
  async alreadyContainsManifest(
    digest: Digest,
    bytes: Uint8Array,
    options: OperationOptions = {},
  ): Promise<ManifestPresence> {
    const index = await readIndexIfExists(this.root, options);
    if (!index || !indexHasImage(index, this.image, digest, bytes.byteLength)) return { present: false };
    if (computeDigest(bytes, digestAlgorithm(parseDigest(digest))) !== digest) return { present: false };
    return { present: await isImageComplete(directoryBlobLookup(this.blobs), digest, bytes) };
  }

  private async prepareBlobPath(digest: string): Promise<string> {
    const path = blobPath(this.blobs, digest);
    await mkdir(join(path, '..'), { recursive: true });
    return path;
  }
}

/**
 * Whether a reader of `image` (the ref name, empty for none) would get `digest` of `size` bytes from
 * this index: the entry is chosen as a source chooses it, so an unnamed reference into a layout of
 * several images, or a name no entry carries, is not present. A name on several entries is not
 * present either: which one is meant is ambiguous, and a commit folds them into one.
 */
export function indexHasImage(index: LayoutIndex, image: string, digest: Digest, size: number): boolean {
  let descriptor: IndexDescriptor;
  try {
    ({ descriptor } = selectDescriptor(index, { image, sourceIndex: undefined }, image));
  } catch {
    return false;
  }
  if (image !== '' && index.manifests.filter((entry) => refNameOf(entry) === image).length > 1) return false;
  return descriptor.digest === digest && descriptor.size === size;
}

function withMediaType(result: BlobInfo, info: Pick<BlobInfo, 'mediaType'>): BlobInfo {
  return info.mediaType ? { ...result, mediaType: info.mediaType } : result;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}
