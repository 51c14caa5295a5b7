import { createReadStream } from 'node:fs';
import { mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { Readable } from 'node:stream';
import {
  type BlobInfo,
  type BlobStream,
  computeDigest,
  type Digest,
  digestAlgorithm,
  digestHex,
  type ImageDestination,
  type ImageSource,
  InvalidLayoutError,
  isProcessAlive,
  type LayerCompression,
  type ManifestPresence,
  ManifestUnknownError,
  type OperationOptions,
  type PutBlobOptions,
  parseDigest,
  type RawManifest,
  type Signature,
  type SystemContext,
  type TryReusingBlobOptions,
  type UploadInfo,
} from '@img/core';
import { indexHasImage, OciImageDestination } from './destination.js';
import { isImageComplete, isNotFound, type LayoutIndex, maxIndexSize, parseIndex } from './layout.js';
import { ociOptions } from './options.js';
import type { OciArchiveReference } from './reference.js';
import { OciImageSource } from './source.js';
import { archiveBlobLookup, entryPath, extractArchive, packLayout, scanTar, type TarHeader } from './tar.js';

/** The regular files of a tar by name, from its headers only; undefined when it is absent or not a tar. */
async function listArchiveFiles(file: string): Promise<Map<string, TarHeader> | undefined> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return undefined;
  try {
    const files = new Map<string, TarHeader>();
    for await (const entry of scanTar(handle)) {
      const name = entryPath(entry.name);
      if (name !== undefined && (entry.type === '0' || entry.type === '7')) files.set(name, entry);
    }
    return files;
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}

/**
 * What went wrong while unpacking, told by entry name: a filesystem error in the temp directory (an
 * entry under one that is a file, a hard link to an entry not there) says so by the temp path,
 * which means nothing to the user.
 */
function describeExtractError(error: unknown, dir: string): string {
  const { code, path, message } = error as NodeJS.ErrnoException;
  if (code === undefined || typeof path !== 'string') return message;
  const name = relative(dir, path);
  if (name === '' || name.startsWith('..') || isAbsolute(name)) return message;
  // Node's fs messages read "CODE: description, syscall 'path'": keep the first part only.
  return `cannot unpack "${name}": ${message.split(',')[0]}`;
}

/** Temp directories are named `img-oci-archive-<pid>-XXXXXX`: the pid tells whose they are. */
const tempDirPrefix = 'img-oci-archive-';
const tempDirName = /^img-oci-archive-(\d+)-[A-Za-z0-9]{6}$/;

/**
 * Removes the temp directories under `root` that a process now gone left (killed mid-copy, so its
 * close never ran). Only names with a pid are touched, never those of live processes, nor anything
 * else in `root`, which is a shared directory. Never throws: it is housekeeping.
 */
async function removeStaleTempDirs(root: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(tempDirName.exec(name)?.[1]);
    if (!pid || pid === process.pid || isProcessAlive(pid)) continue;
    await rm(join(root, name), { recursive: true, force: true }).catch(() => {});
  }
}

/**
 * A new private directory for unpacked or to-be-packed layouts, where big temp files belong; those
 * dead processes left in the same place are removed first.
 */
async function makeTempDir(ctx: SystemContext): Promise<string> {
  const root = ctx.tmpDir ?? tmpdir();
  await removeStaleTempDirs(root);
  return mkdtemp(join(root, `${tempDirPrefix}${process.pid}-`));
}

/**
 * Reads one image of an oci-archive: the archive is unpacked (streamed, entry by entry) into a temp
 * directory, read from there as a layout, and the directory is removed on close.
 */
export class OciArchiveImageSource implements ImageSource {
  readonly hasThreadSafeGetBlob = true;

  private constructor(
    readonly reference: OciArchiveReference,
    private readonly dir: string,
    private readonly layout: OciImageSource,
  ) {}

  /**
   * Unpacks the archive and opens the image the reference names. A missing archive fails with
   * ManifestUnknownError, a directory or a file that is not a tar of a layout with
   * InvalidLayoutError; nothing is left in the temp directory on failure.
   */
  static async open(
    reference: OciArchiveReference,
    ctx: SystemContext,
    options: OperationOptions = {},
  ): Promise<OciArchiveImageSource> {
    options.signal?.throwIfAborted();
    const file = reference.resolvedPath;
    try {
      if ((await stat(file)).isDirectory()) {
        throw new InvalidLayoutError(`invalid OCI archive "${file}": it is a directory, not a tar file`);
      }
    } catch (error) {
      if (isNotFound(error)) throw new ManifestUnknownError(reference.toString(), { cause: error });
      throw error;
    }
    const dir = await makeTempDir(ctx);
    try {
      try {
        await extractArchive(file, dir, options);
      } catch (error) {
        if (options.signal?.aborted) throw error;
        // The archive itself went away since it was looked at: the image is not there.
        if (isNotFound(error) && (error as NodeJS.ErrnoException).path === file) {
          throw new ManifestUnknownError(reference.toString(), { cause: error });
        }
        throw new InvalidLayoutError(`invalid OCI archive "${file}": ${describeExtractError(error, dir)}`, {
          cause: error,
        });
      }
      const selector = { image: reference.image, sourceIndex: undefined };
      const layout = await OciImageSource.open(reference, dir, selector, options, { label: file });
      return new OciArchiveImageSource(reference, dir, layout);
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** The manifest, as the unpacked layout has it. */
  getManifest(instanceDigest?: Digest, options?: OperationOptions): Promise<RawManifest> {
    return this.layout.getManifest(instanceDigest, options);
  }

  /** Streams a blob from the unpacked layout; BlobUnknownError when the archive did not hold it. */
  getBlob(info: BlobInfo, options?: OperationOptions): Promise<BlobStream> {
    return this.layout.getBlob(info, options);
  }

  /** The blob's file in the unpacked layout (valid until close). */
  getBlobPath(info: BlobInfo, options?: OperationOptions): Promise<string | undefined> {
    return this.layout.getBlobPath(info, options);
  }

  /** OCI archives store no signatures: always empty. */
  async getSignatures(_instanceDigest?: Digest, _options?: OperationOptions): Promise<Signature[]> {
    return [];
  }

  /** Removes the unpacked layout. */
  async close(): Promise<void> {
    await this.layout.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Writes one image to an oci-archive: the layout is built in a temp directory, and commit packs it
 * into a tar beside the target and renames it over the target (skopeo's archive holds one image).
 */
export class OciArchiveImageDestination implements ImageDestination {
  readonly hasThreadSafePutBlob = true;

  /** The regular files of the archive being replaced, scanned once on the first reuse question. */
  private existing: Promise<Map<string, TarHeader> | undefined> | undefined;

  private constructor(
    readonly reference: OciArchiveReference,
    private readonly dir: string,
    private readonly layout: OciImageDestination,
  ) {}

  /**
   * Prepares the temp layout. A directory at the target, or a target whose directory does not exist,
   * fails with InvalidLayoutError.
   */
  static async open(
    reference: OciArchiveReference,
    ctx: SystemContext,
    options: OperationOptions = {},
  ): Promise<OciArchiveImageDestination> {
    options.signal?.throwIfAborted();
    const file = reference.resolvedPath;
    const target = await stat(file).catch((error: unknown) => {
      if (isNotFound(error)) return undefined;
      throw error;
    });
    if (target?.isDirectory()) {
      throw new InvalidLayoutError(`invalid OCI archive "${file}": it is a directory, not a tar file`);
    }
    const parent = await stat(dirname(file)).catch(() => undefined);
    if (!parent?.isDirectory()) {
      throw new InvalidLayoutError(
        `invalid OCI archive "${file}": the directory "${dirname(file)}" does not exist`,
      );
    }
    // A shared blob directory does not apply: the archive must carry its blobs.
    const { acceptUncompressedLayers } = ociOptions(ctx);
    const dir = await makeTempDir(ctx);
    try {
      const layout = await OciImageDestination.open(reference, dir, reference.image, options, {
        acceptUncompressedLayers,
      });
      return new OciArchiveImageDestination(reference, dir, layout);
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** As the oci: destination: OCI manifests and indexes only. */
  get supportedManifestMediaTypes(): readonly string[] {
    return this.layout.supportedManifestMediaTypes;
  }

  /** As the oci: destination: layers are compressed. */
  get desiredLayerCompression(): LayerCompression {
    return this.layout.desiredLayerCompression;
  }

  /** OCI archives store no signatures. */
  get supportsSignatures(): boolean {
    return this.layout.supportsSignatures;
  }

  /** Any OS may be stored. */
  get mustMatchRuntimeOS(): boolean {
    return this.layout.mustMatchRuntimeOS;
  }

  /** Stores a blob in the temp layout, verified (see the oci: destination). */
  putBlob(stream: Readable, info: UploadInfo, options?: PutBlobOptions): Promise<BlobInfo> {
    return this.layout.putBlob(stream, info, options);
  }

  /** Stores a blob in the temp layout from a file, by kernel copy. */
  putBlobFromFile(path: string, info: BlobInfo, options?: PutBlobOptions): Promise<BlobInfo> {
    return this.layout.putBlobFromFile(path, info, options);
  }

  /**
   * Reuses a blob put during this write, or one the existing archive holds: the archive is rewritten
   * whole at commit, so that blob is copied (verified) from the old archive into the new layout,
   * which still spares the source. Answers undefined when the old copy does not verify.
   */
  async tryReusingBlob(info: BlobInfo, options: TryReusingBlobOptions = {}): Promise<BlobInfo | undefined> {
    const here = await this.layout.tryReusingBlob(info, options);
    if (here) return here;
    const digest = parseDigest(info.digest);
    this.existing ??= listArchiveFiles(this.reference.resolvedPath);
    const entry = (await this.existing)?.get(`blobs/${digestAlgorithm(digest)}/${digestHex(digest)}`);
    if (!entry || (info.size !== -1 && entry.size !== info.size)) return undefined;
    const stream =
      entry.size === 0
        ? Readable.from([])
        : createReadStream(this.reference.resolvedPath, {
            start: entry.offset,
            end: entry.offset + entry.size - 1,
          });
    try {
      const upload = { digest, size: entry.size, ...(info.mediaType ? { mediaType: info.mediaType } : {}) };
      return await this.layout.putBlob(stream, upload, options);
    } catch (error) {
      if (options.signal?.aborted) throw error;
      return undefined;
    }
  }

  /** Stores a manifest in the temp layout (OCI only, else ManifestTypeRejectedError). */
  putManifest(bytes: Uint8Array, instanceDigest?: Digest, options?: OperationOptions): Promise<void> {
    return this.layout.putManifest(bytes, instanceDigest, options);
  }

  /** Refuses any signature (an empty list is accepted). */
  putSignatures(signatures: Signature[], instanceDigest?: Digest, options?: OperationOptions): Promise<void> {
    return this.layout.putSignatures(signatures, instanceDigest, options);
  }

  /**
   * Commits the temp layout, then replaces the archive with a tar of it (temp file and rename).
   * Without a manifest put, the archive is left as it was.
   */
  async commit(options: OperationOptions = {}): Promise<void> {
    if (!this.layout.hasManifest) return;
    await this.layout.commit(options);
    await packLayout(this.dir, this.reference.resolvedPath, options);
  }

  /** Removes the temp layout; without a commit the archive was never touched. */
  async close(): Promise<void> {
    await this.layout.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  /**
   * Whether the existing archive already holds this image under this name: its index.json is read
   * (by seeking over entry headers, so no blob is read), the scan stops as soon as index.json shows
   * the image is not there, and every blob the manifest needs must have an entry of the right size.
   * Answers false when in doubt (no archive, not a tar, an unreadable index).
   */
  async alreadyContainsManifest(
    digest: Digest,
    bytes: Uint8Array,
    options: OperationOptions = {},
  ): Promise<ManifestPresence> {
    options.signal?.throwIfAborted();
    if (computeDigest(bytes, digestAlgorithm(parseDigest(digest))) !== digest) return { present: false };
    const handle = await open(this.reference.resolvedPath, 'r').catch(() => undefined);
    if (!handle) return { present: false };
    try {
      const files = new Map<string, TarHeader>();
      let index: LayoutIndex | undefined;
      for await (const entry of scanTar(handle)) {
        const name = entryPath(entry.name);
        if (name === undefined || (entry.type !== '0' && entry.type !== '7')) continue;
        files.set(name, entry);
        if (name !== 'index.json') continue;
        if (entry.size > maxIndexSize) return { present: false };
        const data = Buffer.alloc(entry.size);
        await handle.read(data, 0, entry.size, entry.offset);
        index = parseIndex(data, this.reference.resolvedPath);
        if (!indexHasImage(index, this.reference.image, digest, bytes.byteLength)) return { present: false };
      }
      if (!index) return { present: false };
      return { present: await isImageComplete(archiveBlobLookup(handle, files), digest, bytes) };
    } catch {
      return { present: false };
    } finally {
      await handle.close();
    }
  }
}
