import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import {
  AbortedError,
  type BlobInfo,
  type BlobInfoCache,
  computeDigest,
  copyBlobFile,
  type Digest,
  digestAlgorithm,
  guessMediaType,
  type ImageDestination,
  InvalidLayoutError,
  isDigest,
  type ManifestPresence,
  ManifestUnknownError,
  manifestDescriptors,
  maxManifestSize,
  type OperationOptions,
  type PutBlobOptions,
  type ReusedBlob,
  removeStaleTempFiles,
  type Signature,
  TooLargeError,
  type TryReusingBlobOptions,
  tempPathFor,
  type UploadInfo,
  writeBlobFile,
} from '@img/core';
import {
  blobFileName,
  contentAddressedEntry,
  digestStem,
  formatVersion,
  isNotFound,
  type LayoutVersion,
  layoutPath,
  manifestFileName,
  manifestFileNameFor,
  needsVersion12,
  readSmallFile,
  signatureFileName,
  version11,
  version12,
  versionFileName,
} from './layout.js';
import type { DirReference } from './reference.js';
import { signatureToBlob } from './signature-blob.js';
import { checkImageDirectory, readLayoutVersion, readSignatures, throwIfAborted } from './source.js';

/** How deep lists of lists are followed when the files a manifest needs are collected. */
const maxListDepth = 4;

/**
 * Opens a dir: destination (see DirReference.newImageDestination). A missing directory is created;
 * an empty one is accepted; a non-empty one must already be an image directory (containers/image's
 * rule, so that foreign content is never overwritten). A new or empty directory gets its version file
 * at once, as containers/image does: it marks the directory as ours, so that the blobs of an
 * interrupted copy can be reused by the next one, and it is not an image until a manifest is committed.
 */
export async function openDirImageDestination(
  reference: DirReference,
  options: OperationOptions = {},
): Promise<ImageDestination> {
  throwIfAborted(options.signal);
  const dir = reference.resolvedPath;
  const exists = await checkImageDirectory(reference, 'write');
  if (!exists) await mkdir(dir, { recursive: true });
  const empty = !exists || (await readdir(dir)).length === 0;
  if (empty) {
    await writeVersionFile(dir, version11);
  } else if ((await readLayoutVersion(reference, 'write')) === undefined) {
    throw new InvalidLayoutError(
      `cannot write ${reference.toString()}: "${dir}" is not empty and holds no image (no "version" file); ` +
        'refusing to overwrite it',
    );
  }
  // Only in a directory that is ours: a copy killed mid-blob left its temp files, nobody's now.
  if (!empty) await removeStaleTempFiles(dir);
  return new DirImageDestination(reference);
}

/** Writes the version file through a temp name, unless it already says exactly this. */
async function writeVersionFile(dir: string, version: LayoutVersion): Promise<void> {
  const path = layoutPath(dir, versionFileName);
  const text = formatVersion(version);
  const current = await readSmallFile(path, 256, 'version file').catch(() => undefined);
  if (current?.toString('utf8') === text) return;
  await writeFileAtomically(path, text);
}

async function writeFileAtomically(path: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    await writeFile(tmp, bytes, { flag: 'wx' });
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

/** A manifest written under a temp name, waiting for commit. */
interface StagedManifest {
  tmp: string;
  bytes: Uint8Array;
}

/** Signatures written under temp names, waiting for commit; `tmps[i]` becomes signature number i + 1. */
interface StagedSignatures {
  instanceDigest: Digest | undefined;
  tmps: string[];
}

/** The content-addressed files a manifest needs, by name; see `referencedFiles`. */
interface ReferencedFiles {
  blobs: Set<string>;
  /** Digest stems of the instances of lists: their manifests and signatures are kept. */
  instances: Set<string>;
  /** Whether some name carries an algorithm prefix, so the layout is version 1.2. */
  needsVersion12: boolean;
}

/**
 * Writes a dir: image. Blobs go straight to their final, content-addressed names (verified first, so
 * a name always holds its digest's bytes); manifests and signatures are staged under temp names and
 * become visible only at commit, which also removes what the new manifest no longer needs.
 */
class DirImageDestination implements ImageDestination {
  readonly supportedManifestMediaTypes: readonly string[] = [];
  readonly desiredLayerCompression = 'preserve' as const;
  readonly supportsSignatures = true;
  readonly mustMatchRuntimeOS = false;
  readonly hasThreadSafePutBlob = true;
  readonly supportsOutOfOrderPuts = true;

  /** By final file name. */
  private readonly stagedManifests = new Map<string, StagedManifest>();
  /** By instance digest, '' for the image itself. */
  private readonly stagedSignatures = new Map<string, StagedSignatures>();

  constructor(readonly reference: DirReference) {}

  private get dir(): string {
    return this.reference.resolvedPath;
  }

  private path(name: string): string {
    return layoutPath(this.dir, name);
  }

  async putBlob(stream: Readable, info: UploadInfo, options: PutBlobOptions = {}): Promise<BlobInfo> {
    const { signal } = options;
    try {
      throwIfAborted(signal);
      const { digest, size } = info;
      if (digest) {
        const written = await writeBlobFile(
          stream,
          this.path(blobFileName(digest)),
          { digest, size },
          { signal },
        );
        this.recordLocation(options, written.digest);
        return { ...info, ...written };
      }
      // No digest (the engine recompressed the stream): hash while writing to a temp name, then move
      // the file to the name of what was hashed.
      const staging = tempPathFor(this.path('put-blob'));
      try {
        const written = await writeBlobFile(stream, staging, { size }, { signal });
        await rename(staging, this.path(blobFileName(written.digest)));
        this.recordLocation(options, written.digest);
        return { ...info, ...written };
      } catch (error) {
        await rm(staging, { force: true });
        throw error;
      }
    } catch (error) {
      // The stream may not have been consumed (an invalid digest fails before the pipeline starts).
      stream.destroy();
      if (signal?.aborted && !(error instanceof AbortedError)) throw new AbortedError({ cause: error });
      throw error;
    }
  }

  async putBlobFromFile(path: string, info: BlobInfo, options: PutBlobOptions = {}): Promise<BlobInfo> {
    throwIfAborted(options.signal);
    if (!info.digest) return this.putBlob(createReadStream(path), info, options);
    try {
      const written = await copyBlobFile(path, this.path(blobFileName(info.digest)), info, {
        signal: options.signal,
        onProgress: options.onProgress,
      });
      this.recordLocation(options, written.digest);
      return { ...info, ...written };
    } catch (error) {
      if (options.signal?.aborted && !(error instanceof AbortedError))
        throw new AbortedError({ cause: error });
      throw error;
    }
  }

  /**
   * Reuses a blob file of the same digest and size, found by stat alone. Layers are kept as they come
   * (`preserve`), so no substitute is ever asked for.
   */
  async tryReusingBlob(info: BlobInfo, options: TryReusingBlobOptions = {}): Promise<ReusedBlob | undefined> {
    throwIfAborted(options.signal);
    if (!info.digest || !isDigest(info.digest)) return undefined;
    const size = await this.blobSize(info.digest);
    if (size === undefined || (info.size !== -1 && size !== info.size)) return undefined;
    this.recordLocation(options, info.digest);
    return { ...info, size };
  }

  /** Tells the blob-info cache the blob is here: scope the directory, location the blob's file. */
  private recordLocation(options: { cache?: BlobInfoCache | undefined }, digest: Digest): void {
    options.cache?.recordKnownLocation(
      { transport: 'dir', scope: this.dir },
      digest,
      this.path(blobFileName(digest)),
    );
  }

  async putManifest(
    bytes: Uint8Array,
    instanceDigest?: Digest,
    options: OperationOptions = {},
  ): Promise<void> {
    throwIfAborted(options.signal);
    if (bytes.byteLength > maxManifestSize) throw new TooLargeError('manifest', maxManifestSize);
    const name = manifestFileNameFor(instanceDigest);
    const tmp = tempPathFor(this.path(name));
    try {
      await writeFile(tmp, bytes, { flag: 'wx', signal: options.signal });
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
    const previous = this.stagedManifests.get(name);
    this.stagedManifests.set(name, { tmp, bytes: Uint8Array.from(bytes) });
    if (previous) await rm(previous.tmp, { force: true });
  }

  async putSignatures(
    signatures: Signature[],
    instanceDigest?: Digest,
    options: OperationOptions = {},
  ): Promise<void> {
    throwIfAborted(options.signal);
    const blobs = signatures.map(signatureToBlob);
    const tmps: string[] = [];
    try {
      for (const [i, blob] of blobs.entries()) {
        const tmp = tempPathFor(this.path(signatureFileName(i + 1, instanceDigest)));
        tmps.push(tmp);
        await writeFile(tmp, blob, { flag: 'wx', signal: options.signal });
      }
    } catch (error) {
      await Promise.all(tmps.map((tmp) => rm(tmp, { force: true })));
      throw error;
    }
    const key = instanceDigest ?? '';
    const previous = this.stagedSignatures.get(key);
    this.stagedSignatures.set(key, { instanceDigest, tmps });
    if (previous) await Promise.all(previous.tmps.map((tmp) => rm(tmp, { force: true })));
  }

  /**
   * Makes the staged manifests and signatures visible, in an order that keeps the directory a readable
   * image at every step: the version file, the instance manifests and their signatures (named by
   * digest, so harmless early), the removal of the old top-level signatures when the top-level
   * manifest changes, that manifest, its signatures, and last the removal of blobs,
   * instance manifests and instance signatures that the manifest now current does not need. A
   * manifest identical to the one on disk is not rewritten, so a commit with only signatures put on a
   * present image writes the signature files and nothing else.
   */
  async commit(options: OperationOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    const stagedTop = this.stagedManifests.get(manifestFileName);
    const currentTop = await this.readManifestFile(manifestFileName);
    const top = stagedTop?.bytes ?? currentTop;
    if (top === undefined) throw new ManifestUnknownError(this.reference.toString());
    const topChanged = currentTop === undefined || !Buffer.from(top).equals(currentTop);

    const referenced = await this.referencedFiles(top);
    // When unsure what the manifest needs (a type img cannot parse), the version file stays as it is.
    if (referenced) await writeVersionFile(this.dir, referenced.needsVersion12 ? version12 : version11);

    for (const [name, staged] of this.stagedManifests) {
      if (name !== manifestFileName) await this.placeManifest(name, staged);
    }
    for (const [key, staged] of this.stagedSignatures) {
      if (key !== '') await this.placeSignatures(staged);
    }
    // Signatures of a replaced manifest cannot be valid for the new one. They go before it is
    // replaced, so that an interruption leaves the new manifest unsigned, never with the old signatures.
    if (topChanged) await this.removeSignaturesFrom(1, undefined);
    if (stagedTop) await this.placeManifest(manifestFileName, stagedTop);
    const topSignatures = this.stagedSignatures.get('');
    if (topSignatures) await this.placeSignatures(topSignatures);
    this.stagedManifests.clear();
    this.stagedSignatures.clear();

    // When unsure what the manifest needs (a type img cannot parse), nothing is removed.
    if (referenced) await this.removeUnreferenced(referenced);
  }

  /** Removes staged temp files; blobs already written stay, reusable by the next copy. */
  async close(): Promise<void> {
    const tmps = [
      ...[...this.stagedManifests.values()].map((m) => m.tmp),
      ...[...this.stagedSignatures.values()].flatMap((s) => s.tmps),
    ];
    this.stagedManifests.clear();
    this.stagedSignatures.clear();
    await Promise.all(tmps.map((tmp) => rm(tmp, { force: true })));
  }

  /**
   * Reports the image present when `manifest.json` has this digest and every blob (and, for a list,
   * every instance manifest and its blobs) is here with its size, checked by stat; no blob is read.
   * The signatures reported are those stored now.
   */
  async alreadyContainsManifest(
    digest: Digest,
    _bytes: Uint8Array,
    options: OperationOptions = {},
  ): Promise<ManifestPresence> {
    throwIfAborted(options.signal);
    if (!isDigest(digest)) return { present: false };
    const current = await this.readManifestFile(manifestFileName);
    if (current === undefined || computeDigest(current, digestAlgorithm(digest)) !== digest)
      return { present: false };
    if (!(await this.isComplete(current, 0))) return { present: false };
    return { present: true, signatures: await readSignatures(this.dir, undefined) };
  }

  private async isComplete(manifest: Uint8Array, depth: number): Promise<boolean> {
    const descriptors = parseDescriptors(manifest);
    if (descriptors === undefined) return false;
    for (const blob of [...(descriptors.config ? [descriptors.config] : []), ...descriptors.layers]) {
      const size = await this.blobSize(blob.digest);
      if (size === undefined || (blob.size !== -1 && size !== blob.size)) return false;
    }
    for (const instance of descriptors.manifests) {
      if (depth >= maxListDepth) return false;
      const bytes = await this.readManifestFile(manifestFileNameFor(instance.digest));
      if (bytes === undefined || bytes.byteLength !== instance.size) return false;
      if (computeDigest(bytes, digestAlgorithm(instance.digest)) !== instance.digest) return false;
      if (!(await this.isComplete(bytes, depth + 1))) return false;
    }
    return true;
  }

  /**
   * The blobs and instances `top` needs, reading instance manifests from what is staged or, failing
   * that, from disk. Undefined when some manifest cannot be parsed: then nothing can safely be removed.
   */
  private async referencedFiles(top: Uint8Array): Promise<ReferencedFiles | undefined> {
    const referenced: ReferencedFiles = { blobs: new Set(), instances: new Set(), needsVersion12: false };
    const visit = async (manifest: Uint8Array, depth: number): Promise<boolean> => {
      const descriptors = parseDescriptors(manifest);
      if (descriptors === undefined) return false;
      for (const blob of [...(descriptors.config ? [descriptors.config] : []), ...descriptors.layers]) {
        referenced.blobs.add(blobFileName(blob.digest));
        if (needsVersion12(blob.digest)) referenced.needsVersion12 = true;
      }
      for (const instance of descriptors.manifests) {
        const stem = digestStem(instance.digest);
        if (referenced.instances.has(stem)) continue;
        referenced.instances.add(stem);
        if (needsVersion12(instance.digest)) referenced.needsVersion12 = true;
        const name = manifestFileNameFor(instance.digest);
        const bytes = this.stagedManifests.get(name)?.bytes ?? (await this.readManifestFile(name));
        // An instance that is not stored (a list copied alone) needs nothing more.
        if (bytes === undefined) continue;
        if (depth >= maxListDepth || !(await visit(bytes, depth + 1))) return false;
      }
      return true;
    };
    return (await visit(top, 0)) ? referenced : undefined;
  }

  private async removeUnreferenced(referenced: ReferencedFiles): Promise<void> {
    for (const entry of await readdir(this.dir, { withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const known = contentAddressedEntry(entry.name);
      if (known === undefined) continue;
      const needed =
        known.kind === 'blob' ? referenced.blobs.has(entry.name) : referenced.instances.has(known.stem);
      if (!needed) await rm(this.path(entry.name), { force: true });
    }
  }

  private async placeManifest(name: string, staged: StagedManifest): Promise<void> {
    const current = await this.readManifestFile(name).catch(() => undefined);
    if (current !== undefined && Buffer.from(staged.bytes).equals(current)) {
      await rm(staged.tmp, { force: true });
      return;
    }
    await rename(staged.tmp, this.path(name));
  }

  private async placeSignatures(staged: StagedSignatures): Promise<void> {
    for (const [i, tmp] of staged.tmps.entries()) {
      await rename(tmp, this.path(signatureFileName(i + 1, staged.instanceDigest)));
    }
    await this.removeSignaturesFrom(staged.tmps.length + 1, staged.instanceDigest);
  }

  /** Removes signature files from number `first` on, up to the first missing one (readers stop there too). */
  private async removeSignaturesFrom(first: number, instanceDigest: Digest | undefined): Promise<void> {
    for (let index = first; ; index++) {
      try {
        await unlink(this.path(signatureFileName(index, instanceDigest)));
      } catch (error) {
        if (isNotFound(error)) return;
        throw error;
      }
    }
  }

  private async readManifestFile(name: string): Promise<Buffer | undefined> {
    return readSmallFile(this.path(name), maxManifestSize, `manifest "${this.path(name)}"`);
  }

  /** The size of a blob file, or undefined when there is no regular file by that name. */
  private async blobSize(digest: Digest): Promise<number | undefined> {
    try {
      const info = await stat(this.path(blobFileName(digest)));
      return info.isFile() ? info.size : undefined;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }
}

function parseDescriptors(manifest: Uint8Array) {
  try {
    return manifestDescriptors(manifest, guessMediaType(manifest));
  } catch {
    return undefined;
  }
}
