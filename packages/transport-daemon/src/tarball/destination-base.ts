// What the docker-daemon: and docker-archive: destinations share: blobs become entries of one
// docker-archive tarball as they arrive, verified on the way. Internal to the package.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline as pipelineCallback, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  type BlobInfo,
  type Digest,
  DigestingStream,
  guessMediaType,
  type ImageDestination,
  type ImageReference,
  type LayerCompression,
  ManifestTypeRejectedError,
  MediaTypes,
  manifestDescriptors,
  manifestDigest,
  NotSupportedError,
  type OperationOptions,
  type PutBlobOptions,
  type ReusedBlob,
  type Signature,
  type SystemContext,
  type TryReusingBlobOptions,
  type UploadInfo,
  verifiedDigestOf,
} from '@img/core';
import { blobEntryName } from './image.js';
import type { TarballWriter } from './writer.js';

/** The manifest put, as commit needs it. */
export interface PutManifest {
  bytes: Uint8Array;
  digest: Digest;
  config: BlobInfo;
  layers: BlobInfo[];
}

/**
 * The common part of both destinations. Docker schema 2 manifests only (docker load reads configs
 * and layers, not manifests; skopeo's tarball destinations accept the same), layers kept as they come
 * (docker load takes plain and gzip tars), blobs one at a time (a tarball is sequential).
 */
export abstract class TarballDestination implements ImageDestination {
  readonly supportedManifestMediaTypes: readonly string[] = [MediaTypes.dockerV2Schema2];
  readonly desiredLayerCompression: LayerCompression = 'preserve';
  readonly supportsSignatures = false;
  abstract readonly mustMatchRuntimeOS: boolean;
  readonly hasThreadSafePutBlob = false;
  protected writer: TarballWriter | undefined;
  protected manifest: PutManifest | undefined;

  protected constructor(
    readonly reference: ImageReference,
    protected readonly ctx: SystemContext,
  ) {}

  /** Starts the tarball (the load request, the temp file) on the first blob. */
  protected abstract startWriter(): TarballWriter;

  /** The tarball, started on first use. */
  protected ensureWriter(): TarballWriter {
    if (!this.writer) this.writer = this.startWriter();
    return this.writer;
  }

  /** A blob already stored outside this tarball (the daemon's image, the archive being replaced). */
  protected abstract reusableElsewhere(info: BlobInfo): Promise<boolean>;

  /**
   * Adds a blob to the tarball, verified against `info` while it streams. Without a digest or size
   * (the engine recompressed it), it is first spooled to a temp file to learn them. A failure fails
   * the whole tarball: nothing of it is loaded or kept.
   */
  async putBlob(stream: Readable, info: UploadInfo, options: PutBlobOptions = {}): Promise<BlobInfo> {
    const ignore = () => {};
    stream.on('error', ignore);
    try {
      if (info.digest === undefined || info.size === -1) return await this.putSpooled(stream, info, options);
      const name = blobEntryName(info.digest);
      const writer = this.ensureWriter();
      if (writer.has(name)) {
        stream.destroy();
        return withMediaType({ digest: info.digest, size: info.size }, info);
      }
      // A stream the engine already verifies against this digest and size is not hashed twice.
      const piped =
        verifiedDigestOf(stream, info) === undefined
          ? (pipelineCallback(
              stream,
              new DigestingStream({ expectedDigest: info.digest, expectedSize: info.size }),
              () => {},
            ) as unknown as AsyncIterable<Buffer>)
          : (stream as AsyncIterable<Buffer>);
      await writer.add(name, info.size, piped, options.signal);
      return withMediaType({ digest: info.digest, size: info.size }, info);
    } catch (error) {
      stream.destroy();
      throw error;
    } finally {
      stream.off('error', ignore);
    }
  }

  private async putSpooled(stream: Readable, info: UploadInfo, options: PutBlobOptions): Promise<BlobInfo> {
    const dir = await mkdtemp(join(this.ctx.tmpDir ?? tmpdir(), 'img-docker-blob-'));
    try {
      const path = join(dir, 'blob');
      const verified = new DigestingStream({ expectedDigest: info.digest, expectedSize: info.size });
      await pipeline(
        stream,
        verified,
        createWriteStream(path),
        options.signal ? { signal: options.signal } : {},
      );
      const digest = verified.digest;
      const size = verified.bytes;
      const writer = this.ensureWriter();
      const name = blobEntryName(digest);
      if (!writer.has(name)) await writer.add(name, size, createReadStream(path), options.signal);
      return withMediaType({ digest, size }, info);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Reports a blob written in this tarball, or one the destination already holds elsewhere. */
  async tryReusingBlob(info: BlobInfo, options: TryReusingBlobOptions = {}): Promise<ReusedBlob | undefined> {
    options.signal?.throwIfAborted();
    const size = this.writer?.sizeOf(blobEntryName(info.digest));
    if (size !== undefined && (info.size === -1 || info.size === size)) {
      return { ...withMediaType({ digest: info.digest, size }, info), how: 'present' };
    }
    if (await this.reusableElsewhere(info)) {
      return { ...withMediaType({ digest: info.digest, size: info.size }, info), how: 'present' };
    }
    return undefined;
  }

  /** Records the Docker schema 2 manifest (others: ManifestTypeRejectedError, so the engine converts). */
  async putManifest(bytes: Uint8Array, instanceDigest?: Digest, _options?: OperationOptions): Promise<void> {
    const mediaType = guessMediaType(bytes);
    if (instanceDigest !== undefined || mediaType !== MediaTypes.dockerV2Schema2) {
      throw new ManifestTypeRejectedError(mediaType, this.reference.toString());
    }
    const descriptors = manifestDescriptors(bytes, mediaType);
    this.manifest = {
      bytes,
      digest: manifestDigest(bytes),
      config: descriptors.config!,
      layers: descriptors.layers,
    };
  }

  /** Signatures have no place in a tarball: an empty list is accepted, any other refused. */
  async putSignatures(
    signatures: Signature[],
    _instanceDigest?: Digest,
    _options?: OperationOptions,
  ): Promise<void> {
    if (signatures.length > 0) {
      throw new NotSupportedError(`${this.reference} cannot store signatures`);
    }
  }

  abstract commit(options?: OperationOptions): Promise<void>;
  abstract close(): Promise<void>;

  /** The blobs of the manifest put that are neither in the tarball nor elsewhere at the destination. */
  protected async missingBlobs(manifest: PutManifest): Promise<Digest[]> {
    const missing: Digest[] = [];
    for (const blob of [manifest.config, ...manifest.layers]) {
      if (this.writer?.has(blobEntryName(blob.digest))) continue;
      if (!(await this.reusableElsewhere(blob))) missing.push(blob.digest);
    }
    return missing;
  }
}

function withMediaType(result: BlobInfo, info: Pick<BlobInfo, 'mediaType'>): BlobInfo {
  return info.mediaType ? { ...result, mediaType: info.mediaType } : result;
}
