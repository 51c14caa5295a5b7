import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  type BlobInfo,
  type BlobStream,
  BlobUnknownError,
  type Digest,
  type ImageSource,
  ManifestUnknownError,
  type OperationOptions,
  type RawManifest,
  type Signature,
  type SystemContext,
} from '@img/core';
import { EngineClient } from './engine/client.js';
import { daemonOptions } from './options.js';
import type { DockerDaemonReference } from './reference.js';
import { readArchiveStream } from './tarball/contents.js';
import {
  type ArchiveImage,
  hasEverything,
  readManifestItems,
  resolveImage,
  selectItem,
} from './tarball/image.js';

/**
 * Reads one image of a Docker engine from `GET /images/{name}/get`. The tarball is read once, on
 * the first need: small files stay in memory, layers are spooled to a temp directory (under
 * `ctx.tmpDir`) with their digests computed on the way, and reading stops once manifest.json and
 * every file it names have been seen. The temp directory goes on close. Both the legacy layout of
 * Docker ≤ 24 and the OCI layout of Docker 25+ are read.
 */
export class DockerDaemonImageSource implements ImageSource {
  readonly hasThreadSafeGetBlob = true;
  private image: Promise<ArchiveImage> | undefined;

  private constructor(
    readonly reference: DockerDaemonReference,
    private readonly body: Readable,
    private readonly dir: string,
  ) {}

  /** Starts the export; ManifestUnknownError when the daemon has no such image. */
  static async open(
    reference: DockerDaemonReference,
    ctx: SystemContext,
    options: OperationOptions = {},
  ): Promise<DockerDaemonImageSource> {
    options.signal?.throwIfAborted();
    const client = await EngineClient.open(daemonOptions(ctx));
    const body = await client.exportImage(reference.engineName, options.signal);
    if (!body) throw new ManifestUnknownError(reference.toString());
    let dir: string;
    try {
      dir = await mkdtemp(join(ctx.tmpDir ?? tmpdir(), 'img-docker-daemon-'));
    } catch (error) {
      body.destroy();
      throw error;
    }
    return new DockerDaemonImageSource(reference, body, dir);
  }

  private load(options: OperationOptions): Promise<ArchiveImage> {
    this.image ??= (async () => {
      const label = this.reference.toString();
      const contents = await readArchiveStream(this.body, this.dir, hasEverything, options.signal);
      const items = await readManifestItems(contents, label);
      // The daemon saved exactly the image asked for.
      const item = selectItem(
        items,
        { ref: undefined, sourceIndex: items.length > 0 ? 0 : undefined },
        label,
      );
      return resolveImage(contents, item, label, options.signal);
    })();
    return this.image;
  }

  /** The manifest: as stored by Docker 25+, else rebuilt as Docker schema 2 from the config and layers. */
  async getManifest(instanceDigest?: Digest, options: OperationOptions = {}): Promise<RawManifest> {
    const image = await this.load(options);
    if (instanceDigest !== undefined && instanceDigest !== image.digest) {
      throw new ManifestUnknownError(`${this.reference} instance ${instanceDigest}`);
    }
    return image.manifest;
  }

  /** Streams a blob from the spooled tarball; BlobUnknownError when the image has no such blob. */
  async getBlob(info: BlobInfo, options: OperationOptions = {}): Promise<BlobStream> {
    const file = (await this.load(options)).blobs.get(info.digest);
    if (!file) throw new BlobUnknownError(info.digest, this.reference.toString());
    return { stream: file.open(options.signal), size: file.size };
  }

  /** The spooled file of a blob (layers are), so that file destinations can copy it by the kernel. */
  async getBlobPath(info: BlobInfo, options: OperationOptions = {}): Promise<string | undefined> {
    const file = (await this.load(options)).blobs.get(info.digest);
    if (!file) throw new BlobUnknownError(info.digest, this.reference.toString());
    return file.path;
  }

  /** The daemon stores no signatures: always empty. */
  async getSignatures(_instanceDigest?: Digest, _options?: OperationOptions): Promise<Signature[]> {
    return [];
  }

  /** Ends the export if it was not read to the end, and removes the spooled files. */
  async close(): Promise<void> {
    this.body.destroy();
    await this.image?.catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}
