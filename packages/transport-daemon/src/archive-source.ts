import { type FileHandle, open } from 'node:fs/promises';
import {
  type BlobInfo,
  type BlobStream,
  BlobUnknownError,
  type Digest,
  type ImageSource,
  ImgError,
  InvalidLayoutError,
  ManifestUnknownError,
  type OperationOptions,
  type RawManifest,
  type Signature,
} from '@img/core';
import type { DockerArchiveReference } from './reference.js';
import { scanArchiveFile } from './tarball/contents.js';
import { type ArchiveImage, readManifestItems, resolveImage, selectItem } from './tarball/image.js';

/**
 * Reads one image of a docker-archive file in place: headers are scanned, small files read by
 * offset, and blobs streamed straight from their byte ranges, so nothing is unpacked or copied.
 * Layers may be plain tar or gzip; archives with an OCI index.json (img's own, Docker 25+'s) give
 * back the manifest they store.
 */
export class DockerArchiveImageSource implements ImageSource {
  readonly hasThreadSafeGetBlob = true;

  private constructor(
    readonly reference: DockerArchiveReference,
    private readonly handle: FileHandle,
    private readonly image: ArchiveImage,
  ) {}

  /**
   * Opens the archive and resolves the image the reference picks. ManifestUnknownError when the
   * file or the image is not there, InvalidLayoutError when the file is not a docker archive.
   */
  static async open(
    reference: DockerArchiveReference,
    options: OperationOptions = {},
  ): Promise<DockerArchiveImageSource> {
    options.signal?.throwIfAborted();
    const file = reference.resolvedPath;
    let handle: FileHandle;
    try {
      handle = await open(file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new ManifestUnknownError(reference.toString(), { cause: error });
      }
      throw error;
    }
    try {
      if (!(await handle.stat()).isFile()) {
        throw new InvalidLayoutError(`invalid docker archive "${file}": it is not a regular file`);
      }
      const contents = await scanArchiveFile(file, handle).catch((error: unknown) => {
        throw new InvalidLayoutError(`invalid docker archive "${file}": ${(error as Error).message}`, {
          cause: error,
        });
      });
      const items = await readManifestItems(contents, file);
      const item = selectItem(
        items,
        { ref: reference.dockerReference, sourceIndex: reference.sourceIndex },
        reference.toString(),
      );
      const image = await resolveImage(contents, item, file, options.signal);
      return new DockerArchiveImageSource(reference, handle, image);
    } catch (error) {
      await handle.close();
      if (error instanceof ImgError || options.signal?.aborted) throw error;
      throw new InvalidLayoutError(`invalid docker archive "${file}": ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /** The image's manifest (stored, or rebuilt as Docker schema 2). */
  async getManifest(instanceDigest?: Digest, _options: OperationOptions = {}): Promise<RawManifest> {
    if (instanceDigest !== undefined && instanceDigest !== this.image.digest) {
      throw new ManifestUnknownError(`${this.reference} instance ${instanceDigest}`);
    }
    return this.image.manifest;
  }

  /** Streams a blob's byte range of the archive; BlobUnknownError when the image has no such blob. */
  async getBlob(info: BlobInfo, options: OperationOptions = {}): Promise<BlobStream> {
    const file = this.image.blobs.get(info.digest);
    if (!file) throw new BlobUnknownError(info.digest, this.reference.toString());
    return { stream: file.open(options.signal), size: file.size };
  }

  /** Archives store no signatures: always empty. */
  async getSignatures(_instanceDigest?: Digest, _options?: OperationOptions): Promise<Signature[]> {
    return [];
  }

  /** Closes the archive. */
  async close(): Promise<void> {
    await this.handle.close();
  }
}
