// The OCI image layout on disk (image-spec "image-layout.md"): `oci-layout`, `index.json` and
// `blobs/<alg>/<encoded>`. Internal to the package; never exported from index.ts.
import { createWriteStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  computeDigest,
  type Digest,
  digestAlgorithm,
  digestHex,
  guessMediaType,
  InvalidLayoutError,
  InvalidReferenceError,
  isDigest,
  ManifestUnknownError,
  MediaTypes,
  manifestDescriptors,
  maxManifestSize,
  type OperationOptions,
  type Platform,
  parseDigest,
  TooLargeError,
  tempPathFor,
  UnsupportedMediaTypeError,
} from '@img/core';

/** The annotation that names an image within a layout (image-spec "annotations.md"). */
export const refNameAnnotation = 'org.opencontainers.image.ref.name';

/** The content of `oci-layout` this package writes (image-spec "oci-layout file"). */
export const ociLayoutContent = '{"imageLayoutVersion":"1.0.0"}';

/**
 * index.json is an image index, but of a whole layout: it may list many images, so it gets a larger
 * cap than a manifest.
 */
export const maxIndexSize = 32 * 1024 * 1024;

/** One entry of index.json; unknown fields are kept when the file is rewritten. */
export interface IndexDescriptor {
  mediaType?: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
  [field: string]: unknown;
}

/** index.json; unknown fields are kept when the file is rewritten. */
export interface LayoutIndex {
  schemaVersion: number;
  mediaType?: string;
  manifests: IndexDescriptor[];
  [field: string]: unknown;
}

/** Which entry of index.json a reference means: a ref name, a position, or the only entry. */
export interface ImageSelector {
  /** The ref name; empty for none. */
  image: string;
  /** A zero-based position in index.json (sources only). */
  sourceIndex: number | undefined;
}

/** The manifest types a descriptor of index.json may point at for an image to be read. */
const imageMediaTypes: ReadonlySet<string> = new Set([
  MediaTypes.ociManifest,
  MediaTypes.ociIndex,
  MediaTypes.dockerV2Schema2,
  MediaTypes.dockerV2List,
]);

/** The blob directory of a layout. */
export function blobsDirOf(root: string): string {
  return join(root, 'blobs');
}

/**
 * The path of a blob under a blob directory (a layout's `blobs/` or a shared one); the digest is
 * validated first, so the path can never escape that directory.
 */
export function blobPath(blobs: string, digest: string): string {
  const valid = parseDigest(digest);
  return join(blobs, digestAlgorithm(valid), digestHex(valid));
}

/** The ref name annotation of an index entry, or undefined. */
export function refNameOf(descriptor: IndexDescriptor): string | undefined {
  const name = descriptor.annotations?.[refNameAnnotation];
  return typeof name === 'string' && name !== '' ? name : undefined;
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** Whether an fs error says the path (or a parent of it) does not exist. */
export function isNotFound(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * What is at `root`: `missing`, or `directory`; anything else (a file, a socket) is an
 * InvalidLayoutError.
 */
export async function layoutDirectoryState(root: string): Promise<'missing' | 'directory'> {
  try {
    const info = await stat(root);
    if (info.isDirectory()) return 'directory';
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return 'missing';
    if (errorCode(error) === 'ENOTDIR') {
      throw new InvalidLayoutError(`invalid OCI layout "${root}": a parent of it is not a directory`, {
        cause: error,
      });
    }
    throw error;
  }
  throw new InvalidLayoutError(`invalid OCI layout "${root}": it is a file, not a directory`);
}

/** Reads a small file whole, failing with TooLargeError over `limit` (checked before reading). */
export async function readSmallFile(
  path: string,
  limit: number,
  what: string,
  options: OperationOptions = {},
): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const info = await handle.stat();
    if (info.size > limit) throw new TooLargeError(what, limit);
    return await handle.readFile({ signal: options.signal });
  } finally {
    await handle.close();
  }
}

/** Parses index.json bytes, failing with InvalidLayoutError naming the layout (`label`). */
export function parseIndex(bytes: Uint8Array, label: string): LayoutIndex {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw new InvalidLayoutError(`invalid OCI layout "${label}": index.json is not valid JSON`, {
      cause: error,
    });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidLayoutError(`invalid OCI layout "${label}": index.json is not a JSON object`);
  }
  const index = value as Record<string, unknown>;
  if (index.manifests === undefined || index.manifests === null) index.manifests = [];
  if (!Array.isArray(index.manifests)) {
    throw new InvalidLayoutError(`invalid OCI layout "${label}": "manifests" in index.json is not an array`);
  }
  for (const [i, entry] of index.manifests.entries()) {
    if (
      typeof entry !== 'object' ||
      entry === null ||
      typeof (entry as IndexDescriptor).digest !== 'string'
    ) {
      throw new InvalidLayoutError(
        `invalid OCI layout "${label}": manifests[${i}] in index.json has no digest`,
      );
    }
  }
  return index as LayoutIndex;
}

/** Reads index.json; undefined when it does not exist, InvalidLayoutError when it cannot be used. */
export async function readIndexIfExists(
  root: string,
  options: OperationOptions = {},
  label = root,
): Promise<LayoutIndex | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readSmallFile(join(root, 'index.json'), maxIndexSize, `index.json of ${label}`, options);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    if (error instanceof TooLargeError) throw error;
    if (errorCode(error) === 'ABORT_ERR') throw error;
    throw new InvalidLayoutError(
      `invalid OCI layout "${label}": index.json cannot be read: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  return parseIndex(bytes, label);
}

/**
 * Opens an existing layout for reading: the directory must exist (else the image does not:
 * ManifestUnknownError naming `displayName`), and hold `oci-layout` and a readable `index.json`
 * (else InvalidLayoutError naming `label`, the path the user knows).
 */
export async function readLayout(
  root: string,
  displayName: string,
  options: OperationOptions = {},
  label = root,
): Promise<LayoutIndex> {
  if ((await layoutDirectoryState(root)) === 'missing') {
    throw new ManifestUnknownError(displayName, { cause: new Error(`${root} does not exist`) });
  }
  let layoutFile: Buffer;
  try {
    layoutFile = await readSmallFile(join(root, 'oci-layout'), 64 * 1024, `oci-layout of ${label}`, options);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') {
      throw new InvalidLayoutError(`invalid OCI layout "${label}": there is no oci-layout file`, {
        cause: error,
      });
    }
    throw new InvalidLayoutError(
      `invalid OCI layout "${label}": oci-layout cannot be read: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  let version: unknown;
  try {
    version = (JSON.parse(layoutFile.toString('utf8')) as { imageLayoutVersion?: unknown })
      .imageLayoutVersion;
  } catch {
    version = undefined;
  }
  if (typeof version !== 'string') {
    throw new InvalidLayoutError(`invalid OCI layout "${label}": oci-layout has no "imageLayoutVersion"`);
  }
  const index = await readIndexIfExists(root, options, label);
  if (!index) throw new InvalidLayoutError(`invalid OCI layout "${label}": there is no index.json`);
  return index;
}

/**
 * Finds the entry of index.json a reference means (containers/image's rules): by ref name, by
 * position, or, without either, the only entry. Returns the entry and its position.
 */
export function selectDescriptor(
  index: LayoutIndex,
  selector: ImageSelector,
  displayName: string,
): { descriptor: IndexDescriptor; position: number } {
  const entries = index.manifests;
  let position: number;
  if (selector.sourceIndex !== undefined) {
    position = selector.sourceIndex;
    if (position >= entries.length) {
      throw new ManifestUnknownError(displayName, {
        cause: new Error(`index.json has ${entries.length} entries, there is no @${position}`),
      });
    }
  } else if (selector.image !== '') {
    const named = entries.flatMap((entry, i) => (refNameOf(entry) === selector.image ? [i] : []));
    const usable = named.find((i) => imageMediaTypes.has(entries[i]!.mediaType ?? MediaTypes.ociManifest));
    if (usable === undefined) {
      if (named.length > 0) {
        throw new UnsupportedMediaTypeError(entries[named[0]!]!.mediaType ?? '', `image "${selector.image}"`);
      }
      throw new ManifestUnknownError(displayName);
    }
    position = usable;
  } else {
    if (entries.length === 0) throw new ManifestUnknownError(displayName);
    if (entries.length > 1) {
      throw new InvalidReferenceError(
        displayName,
        `the layout holds ${entries.length} images: name one (path:name) or choose one by position (path:@N)`,
      );
    }
    position = 0;
  }
  const descriptor = entries[position]!;
  if (!isDigest(descriptor.digest)) {
    throw new InvalidLayoutError(
      `invalid OCI layout: ${displayName} has an invalid digest "${descriptor.digest}"`,
    );
  }
  return { descriptor, position };
}

/** Writes `bytes` to `path` through a temp file beside it and a rename, so readers see old or new, never half. */
export async function writeFileAtomically(path: string, bytes: string | Uint8Array): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    const out = createWriteStream(tmp, { flags: 'wx', mode: 0o644 });
    await pipeline([typeof bytes === 'string' ? Buffer.from(bytes) : bytes], out);
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

/** Where the blobs of an image can be looked up without reading layers: a layout directory or an archive. */
export interface BlobLookup {
  /** The size of the blob, or undefined when it is absent. */
  size(digest: Digest): Promise<number | undefined>;
  /** The bytes of a small blob (a manifest), or undefined when absent or over `limit`. */
  read(digest: Digest, limit: number): Promise<Uint8Array | undefined>;
}

/** A {@link BlobLookup} over a blob directory. */
export function directoryBlobLookup(blobs: string): BlobLookup {
  return {
    async size(digest) {
      try {
        const info = await stat(blobPath(blobs, digest));
        return info.isFile() ? info.size : undefined;
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },
    async read(digest, limit) {
      try {
        return await readSmallFile(blobPath(blobs, digest), limit, `blob ${digest}`);
      } catch (error) {
        if (isNotFound(error) || error instanceof TooLargeError) return undefined;
        throw error;
      }
    },
  };
}

/**
 * Whether every blob a manifest needs is present with the size its descriptor states, by size
 * lookups only; the instance manifests of an index (small) are read and followed. The manifest
 * bytes must already be known to match `digest`.
 */
export async function isImageComplete(
  lookup: BlobLookup,
  digest: Digest,
  bytes: Uint8Array,
  depth = 0,
): Promise<boolean> {
  if ((await lookup.size(digest)) !== bytes.byteLength) return false;
  let mediaType: string;
  let described: ReturnType<typeof manifestDescriptors>;
  try {
    mediaType = guessMediaType(bytes);
    if (mediaType !== MediaTypes.ociManifest && mediaType !== MediaTypes.ociIndex) return false;
    described = manifestDescriptors(bytes, mediaType);
  } catch {
    return false;
  }
  const blobs = described.config ? [described.config, ...described.layers] : described.layers;
  for (const blob of blobs) {
    if ((await lookup.size(blob.digest)) !== blob.size) return false;
  }
  // An index inside an index is legal; the depth bound only stops a malicious cycle of digests.
  if (described.manifests.length > 0 && depth > 4) return false;
  for (const instance of described.manifests) {
    if (instance.size > maxManifestSize) return false;
    const child = await lookup.read(instance.digest, maxManifestSize);
    if (!child || computeDigest(child, digestAlgorithm(instance.digest)) !== instance.digest) return false;
    if (!(await isImageComplete(lookup, instance.digest, child, depth + 1))) return false;
  }
  return true;
}
