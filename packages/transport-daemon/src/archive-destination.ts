import { createWriteStream } from 'node:fs';
import { type FileHandle, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  type BlobInfo,
  type Digest,
  ImgError,
  InvalidLayoutError,
  type ManifestPresence,
  MediaTypes,
  type OperationOptions,
  type SystemContext,
  tempPathFor,
} from '@img/core';
import type { DockerArchiveReference } from './reference.js';
import { type ArchiveContents, type ArchiveFile, scanArchiveFile } from './tarball/contents.js';
import { TarballDestination } from './tarball/destination-base.js';
import {
  type ArchiveImage,
  blobEntryName,
  itemTags,
  type ManifestItem,
  readManifestItems,
  resolveImage,
  selectItem,
} from './tarball/image.js';
import { type IndexEntry, TarballWriter } from './tarball/writer.js';

/** The archive being added to: its files, its images, and each image resolved (lazily). */
interface ExistingArchive {
  handle: FileHandle;
  contents: ArchiveContents;
  items: ManifestItem[];
  images: Map<ManifestItem, Promise<ArchiveImage | undefined>>;
}

/**
 * Writes one image into a docker-archive. The new tarball is streamed to a temp file beside the
 * target as blobs arrive (`blobs/<alg>/<hex>`, as Docker 25+ lays them out) and renamed over it at
 * commit, with manifest.json, an OCI index.json holding the manifest (so that it reads back
 * identical) and the images the archive already held: adding to an archive keeps them, sharing
 * their blobs, and an image whose last tag moves to the new one is dropped.
 */
export class DockerArchiveImageDestination extends TarballDestination {
  readonly mustMatchRuntimeOS = false;
  private temp: string | undefined;
  private written: Promise<void> | undefined;

  private constructor(
    override readonly reference: DockerArchiveReference,
    ctx: SystemContext,
    private readonly existing: ExistingArchive | undefined,
  ) {
    super(reference, ctx);
  }

  /**
   * Checks the target: a directory, a missing parent directory, or an existing file that is not a
   * docker archive fail with InvalidLayoutError (nothing is overwritten that img cannot keep).
   */
  static async open(
    reference: DockerArchiveReference,
    ctx: SystemContext,
    options: OperationOptions = {},
  ): Promise<DockerArchiveImageDestination> {
    options.signal?.throwIfAborted();
    const file = reference.resolvedPath;
    const target = await stat(file).catch(() => undefined);
    if (target?.isDirectory()) {
      throw new InvalidLayoutError(`invalid docker archive "${file}": it is a directory`);
    }
    if (!(await stat(dirname(file)).catch(() => undefined))?.isDirectory()) {
      throw new InvalidLayoutError(
        `invalid docker archive "${file}": the directory "${dirname(file)}" does not exist`,
      );
    }
    if (!target?.isFile() || target.size === 0) {
      return new DockerArchiveImageDestination(reference, ctx, undefined);
    }
    const handle = await open(file, 'r');
    try {
      const contents = await scanArchiveFile(file, handle);
      const items = await readManifestItems(contents, file);
      return new DockerArchiveImageDestination(reference, ctx, {
        handle,
        contents,
        items,
        images: new Map(),
      });
    } catch (error) {
      await handle.close();
      throw new InvalidLayoutError(
        `cannot add to "${file}": it exists and is not a docker archive (${(error as Error).message})`,
        { cause: error },
      );
    }
  }

  protected startWriter(): TarballWriter {
    const writer = new TarballWriter();
    this.temp = tempPathFor(this.reference.resolvedPath);
    this.written = pipeline(writer.stream, createWriteStream(this.temp, { flags: 'wx', mode: 0o644 }));
    this.written.catch((error: unknown) => writer.fail(error as Error));
    return writer;
  }

  private image(item: ManifestItem): Promise<ArchiveImage | undefined> {
    const existing = this.existing!;
    let image = existing.images.get(item);
    if (!image) {
      image = resolveImage(existing.contents, item, this.reference.resolvedPath).catch(() => undefined);
      existing.images.set(item, image);
    }
    return image;
  }

  /** The file of the old archive that holds this blob, if any (a `blobs/` name, or a blob of one of its images). */
  private async oldBlob(info: BlobInfo): Promise<ArchiveFile | undefined> {
    if (!this.existing) return undefined;
    const named = this.existing.contents.file(blobEntryName(info.digest));
    if (named) return info.size === -1 || named.size === info.size ? named : undefined;
    for (const item of this.existing.items) {
      const file = (await this.image(item))?.blobs.get(info.digest);
      if (file && (info.size === -1 || file.size === info.size)) return file;
    }
    return undefined;
  }

  protected async reusableElsewhere(info: BlobInfo): Promise<boolean> {
    return (await this.oldBlob(info)) !== undefined;
  }

  /**
   * Whether the archive already holds this manifest under this name (without a name: as its only
   * image): read from its index.json, or rebuilt from manifest.json as a reader would.
   */
  async alreadyContainsManifest(
    digest: Digest,
    _bytes: Uint8Array,
    options: OperationOptions = {},
  ): Promise<ManifestPresence> {
    options.signal?.throwIfAborted();
    if (!this.existing) return { present: false };
    let item: ManifestItem;
    try {
      item = selectItem(
        this.existing.items,
        { ref: this.reference.dockerReference, sourceIndex: undefined },
        '',
      );
    } catch {
      return { present: false };
    }
    return { present: (await this.image(item))?.digest === digest };
  }

  /**
   * Writes what the tarball still lacks (the manifest, blobs reused from the old archive, the images
   * kept), then manifest.json and index.json, and renames the temp file over the archive.
   */
  async commit(options: OperationOptions = {}): Promise<void> {
    options.signal?.throwIfAborted();
    const manifest = this.manifest;
    if (!manifest) return;
    const missing = await this.missingBlobs(manifest);
    if (missing.length > 0) {
      throw new ImgError(`cannot write ${this.reference}: blob ${missing[0]} was never written`);
    }
    const writer = this.ensureWriter();
    const signal = options.signal;
    const copy = async (name: string, file: ArchiveFile) => {
      if (!writer.has(name)) await writer.add(name, file.size, file.open(signal), signal);
    };
    for (const blob of [...manifest.layers, manifest.config]) {
      const name = blobEntryName(blob.digest);
      if (!writer.has(name)) await copy(name, (await this.oldBlob(blob))!);
    }
    const manifestName = blobEntryName(manifest.digest);
    if (!writer.has(manifestName)) {
      await writer.add(manifestName, manifest.bytes.byteLength, Buffer.from(manifest.bytes), signal);
    }

    const ref = this.reference.dockerReference;
    const items: ManifestItem[] = [];
    const index: IndexEntry[] = [];
    // The images already there come first, so that their @N positions stay; the tag moves to the new one.
    for (const old of this.existing?.items ?? []) {
      const tags = (old.RepoTags ?? []).filter(
        (tag) => !ref || itemTags({ ...old, RepoTags: [tag] })[0] !== ref.toString(),
      );
      if ((old.RepoTags?.length ?? 0) > 0 && tags.length === 0) continue;
      const image = await this.image(old);
      const contents = this.existing!.contents;
      const config = contents.file(old.Config);
      if (!config) continue;
      await copy(config.name, config);
      const layers: string[] = [];
      for (const layer of old.Layers) {
        const file = contents.file(layer);
        if (!file)
          throw new ImgError(
            `cannot keep ${old.Config} of "${this.reference.resolvedPath}": "${layer}" is missing`,
          );
        await copy(file.name, file);
        layers.push(file.name);
      }
      items.push({ Config: config.name, RepoTags: tags.length > 0 ? tags : null, Layers: layers });
      if (image?.stored) {
        const name = blobEntryName(image.digest);
        if (!writer.has(name)) {
          await writer.add(name, image.manifest.bytes.byteLength, Buffer.from(image.manifest.bytes), signal);
        }
        index.push({
          mediaType: image.manifest.mediaType,
          digest: image.digest,
          size: image.manifest.bytes.byteLength,
        });
      }
    }
    items.push({
      Config: blobEntryName(manifest.config.digest),
      RepoTags: ref ? [ref.familiarString()] : null,
      Layers: manifest.layers.map((l) => blobEntryName(l.digest)),
    });
    index.push({
      mediaType: MediaTypes.dockerV2Schema2,
      digest: manifest.digest,
      size: manifest.bytes.byteLength,
      ...(ref
        ? {
            annotations: {
              'io.containerd.image.name': ref.toString(),
              'org.opencontainers.image.ref.name': ref.tag!,
            },
          }
        : {}),
    });
    await writer.finish(items, index, signal);
    await this.written;
    await rename(this.temp!, this.reference.resolvedPath);
    this.temp = undefined;
  }

  /** Removes the temp file of an uncommitted write (the archive is untouched) and closes the old archive. */
  async close(): Promise<void> {
    if (this.writer && this.temp) {
      this.writer.fail(new Error('closed before commit'));
      await this.written?.catch(() => undefined);
      await rm(this.temp, { force: true });
    }
    await this.existing?.handle.close();
  }
}
