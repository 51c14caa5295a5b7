import { type Digest, isDigest } from '../digest.js';
import { InvalidManifestError, TooLargeError, UnsupportedMediaTypeError } from '../errors.js';
import type { BlobInfo, Platform } from '../types.js';
import { isManifestListMediaType, MediaTypes } from './media-types.js';

/** Manifests (and configs) larger than this are refused, as containers/image does. */
export const maxManifestSize = 4 * 1024 * 1024;

/** A list entry: an instance manifest and the platform it is for. */
export interface ListInstance extends BlobInfo {
  platform?: Platform;
}

/** The blobs and instances a manifest points at. */
export interface ManifestDescriptors {
  mediaType: string;
  /** The config blob; absent for schema 1 and for lists. */
  config?: BlobInfo;
  /** Layers, base first; empty for lists. */
  layers: BlobInfo[];
  /** Instances; lists only. */
  manifests: ListInstance[];
}

/** Parses bytes as a JSON object, failing with InvalidManifestError (or TooLargeError over `limit`). */
export function parseJsonObject(
  bytes: Uint8Array,
  what = 'manifest',
  limit = maxManifestSize,
): Record<string, unknown> {
  if (bytes.byteLength > limit) throw new TooLargeError(what, limit);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (error) {
    throw new InvalidManifestError(`${what} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidManifestError(`${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * The media type of a manifest, from its bytes: the `mediaType` field where there is one, else the
 * shape (schemaVersion 1 with or without signatures, an index's `manifests`, an image's `config`).
 */
export function guessMediaType(bytes: Uint8Array): string {
  const json = parseJsonObject(bytes);
  if (typeof json.mediaType === 'string' && json.mediaType !== '') return json.mediaType;
  if (json.schemaVersion === 1) {
    return Array.isArray(json.signatures) ? MediaTypes.dockerV2Schema1Signed : MediaTypes.dockerV2Schema1;
  }
  if (json.schemaVersion === 2) {
    if (Array.isArray(json.manifests)) return MediaTypes.ociIndex;
    if (typeof json.config === 'object' && json.config !== null) {
      const configType = (json.config as { mediaType?: unknown }).mediaType;
      return configType === MediaTypes.dockerConfig ? MediaTypes.dockerV2Schema2 : MediaTypes.ociManifest;
    }
  }
  throw new InvalidManifestError('cannot tell the manifest type: no mediaType and an unknown shape');
}

function descriptor(value: unknown, where: string): BlobInfo {
  if (typeof value !== 'object' || value === null)
    throw new InvalidManifestError(`${where} is not an object`);
  const d = value as Record<string, unknown>;
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) {
    throw new InvalidManifestError(`${where} has an invalid digest ${JSON.stringify(d.digest)}`);
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new InvalidManifestError(`${where} has an invalid size ${JSON.stringify(d.size)}`);
  }
  const info: BlobInfo = { digest: d.digest as Digest, size: d.size };
  if (typeof d.mediaType === 'string') info.mediaType = d.mediaType;
  if (d.annotations && typeof d.annotations === 'object')
    info.annotations = d.annotations as Record<string, string>;
  if (Array.isArray(d.urls)) info.urls = d.urls.filter((u): u is string => typeof u === 'string');
  return info;
}

/** The config, layers and instances a manifest names, validated enough to be followed safely. */
export function manifestDescriptors(
  bytes: Uint8Array,
  mediaType: string = guessMediaType(bytes),
): ManifestDescriptors {
  const json = parseJsonObject(bytes);
  if (isManifestListMediaType(mediaType)) {
    if (!Array.isArray(json.manifests)) throw new InvalidManifestError('a list without "manifests"');
    const manifests = json.manifests.map((m, i) => {
      const entry: ListInstance = descriptor(m, `manifests[${i}]`);
      const platform = (m as { platform?: unknown }).platform;
      if (platform && typeof platform === 'object') entry.platform = platform as Platform;
      return entry;
    });
    return { mediaType, layers: [], manifests };
  }
  if (mediaType === MediaTypes.ociManifest || mediaType === MediaTypes.dockerV2Schema2) {
    if (!Array.isArray(json.layers)) throw new InvalidManifestError('a manifest without "layers"');
    return {
      mediaType,
      config: descriptor(json.config, 'config'),
      layers: json.layers.map((l, i) => descriptor(l, `layers[${i}]`)),
      manifests: [],
    };
  }
  if (mediaType === MediaTypes.dockerV2Schema1 || mediaType === MediaTypes.dockerV2Schema1Signed) {
    if (!Array.isArray(json.fsLayers))
      throw new InvalidManifestError('a schema 1 manifest without "fsLayers"');
    // Schema 1 lists layers top-most first.
    const layers = json.fsLayers
      .map((l, i) => {
        const sum = (l as { blobSum?: unknown }).blobSum;
        if (typeof sum !== 'string' || !isDigest(sum))
          throw new InvalidManifestError(`fsLayers[${i}] has an invalid blobSum`);
        return { digest: sum as Digest, size: -1 };
      })
      .reverse();
    return { mediaType, layers, manifests: [] };
  }
  throw new UnsupportedMediaTypeError(mediaType);
}
