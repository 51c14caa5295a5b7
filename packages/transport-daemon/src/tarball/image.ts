// What a docker-archive holds, read from its files: `manifest.json` (docker save's index of images),
// each image's config and layers, and, where the archive has one (skopeo-compatible archives written
// by img, `docker save` of Docker 25+), an OCI `index.json` with the manifests themselves.
// Internal to the package.
import { pipeline } from 'node:stream/promises';
import {
  type BlobInfo,
  computeDigest,
  type Digest,
  DigestingStream,
  digestAlgorithm,
  digestHex,
  InvalidLayoutError,
  InvalidReferenceError,
  isDigest,
  ManifestUnknownError,
  MediaTypes,
  manifestDescriptors,
  maxManifestSize,
  type NamedReference,
  parseJsonObject,
  parseNormalizedNamed,
  type RawManifest,
} from '@img/core';
import type { ArchiveContents, ArchiveFile } from './contents.js';

/** One entry of `manifest.json`. */
export interface ManifestItem {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

/** The most a config may weigh; real ones are a few KiB. */
export const maxConfigSize = 16 * 1024 * 1024;

/** Where a blob lives in archives img writes: the OCI layout's `blobs/<alg>/<hex>`. */
export function blobEntryName(digest: Digest): string {
  return `blobs/${digestAlgorithm(digest)}/${digestHex(digest)}`;
}

/** The digest a `blobs/<alg>/<hex>` name states (the OCI layout's content addressing), if it is one. */
function digestFromName(name: string): Digest | undefined {
  const match = /(?:^|\/)blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(name);
  const digest = match ? `${match[1]}:${match[2]}` : '';
  return isDigest(digest) ? (digest as Digest) : undefined;
}

function invalid(label: string, reason: string, cause?: unknown): InvalidLayoutError {
  return new InvalidLayoutError(
    `invalid docker archive "${label}": ${reason}`,
    cause === undefined ? undefined : { cause },
  );
}

/** Whether the archive has a `manifest.json` and every file its images name. */
export function hasEverything(contents: ArchiveContents): boolean {
  const file = contents.file('manifest.json');
  if (!file) return false;
  // Only a manifest.json held in memory can be looked at without waiting; with a huge one (or a
  // malformed one, which the caller reports) the whole stream is read.
  if (!file.bytes) return false;
  let items: ManifestItem[];
  try {
    items = parseItems(file.bytes, '');
  } catch {
    return false;
  }
  return items.every((item) => contents.file(item.Config) && item.Layers.every((l) => contents.file(l)));
}

function parseItems(bytes: Uint8Array, label: string): ManifestItem[] {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw invalid(label, 'manifest.json is not JSON', error);
  }
  if (!Array.isArray(json)) throw invalid(label, 'manifest.json is not a list');
  return json.map((entry: unknown, i) => {
    const e = entry as Partial<ManifestItem> | null;
    if (
      typeof e !== 'object' ||
      e === null ||
      typeof e.Config !== 'string' ||
      !Array.isArray(e.Layers) ||
      !e.Layers.every((l) => typeof l === 'string') ||
      (e.RepoTags != null && (!Array.isArray(e.RepoTags) || !e.RepoTags.every((t) => typeof t === 'string')))
    ) {
      throw invalid(label, `manifest.json entry ${i} is malformed`);
    }
    return { Config: e.Config, RepoTags: e.RepoTags ?? null, Layers: e.Layers };
  });
}

/** The images `manifest.json` lists; InvalidLayoutError when it is missing or malformed. */
export async function readManifestItems(contents: ArchiveContents, label: string): Promise<ManifestItem[]> {
  const file = contents.file('manifest.json');
  if (!file) {
    throw invalid(label, 'it has no manifest.json (archives older than Docker 1.10 are not supported)');
  }
  return parseItems(await file.read(maxManifestSize), label);
}

/** The fully qualified names an entry is tagged with; tags that do not parse are left out. */
export function itemTags(item: ManifestItem): string[] {
  const out: string[] = [];
  for (const tag of item.RepoTags ?? []) {
    try {
      out.push(parseNormalizedNamed(tag).toString());
    } catch {
      // docker load would refuse it too; it names nothing we can match.
    }
  }
  return out;
}

/** How a reader picks an image of the archive: by tag, by position, or the only one. */
export interface ItemSelector {
  ref: NamedReference | undefined;
  sourceIndex: number | undefined;
}

/**
 * The entry `selector` picks: ManifestUnknownError when no entry has the tag or the position, and
 * InvalidReferenceError when nothing is named and the archive holds several images.
 */
export function selectItem(items: ManifestItem[], selector: ItemSelector, refText: string): ManifestItem {
  if (selector.ref) {
    const wanted = selector.ref.toString();
    const found = items.find((item) => itemTags(item).includes(wanted));
    if (!found) throw new ManifestUnknownError(refText);
    return found;
  }
  if (selector.sourceIndex !== undefined) {
    const found = items[selector.sourceIndex];
    if (!found) {
      throw new ManifestUnknownError(`${refText} (the archive holds ${items.length} images)`);
    }
    return found;
  }
  if (items.length === 1) return items[0]!;
  if (items.length === 0) throw new ManifestUnknownError(`${refText} (the archive holds no image)`);
  throw new InvalidReferenceError(
    refText,
    `the archive holds ${items.length} images: pick one with :name:tag or :@N`,
  );
}

/** An image of an archive, ready to be read: its manifest and where each of its blobs is. */
export interface ArchiveImage {
  manifest: RawManifest;
  digest: Digest;
  configDigest: Digest;
  /** Blobs by digest: the config and each layer. */
  blobs: Map<Digest, ArchiveFile>;
  /** Whether the manifest is stored in the archive (index.json) rather than rebuilt from manifest.json. */
  stored: boolean;
}

/** The manifest stored for `item` in the archive's index.json, when one matches it exactly. */
async function storedManifest(
  contents: ArchiveContents,
  item: ManifestItem,
  configDigest: Digest,
  config: ArchiveFile,
): Promise<ArchiveImage | undefined> {
  const indexFile = contents.file('index.json');
  if (!indexFile) return undefined;
  let entries: Array<{ digest?: unknown; mediaType?: unknown }>;
  try {
    const index = parseJsonObject(await indexFile.read(maxManifestSize));
    entries = Array.isArray(index.manifests) ? index.manifests : [];
  } catch {
    return undefined;
  }
  for (const entry of entries) {
    const mediaType = entry.mediaType;
    if (mediaType !== MediaTypes.dockerV2Schema2 && mediaType !== MediaTypes.ociManifest) continue;
    if (typeof entry.digest !== 'string' || !isDigest(entry.digest)) continue;
    const digest = entry.digest as Digest;
    const file = contents.file(blobEntryName(digest));
    if (!file || file.size > maxManifestSize) continue;
    const bytes = await file.read(maxManifestSize);
    if (computeDigest(bytes, digestAlgorithm(digest)) !== digest) continue;
    let descriptors: ReturnType<typeof manifestDescriptors>;
    try {
      descriptors = manifestDescriptors(bytes, mediaType);
    } catch {
      continue;
    }
    if (descriptors.config?.digest !== configDigest) continue;
    if (descriptors.layers.length !== item.Layers.length) continue;
    const blobs = new Map<Digest, ArchiveFile>([[configDigest, config]]);
    // Each layer of the manifest must be the very file manifest.json names at its position.
    const matches = descriptors.layers.every((layer, i) => {
      const named = contents.file(item.Layers[i]!);
      const stored = contents.file(blobEntryName(layer.digest));
      if (!named || named !== stored || (layer.size !== -1 && layer.size !== named.size)) return false;
      blobs.set(layer.digest, named);
      return true;
    });
    if (matches) return { manifest: { bytes, mediaType }, digest, configDigest, blobs, stored: true };
  }
  return undefined;
}

/** The digest of a file's bytes: known already, stated by its name, or computed by reading it once. */
async function fileDigest(file: ArchiveFile, signal?: AbortSignal): Promise<Digest> {
  if (file.digest) return file.digest;
  const named = digestFromName(file.name);
  if (named) return named;
  const hasher = new DigestingStream();
  await pipeline(file.open(signal), hasher, async (chunks: AsyncIterable<Buffer>) => {
    for await (const _ of chunks) {
      // Only the digest is wanted.
    }
  });
  return hasher.digest;
}

function isGzip(head: Buffer): boolean {
  return head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08;
}

/**
 * Reads the image `item` describes: the manifest stored in index.json when there is one for it,
 * else a Docker schema 2 manifest rebuilt from the config and the layer files as they are (plain
 * tar or gzip; a plain layer's digest is its DiffID from the config, a compressed one's is read).
 */
export async function resolveImage(
  contents: ArchiveContents,
  item: ManifestItem,
  label: string,
  signal?: AbortSignal,
): Promise<ArchiveImage> {
  const config = contents.file(item.Config);
  if (!config) throw invalid(label, `the config "${item.Config}" is missing`);
  const configBytes = await config.read(maxConfigSize);
  const configDigest = computeDigest(configBytes);
  const stored = await storedManifest(contents, item, configDigest, config);
  if (stored) return stored;

  let diffIDs: unknown[] = [];
  try {
    const rootfs = parseJsonObject(configBytes).rootfs as { diff_ids?: unknown } | undefined;
    if (Array.isArray(rootfs?.diff_ids)) diffIDs = rootfs.diff_ids;
  } catch (error) {
    throw invalid(label, `the config "${item.Config}" is not JSON`, error);
  }
  const blobs = new Map<Digest, ArchiveFile>([[configDigest, config]]);
  const layers: BlobInfo[] = [];
  for (const [i, name] of item.Layers.entries()) {
    const file = contents.file(name);
    if (!file) throw invalid(label, `the layer "${name}" is missing`);
    const gzip = isGzip(await file.head());
    const diffID = diffIDs[i];
    // A plain layer is its DiffID (docker save reproduces the exact bytes); the read verifies it.
    const digest =
      !gzip && file.digest === undefined && typeof diffID === 'string' && isDigest(diffID)
        ? (diffID as Digest)
        : await fileDigest(file, signal);
    blobs.set(digest, file);
    layers.push({
      mediaType: gzip ? MediaTypes.dockerLayerGzip : MediaTypes.dockerLayer,
      size: file.size,
      digest,
    });
  }
  // The field order of containers/image's schema 2 manifests.
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.dockerV2Schema2,
      config: { mediaType: MediaTypes.dockerConfig, size: configBytes.length, digest: configDigest },
      layers,
    }),
  );
  return {
    manifest: { bytes, mediaType: MediaTypes.dockerV2Schema2 },
    digest: computeDigest(bytes),
    configDigest,
    blobs,
    stored: false,
  };
}
