import {
  type BlobInfo,
  type Digest,
  guessMediaType,
  ImgError,
  type ManifestPresence,
  MediaTypes,
  manifestDescriptors,
  type NamedReference,
  type OperationOptions,
  type SystemContext,
} from '@img/core';
import { EngineClient } from './engine/client.js';
import { daemonOptions } from './options.js';
import type { DockerDaemonReference } from './reference.js';
import { TarballDestination } from './tarball/destination-base.js';
import { blobEntryName } from './tarball/image.js';
import { TarballWriter } from './tarball/writer.js';

/** The load was cut short on purpose (close without commit, or the image needed only a tag). */
class LoadCancelled extends Error {
  constructor() {
    super('the load was cancelled');
  }
}

/**
 * Writes one image into a Docker engine. Nothing is sent at open: the engine asks
 * {@link alreadyContainsManifest} first, which is one `GET /images/{name}/json`; an image whose ID
 * (the config digest) the daemon has under another name is only tagged (`POST /images/{id}/tag`);
 * otherwise `POST /images/load` starts with the first blob and the tarball is streamed into it,
 * blob by blob, manifest.json last, and commit waits for the daemon's answer.
 */
export class DockerDaemonImageDestination extends TarballDestination {
  /** As containers/image: the daemon runs images of its own OS only. */
  readonly mustMatchRuntimeOS = true;
  private load: Promise<string[]> | undefined;
  /** The image the daemon has under another name, found by alreadyContainsManifest. */
  private existing: { id: Digest; blobs: Set<Digest> } | undefined;
  private committed = false;

  private constructor(
    override readonly reference: DockerDaemonReference,
    private readonly name: NamedReference,
    private readonly client: EngineClient,
    ctx: SystemContext,
  ) {
    super(reference, ctx);
  }

  /** Prepares the client (no request is sent). */
  static async open(
    reference: DockerDaemonReference,
    name: NamedReference,
    ctx: SystemContext,
    options: OperationOptions = {},
  ): Promise<DockerDaemonImageDestination> {
    options.signal?.throwIfAborted();
    const client = await EngineClient.open(daemonOptions(ctx));
    return new DockerDaemonImageDestination(reference, name, client, ctx);
  }

  protected startWriter(): TarballWriter {
    const writer = new TarballWriter();
    this.load = this.client.loadImage(writer.stream);
    // A load that fails while blobs are still being written fails the next write at once.
    this.load.catch((error: unknown) => writer.fail(error as Error));
    return writer;
  }

  protected async reusableElsewhere(info: BlobInfo): Promise<boolean> {
    return this.existing?.blobs.has(info.digest) ?? false;
  }

  /**
   * Whether the daemon has this image under this name: one `GET /images/{name}/json`, present when
   * the image ID is the manifest's config digest and the name is among its RepoTags. When it is not,
   * a second request asks for the ID itself: an image the daemon has under another name is then
   * reported not present, but its blobs are reusable and commit only tags it.
   */
  async alreadyContainsManifest(
    _digest: Digest,
    bytes: Uint8Array,
    options: OperationOptions = {},
  ): Promise<ManifestPresence> {
    const mediaType = guessMediaType(bytes);
    if (mediaType !== MediaTypes.dockerV2Schema2 && mediaType !== MediaTypes.ociManifest)
      return { present: false };
    let config: Digest;
    let blobs: Set<Digest>;
    try {
      const descriptors = manifestDescriptors(bytes, mediaType);
      if (!descriptors.config) return { present: false };
      config = descriptors.config.digest;
      blobs = new Set([config, ...descriptors.layers.map((l) => l.digest)]);
    } catch {
      return { present: false };
    }
    const familiar = this.name.familiarString();
    const found = await this.client.inspectImage(familiar, options.signal);
    if (found?.Id === config && (found.RepoTags ?? []).includes(familiar)) return { present: true };
    const byId = await this.client.inspectImage(config, options.signal);
    if (byId?.Id === config) this.existing = { id: config, blobs };
    return { present: false };
  }

  /**
   * Makes the image visible under the name: tags the image the daemon already has, or finishes the
   * tarball and waits for the load, failing with the daemon's message when it refuses it.
   */
  async commit(options: OperationOptions = {}): Promise<void> {
    options.signal?.throwIfAborted();
    const manifest = this.manifest;
    if (!manifest) return;
    const repo = this.name.familiarString().replace(/:[^:/]+$/, '');
    const tag = this.name.tag!;
    if (this.existing?.id === manifest.config.digest) {
      await this.cancelLoad();
      await this.client.tagImage(manifest.config.digest, repo, tag, options.signal);
      this.committed = true;
      return;
    }
    const missing = await this.missingBlobs(manifest);
    if (missing.length > 0 || !this.writer) {
      throw new ImgError(
        `cannot load ${this.reference}: blob ${missing[0] ?? manifest.config.digest} was never written`,
      );
    }
    const writer = this.writer;
    await writer.finish(
      [
        {
          Config: blobEntryName(manifest.config.digest),
          RepoTags: [this.name.familiarString()],
          Layers: manifest.layers.map((l) => blobEntryName(l.digest)),
        },
      ],
      undefined,
      options.signal,
    );
    const loaded = await this.load!;
    this.committed = true;
    const wanted = this.name.familiarString();
    if (!loaded.some((line) => line.endsWith(` ${wanted}`) || line.endsWith(` ${this.name.toString()}`))) {
      throw new ImgError(
        `docker daemon at ${this.client.host} did not report loading ${wanted}: ${loaded.join('; ') || 'no output'}`,
      );
    }
  }

  /** Abandons a load not committed: the daemon sees the tarball end early and keeps nothing. */
  async close(): Promise<void> {
    if (!this.committed) await this.cancelLoad();
  }

  private async cancelLoad(): Promise<void> {
    if (!this.writer || !this.load) return;
    this.writer.fail(new LoadCancelled());
    await this.load.catch(() => undefined);
  }
}
