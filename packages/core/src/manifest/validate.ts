import type { CompressionName } from '../blob-info-cache.js';
import { type Digest, isDigest } from '../digest.js';
import { InvalidManifestError, UnsupportedMediaTypeError } from '../errors.js';
import type { Platform } from '../types.js';
import { guessMediaType, type ListInstance, parseJsonObject } from './descriptors.js';
import { isSignedSchema1, schema1Payload } from './digest.js';
import { isImageManifestMediaType, isManifestListMediaType, MediaTypes } from './media-types.js';
import {
  type Descriptor,
  deepFreeze,
  type ImageManifest,
  type LayerInfo,
  type ManifestList,
} from './model.js';
import { fixSchema1Entries } from './schema1.js';

/** RFC 6838 §4.2 restricted names: `type/subtype`, each 1–127 characters. */
const mediaTypeSyntax = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

/** Whether the text is a media type as the OCI descriptor spec requires (RFC 6838 §4.2 naming). */
export function isValidMediaType(text: string): boolean {
  return mediaTypeSyntax.test(text);
}

/** A media type without parameters (`; charset=…`) or surrounding space, as HTTP may deliver it. */
export function normalizeMediaType(mediaType: string): string {
  const semicolon = mediaType.indexOf(';');
  return (semicolon === -1 ? mediaType : mediaType.slice(0, semicolon)).trim();
}

/** Whether the media type is Docker schema 1, signed or not. */
export function isSchema1MediaType(mediaType: string): boolean {
  return mediaType === MediaTypes.dockerV2Schema1 || mediaType === MediaTypes.dockerV2Schema1Signed;
}

const gzipLayers: ReadonlySet<string> = new Set([
  MediaTypes.ociLayerGzip,
  MediaTypes.ociLayerNondistributableGzip,
  MediaTypes.dockerLayerGzip,
  MediaTypes.dockerForeignLayerGzip,
]);
const zstdLayers: ReadonlySet<string> = new Set([
  MediaTypes.ociLayerZstd,
  MediaTypes.ociLayerNondistributableZstd,
]);
const plainLayers: ReadonlySet<string> = new Set([
  MediaTypes.ociLayer,
  MediaTypes.ociLayerNondistributable,
  MediaTypes.dockerLayer,
  MediaTypes.dockerForeignLayer,
]);
const dockerLayers: ReadonlySet<string> = new Set([
  MediaTypes.dockerLayer,
  MediaTypes.dockerLayerGzip,
  MediaTypes.dockerForeignLayer,
  MediaTypes.dockerForeignLayerGzip,
]);
const foreignLayers: ReadonlySet<string> = new Set([
  MediaTypes.dockerForeignLayer,
  MediaTypes.dockerForeignLayerGzip,
  MediaTypes.ociLayerNondistributable,
  MediaTypes.ociLayerNondistributableGzip,
  MediaTypes.ociLayerNondistributableZstd,
]);

/**
 * The compression a layer media type states: `unknown` for anything that is not an OCI or Docker
 * layer type (an artifact's blobs, encrypted layers).
 */
export function layerCompression(mediaType: string): CompressionName {
  if (gzipLayers.has(mediaType)) return 'gzip';
  if (zstdLayers.has(mediaType)) return 'zstd';
  if (plainLayers.has(mediaType)) return 'none';
  return 'unknown';
}

/** Whether a layer media type is Docker "foreign" or OCI "non-distributable" (a layer fetched from its `urls`). */
export function isForeignLayerMediaType(mediaType: string): boolean {
  return foreignLayers.has(mediaType);
}

/** Whether a layer media type is one Docker schema 2 allows. */
export function isDockerLayerMediaType(mediaType: string): boolean {
  return dockerLayers.has(mediaType);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringMap(value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  // OCI image-spec, "Annotations" rules: a map whose keys and values are strings.
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw new InvalidManifestError(`${where} is not a map of strings`);
  }
  return { ...(value as Record<string, string>) };
}

function optionalString(value: unknown, where: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new InvalidManifestError(`${where} is not a string`);
  return value;
}

function mediaTypeField(value: unknown, where: string): string {
  if (typeof value !== 'string' || !isValidMediaType(value)) {
    throw new InvalidManifestError(`${where} has an invalid mediaType ${JSON.stringify(value)}`);
  }
  return value;
}

/** Parses and validates one descriptor (OCI image-spec, "Descriptor"; Docker schema 2 uses a subset). */
function parseDescriptor(value: unknown, where: string): Descriptor {
  if (!isObject(value)) throw new InvalidManifestError(`${where} is not an object`);
  const d = value;
  const mediaType = mediaTypeField(d.mediaType, where);
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) {
    throw new InvalidManifestError(`${where} has an invalid digest ${JSON.stringify(d.digest)}`);
  }
  // "Descriptor" `size`: an int64 that MUST NOT be negative.
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new InvalidManifestError(`${where} has an invalid size ${JSON.stringify(d.size)}`);
  }
  const out: Descriptor = { digest: d.digest as Digest, size: d.size, mediaType };
  if (d.urls !== undefined && d.urls !== null) {
    if (!Array.isArray(d.urls) || !d.urls.every((u) => typeof u === 'string')) {
      throw new InvalidManifestError(`${where}.urls is not an array of strings`);
    }
    out.urls = [...(d.urls as string[])];
  }
  const annotations = stringMap(d.annotations, `${where}.annotations`);
  if (annotations) out.annotations = annotations;
  const artifactType = optionalString(d.artifactType, `${where}.artifactType`);
  if (artifactType !== undefined) out.artifactType = mediaTypeField(artifactType, `${where}.artifactType`);
  const data = optionalString(d.data, `${where}.data`);
  if (data !== undefined) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data) || data.length % 4 !== 0) {
      throw new InvalidManifestError(`${where}.data is not base64`);
    }
    out.data = data;
  }
  return out;
}

function parsePlatform(value: unknown, where: string): Platform {
  if (!isObject(value)) throw new InvalidManifestError(`${where} is not an object`);
  // OCI image-spec, "Image Index Property Descriptions": architecture and os are REQUIRED.
  if (typeof value.architecture !== 'string')
    throw new InvalidManifestError(`${where}.architecture is not a string`);
  if (typeof value.os !== 'string') throw new InvalidManifestError(`${where}.os is not a string`);
  const platform: Platform = { architecture: value.architecture, os: value.os };
  const osVersion = optionalString(value['os.version'], `${where}["os.version"]`);
  if (osVersion !== undefined) platform['os.version'] = osVersion;
  const features = value['os.features'];
  if (features !== undefined && features !== null) {
    if (!Array.isArray(features) || !features.every((f) => typeof f === 'string')) {
      throw new InvalidManifestError(`${where}["os.features"] is not an array of strings`);
    }
    platform['os.features'] = [...(features as string[])];
  }
  const variant = optionalString(value.variant, `${where}.variant`);
  if (variant !== undefined && variant !== '') platform.variant = variant;
  return platform;
}

const kindFields = ['config', 'fsLayers', 'history', 'layers', 'manifests'] as const;

/** Refuses a document that also has the defining fields of another manifest kind (containers/image's ambiguity check). */
function refuseAmbiguous(json: Record<string, unknown>, mediaType: string, allowed: readonly string[]): void {
  const unexpected = kindFields.filter(
    (f) => json[f] !== undefined && json[f] !== null && !allowed.includes(f),
  );
  if (unexpected.length > 0) {
    throw new InvalidManifestError(
      `ambiguous manifest: fields ${unexpected.join(', ')} are not expected in ${mediaType}`,
    );
  }
}

function checkSchemaVersion(json: Record<string, unknown>, expected: 1 | 2, mediaType: string): void {
  if (json.schemaVersion !== expected) {
    throw new InvalidManifestError(
      `schemaVersion ${JSON.stringify(json.schemaVersion)} in ${mediaType}, expected ${expected}`,
    );
  }
}

/** Refuses a declared `mediaType` other than the one the manifest is read as; Docker formats must declare it. */
function checkDeclaredMediaType(json: Record<string, unknown>, mediaType: string): void {
  const declared = json.mediaType;
  if (declared === undefined || declared === null) {
    // Docker image manifest V2 schema 2 and manifest list: `mediaType` is a required field. OCI
    // makes it optional; schema 1 has none.
    if (mediaType === MediaTypes.dockerV2Schema2 || mediaType === MediaTypes.dockerV2List) {
      throw new InvalidManifestError(`a ${mediaType} manifest must declare its mediaType`);
    }
    return;
  }
  if (typeof declared !== 'string') throw new InvalidManifestError('"mediaType" is not a string');
  const same = declared === mediaType || (isSchema1MediaType(declared) && isSchema1MediaType(mediaType));
  if (!same)
    throw new InvalidManifestError(`declares mediaType "${declared}" but was read as "${mediaType}"`);
}

function resolveMediaType(bytes: Uint8Array, mediaType: string | undefined): string {
  return mediaType === undefined ? guessMediaType(bytes) : normalizeMediaType(mediaType);
}

/**
 * Parses and strictly validates a single-image manifest: OCI image manifest, Docker schema 2, or
 * Docker schema 1 (signed or not). Without `mediaType`, the type is guessed from the bytes.
 *
 * Throws UnsupportedMediaTypeError for a media type that is not an image manifest img knows (and for
 * a Docker schema 2 layer of a non-Docker type), InvalidManifestError for anything malformed: a
 * declared `mediaType` other than the one asked for, a wrong `schemaVersion`, a missing field, a bad
 * digest or size, or fields of another manifest kind.
 *
 * @example
 * const m = parseImageManifest(raw.bytes, raw.mediaType);
 * for (const layer of m.layers) console.log(layer.digest, layerCompression(layer.mediaType ?? ''));
 */
export function parseImageManifest(bytes: Uint8Array, mediaType?: string): ImageManifest {
  const json = parseJsonObject(bytes);
  const type = resolveMediaType(bytes, mediaType);
  if (isManifestListMediaType(type)) {
    throw new InvalidManifestError(`"${type}" is a manifest list, not a single-image manifest`);
  }
  if (!isImageManifestMediaType(type)) throw new UnsupportedMediaTypeError(type);
  checkDeclaredMediaType(json, type);
  const raw = new Uint8Array(bytes);
  if (isSchema1MediaType(type)) return deepFreeze(parseSchema1(json, type, bytes, raw));

  checkSchemaVersion(json, 2, type);
  refuseAmbiguous(json, type, ['config', 'layers']);
  const config = parseDescriptor(json.config, 'config');
  if (!Array.isArray(json.layers)) throw new InvalidManifestError('manifest without "layers"');
  const layers: LayerInfo[] = json.layers.map((l: unknown, i) => parseDescriptor(l, `layers[${i}]`));

  if (type === MediaTypes.dockerV2Schema2) {
    // Docker image manifest V2 schema 2, "Image Manifest Field Descriptions": layers are one of the
    // rootfs diff types (containers/image refuses any other).
    layers.forEach((l) => {
      if (!isDockerLayerMediaType(l.mediaType as string))
        throw new UnsupportedMediaTypeError(l.mediaType as string, 'layer');
      delete l.annotations;
      delete l.artifactType;
      delete l.data;
    });
    const docker: ImageManifest = {
      mediaType: type,
      schemaVersion: 2,
      config: dockerDescriptor(config),
      layers,
      raw,
    };
    return deepFreeze(docker);
  }

  const manifest: {
    -readonly [K in keyof ImageManifest]: ImageManifest[K];
  } = { mediaType: type, schemaVersion: 2, config, layers, raw };
  const annotations = stringMap(json.annotations, 'annotations');
  if (annotations) manifest.annotations = annotations;
  if (json.subject !== undefined && json.subject !== null)
    manifest.subject = parseDescriptor(json.subject, 'subject');
  const artifactType = optionalString(json.artifactType, 'artifactType');
  if (artifactType !== undefined) manifest.artifactType = mediaTypeField(artifactType, 'artifactType');
  return deepFreeze(manifest);
}

/** Docker schema 2 descriptors have no annotations, artifactType or data. */
function dockerDescriptor(d: Descriptor): Descriptor {
  const out: Descriptor = { digest: d.digest, size: d.size };
  if (d.mediaType !== undefined) out.mediaType = d.mediaType;
  if (d.urls) out.urls = d.urls;
  return out;
}

function parseSchema1(
  json: Record<string, unknown>,
  type: string,
  bytes: Uint8Array,
  raw: Uint8Array,
): ImageManifest {
  checkSchemaVersion(json, 1, type);
  refuseAmbiguous(json, type, ['fsLayers', 'history']);
  const signed = isSignedSchema1(json);
  // A signature block that cannot be parsed leaves no way to compute the manifest's digest.
  if (signed) schema1Payload(bytes, json);
  const entries = fixSchema1Entries(json.fsLayers, json.history);
  const layers: LayerInfo[] = entries.fsLayers
    .map((digest, i) => ({ digest, size: -1, emptyLayer: entries.compat[i]?.throwaway === true }))
    .reverse();
  return {
    mediaType: type,
    schemaVersion: 1,
    config: undefined,
    layers,
    schema1: {
      name: optionalString(json.name, 'name') ?? '',
      tag: optionalString(json.tag, 'tag') ?? '',
      architecture: optionalString(json.architecture, 'architecture') ?? '',
      fsLayers: entries.fsLayers,
      history: entries.history,
      signed,
    },
    raw,
  };
}

/**
 * Parses and strictly validates a Docker manifest list or OCI image index. Without `mediaType`, the
 * type is guessed from the bytes. Errors as {@link parseImageManifest}.
 */
export function parseManifestList(bytes: Uint8Array, mediaType?: string): ManifestList {
  const json = parseJsonObject(bytes);
  const type = resolveMediaType(bytes, mediaType);
  if (isImageManifestMediaType(type))
    throw new InvalidManifestError(`"${type}" is a single-image manifest, not a list`);
  if (!isManifestListMediaType(type)) throw new UnsupportedMediaTypeError(type);
  checkDeclaredMediaType(json, type);
  checkSchemaVersion(json, 2, type);
  refuseAmbiguous(json, type, ['manifests']);
  // OCI image-spec, "Image Index Property Descriptions": `manifests` MUST be present, MAY be empty.
  if (!Array.isArray(json.manifests)) throw new InvalidManifestError('a list without "manifests"');
  const docker = type === MediaTypes.dockerV2List;
  const manifests = json.manifests.map((m: unknown, i) => {
    const where = `manifests[${i}]`;
    const d = parseDescriptor(m, where);
    const entry: ListInstance = docker ? dockerDescriptor(d) : d;
    const platform = (m as { platform?: unknown }).platform;
    if (platform !== undefined && platform !== null)
      entry.platform = parsePlatform(platform, `${where}.platform`);
    return entry;
  });
  const list: { -readonly [K in keyof ManifestList]: ManifestList[K] } = {
    mediaType: type,
    schemaVersion: 2,
    manifests,
    raw: new Uint8Array(bytes),
  };
  if (!docker) {
    const annotations = stringMap(json.annotations, 'annotations');
    if (annotations) list.annotations = annotations;
    if (json.subject !== undefined && json.subject !== null)
      list.subject = parseDescriptor(json.subject, 'subject');
    const artifactType = optionalString(json.artifactType, 'artifactType');
    if (artifactType !== undefined) list.artifactType = mediaTypeField(artifactType, 'artifactType');
  }
  return deepFreeze(list);
}
