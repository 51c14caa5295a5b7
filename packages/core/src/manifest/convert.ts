import { type Digest, isDigest } from '../digest.js';
import { ManifestConversionError, UnsupportedMediaTypeError } from '../errors.js';
import type { BlobInfo, Platform } from '../types.js';
import type { ListInstance } from './descriptors.js';
import { GoMap, type GoValue, goMarshalBytes, RawJson, rawMembers } from './go-json.js';
import { isImageManifestMediaType, isManifestListMediaType, MediaTypes } from './media-types.js';
import type { Descriptor, ImageManifest, LayerInfo, ManifestList } from './model.js';
import { hostPlatform } from './platform.js';
import { parseV1Compatibility } from './schema1.js';
import {
  isForeignLayerMediaType,
  isSchema1MediaType,
  layerCompression,
  normalizeMediaType,
} from './validate.js';

/** What {@link convertManifest} replaces while converting. */
export interface ConvertOptions {
  /**
   * Replacement layer infos, base first, e.g. after recompression: one per layer of the manifest,
   * leaving out schema 1 empty layers (a schema 1 list that includes them is accepted too). A
   * replacement's `mediaType` (of any format) states its compression; without one the original
   * layer's compression is kept. `urls` and `annotations` replace the original's when given.
   */
  layers?: readonly BlobInfo[];
  /** The config blob; required when converting from schema 1 (the bytes {@link schema1ToConfig} built). */
  config?: BlobInfo;
}

/**
 * The layer media type for a compression in a manifest format: OCI and Docker schema 2 types (Docker
 * "foreign" and OCI "non-distributable" with `foreign`), and for schema 1, which states none, the
 * Docker type describing the blob. Throws ManifestConversionError for zstd in a Docker format.
 */
export function layerMediaType(
  manifestMediaType: string,
  compression: 'gzip' | 'zstd' | 'none',
  foreign = false,
): string {
  const type = normalizeMediaType(manifestMediaType);
  if (type === MediaTypes.ociManifest) {
    // OCI image-spec, "Image Layer Filesystem Changeset" media types (non-distributable ones deprecated but readable).
    if (compression === 'gzip')
      return foreign ? MediaTypes.ociLayerNondistributableGzip : MediaTypes.ociLayerGzip;
    if (compression === 'zstd')
      return foreign ? MediaTypes.ociLayerNondistributableZstd : MediaTypes.ociLayerZstd;
    return foreign ? MediaTypes.ociLayerNondistributable : MediaTypes.ociLayer;
  }
  if (type === MediaTypes.dockerV2Schema2 || isSchema1MediaType(type)) {
    if (compression === 'zstd')
      throw new ManifestConversionError(`zstd compression is not supported in ${type}`);
    if (isSchema1MediaType(type))
      return compression === 'gzip' ? MediaTypes.dockerLayerGzip : MediaTypes.dockerLayer;
    if (compression === 'gzip')
      return foreign ? MediaTypes.dockerForeignLayerGzip : MediaTypes.dockerLayerGzip;
    return foreign ? MediaTypes.dockerForeignLayer : MediaTypes.dockerLayer;
  }
  throw new UnsupportedMediaTypeError(type);
}

function configTypeFor(target: string): string {
  return target === MediaTypes.ociManifest ? MediaTypes.ociConfig : MediaTypes.dockerConfig;
}

/** The media type a layer gets in the target format, from the replacement's type or else the original's. */
function targetLayerType(target: string, original: LayerInfo, replacement: BlobInfo | undefined): string {
  // Schema 1 states no layer types; its layers are gzip tarballs (containers/image assumes the same).
  const stated = replacement?.mediaType ?? original.mediaType ?? MediaTypes.dockerLayerGzip;
  const compression = layerCompression(stated);
  if (compression === 'unknown') {
    // OCI image-spec, "Image Manifest Property Descriptions": implementations copying manifests
    // MUST NOT error on an unknown layer mediaType; Docker schema 2 has no room for one.
    if (target === MediaTypes.ociManifest) return stated;
    throw new ManifestConversionError(
      `layer ${replacement?.digest ?? original.digest} has media type "${stated}", which ${target} cannot carry`,
    );
  }
  return layerMediaType(target, compression, isForeignLayerMediaType(stated));
}

function checkBlob(d: BlobInfo, where: string): void {
  if (!isDigest(d.digest)) throw new ManifestConversionError(`${where} has an invalid digest "${d.digest}"`);
  if (!Number.isSafeInteger(d.size) || d.size < 0) {
    throw new ManifestConversionError(`${where} ${d.digest} has an unknown size; a manifest needs it`);
  }
}

function nonEmptyMap(map: Readonly<Record<string, string>> | undefined): GoMap | undefined {
  return map && Object.keys(map).length > 0 ? new GoMap(map) : undefined;
}

function nonEmptyList<T>(list: readonly T[] | undefined): readonly T[] | undefined {
  return list && list.length > 0 ? list : undefined;
}

/** OCI image-spec `Platform` in struct order: architecture, os, os.version, os.features, variant. */
function ociPlatformJson(p: Platform): GoValue {
  return {
    architecture: p.architecture,
    os: p.os,
    'os.version': p['os.version'] || undefined,
    'os.features': nonEmptyList(p['os.features']),
    variant: p.variant || undefined,
  };
}

/** OCI image-spec `Descriptor` in struct order: mediaType, digest, size, urls, annotations, data, platform, artifactType. */
function ociDescriptorJson(d: Descriptor & { platform?: Platform }): GoValue {
  return {
    mediaType: d.mediaType ?? '',
    digest: d.digest,
    size: d.size,
    urls: nonEmptyList(d.urls),
    annotations: nonEmptyMap(d.annotations),
    data: d.data || undefined,
    platform: d.platform ? ociPlatformJson(d.platform) : undefined,
    artifactType: d.artifactType || undefined,
  };
}

/** Docker schema 2 descriptor in containers/image's struct order: mediaType, size, digest, urls. */
function dockerDescriptorJson(d: BlobInfo): { [key: string]: GoValue } {
  return { mediaType: d.mediaType ?? '', size: d.size, digest: d.digest, urls: nonEmptyList(d.urls) };
}

interface ImageParts {
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Readonly<Record<string, string>> | undefined;
  subject?: Readonly<Descriptor> | undefined;
  artifactType?: string | undefined;
}

function serializeImage(target: string, parts: ImageParts): Uint8Array {
  checkBlob(parts.config, 'config');
  for (const [i, l] of parts.layers.entries()) checkBlob(l, `layer ${i}`);
  if (target === MediaTypes.ociManifest) {
    // OCI image-spec `Manifest` struct order: schemaVersion, mediaType, artifactType, config, layers, subject, annotations.
    return goMarshalBytes({
      schemaVersion: 2,
      mediaType: target,
      artifactType: parts.artifactType || undefined,
      config: ociDescriptorJson(parts.config),
      layers: parts.layers.map(ociDescriptorJson),
      subject: parts.subject ? ociDescriptorJson(parts.subject) : undefined,
      annotations: nonEmptyMap(parts.annotations),
    });
  }
  // Docker image manifest V2 schema 2: schemaVersion, mediaType, config, layers; no annotations.
  return goMarshalBytes({
    schemaVersion: 2,
    mediaType: target,
    config: dockerDescriptorJson(parts.config),
    layers: parts.layers.map(dockerDescriptorJson),
  });
}

function replacedLayer(target: string, original: LayerInfo, replacement: BlobInfo | undefined): Descriptor {
  const out: Descriptor = {
    mediaType: targetLayerType(target, original, replacement),
    digest: replacement?.digest ?? original.digest,
    size: replacement?.size ?? original.size,
  };
  const urls = replacement?.urls ?? original.urls;
  if (urls) out.urls = [...urls];
  const annotations = replacement?.annotations ?? original.annotations;
  if (annotations) out.annotations = { ...annotations };
  // `data` embeds the blob itself, so it survives only while the blob does.
  if (out.digest === original.digest) {
    if (original.data !== undefined) out.data = original.data;
    if (original.artifactType !== undefined) out.artifactType = original.artifactType;
  }
  return out;
}

function requireImageConfig(m: ImageManifest): Descriptor {
  const config = m.config as Descriptor;
  const expected = configTypeFor(m.mediaType);
  if (config.mediaType !== expected) {
    throw new ManifestConversionError(
      `cannot convert ${m.mediaType} with config type "${config.mediaType}" (not a container image) to another format`,
    );
  }
  return config;
}

function fromSchema1(m: ImageManifest, target: string, options: ConvertOptions): Uint8Array {
  if (!options.config) {
    throw new ManifestConversionError(
      `converting schema 1 to ${target} needs the config blob built by schema1ToConfig`,
    );
  }
  const indexes = m.layers.flatMap((l, i) => (l.emptyLayer ? [] : [i]));
  let replacements: readonly (BlobInfo | undefined)[] = indexes.map(() => undefined);
  if (options.layers) {
    if (options.layers.length === indexes.length) replacements = options.layers;
    else if (options.layers.length === m.layers.length)
      replacements = indexes.map((i) => options.layers?.[i]);
    else {
      throw new ManifestConversionError(
        `layer count changed from ${indexes.length} (${m.layers.length} with empty layers) to ${options.layers.length}`,
      );
    }
  }
  // containers/image's schema 1 → schema 2 conversion (after docker's pull code): one layer per
  // non-throwaway history entry; OCI goes through schema 2.
  const layers = indexes.map((index, i) =>
    replacedLayer(target, m.layers[index] as LayerInfo, replacements[i]),
  );
  const config: Descriptor = {
    mediaType: configTypeFor(target),
    digest: options.config.digest,
    size: options.config.size,
  };
  return serializeImage(target, { config, layers });
}

function rebuild(m: ImageManifest, target: string, options: ConvertOptions): Uint8Array {
  if (isSchema1MediaType(m.mediaType)) return fromSchema1(m, target, options);
  if (options.layers && options.layers.length !== m.layers.length) {
    throw new ManifestConversionError(
      `layer count changed from ${m.layers.length} to ${options.layers.length}`,
    );
  }
  const layers = m.layers.map((l, i) => replacedLayer(target, l, options.layers?.[i]));
  if (target === m.mediaType) {
    const original = m.config as Descriptor;
    const config: Descriptor = options.config
      ? { mediaType: original.mediaType ?? '', ...options.config }
      : original;
    return serializeImage(target, {
      config,
      layers,
      annotations: m.annotations,
      subject: m.subject,
      artifactType: m.artifactType,
    });
  }
  // Docker schema 2 ↔ OCI: the same image with other media types; containers/image refuses to turn
  // an OCI artifact into a Docker image. Annotations, subject and artifactType have no Docker field.
  const original = requireImageConfig(m);
  const source = options.config ?? original;
  const config: Descriptor = { mediaType: configTypeFor(target), digest: source.digest, size: source.size };
  if (source.urls) config.urls = [...source.urls];
  return serializeImage(target, { config, layers });
}

/**
 * Converts an image manifest to another format, optionally replacing its layers (and config), and
 * returns the new manifest bytes, serialised as containers/image does (compact Go JSON), so that the
 * same conversion always gives the same bytes and digest.
 *
 * Docker schema 2 ↔ OCI maps the config and layer types (gzip ↔ gzip, tar ↔ tar, Docker foreign ↔
 * OCI non-distributable) and keeps the config digest: pass `options.config` to use a re-encoded
 * config. Going to Docker drops annotations, `subject` and `artifactType`, and refuses zstd layers
 * and OCI artifacts. Schema 1 converts to either with `options.config` from {@link schema1ToConfig};
 * converting to schema 1 is not supported (it needs a new signature), except a schema 1 manifest
 * left unchanged. A manifest converted to its own type without options comes back byte for byte.
 *
 * @example
 * const oci = convertManifest(parseImageManifest(bytes), MediaTypes.ociManifest);
 */
export function convertManifest(
  m: ImageManifest,
  targetMediaType: string,
  options: ConvertOptions = {},
): Uint8Array {
  const target = normalizeMediaType(targetMediaType);
  if (isManifestListMediaType(target)) {
    throw new ManifestConversionError(`cannot convert ${m.mediaType} to "${target}", which is a list type`);
  }
  if (!isImageManifestMediaType(target)) throw new UnsupportedMediaTypeError(target);
  const unchanged = options.layers === undefined && options.config === undefined;
  if (isSchema1MediaType(target)) {
    if (
      isSchema1MediaType(m.mediaType) &&
      (unchanged || (options.config === undefined && sameLayers(m, options.layers ?? [])))
    ) {
      return new Uint8Array(m.raw);
    }
    throw new ManifestConversionError(`converting to ${target} is not supported`);
  }
  if (target === m.mediaType && unchanged) return new Uint8Array(m.raw);
  return rebuild(m, target, options);
}

function sameLayers(m: ImageManifest, layers: readonly BlobInfo[]): boolean {
  return layers.length === m.layers.length && layers.every((l, i) => l.digest === m.layers[i]?.digest);
}

/**
 * The manifest with its layers replaced, in its own format (see {@link ConvertOptions.layers}): used
 * when layers were recompressed or decompressed on the way. For schema 1, whose edits would need a
 * new signature, only an unchanged list of layers (empty layers included) is accepted.
 */
export function updateLayerInfos(m: ImageManifest, layers: readonly BlobInfo[]): Uint8Array {
  if (isSchema1MediaType(m.mediaType)) {
    if (sameLayers(m, layers)) return new Uint8Array(m.raw);
    throw new ManifestConversionError(`editing the layers of a ${m.mediaType} manifest is not supported`);
  }
  return rebuild(m, m.mediaType, { layers });
}

/** Top-level v1Compatibility members that describe the v1 layer, not the image (containers/image drops them). */
const v1OnlyFields: ReadonlySet<string> = new Set([
  'id',
  'parent',
  'parent_id',
  'layer_id',
  'throwaway',
  'Size',
]);

/**
 * The image config for a schema 1 manifest, as containers/image builds it for schema 1 → 2
 * conversion: the newest `v1Compatibility` entry without its v1-only fields, plus `rootfs` with
 * `diff_ids` (one per non-empty layer, base first) and a `history` rebuilt from every entry (with
 * `empty_layer` for throwaway ones). Keys come out sorted and compact, as Go writes them.
 */
export function schema1ToConfig(m: ImageManifest, diffIDs: readonly Digest[]): Uint8Array {
  if (!m.schema1)
    throw new ManifestConversionError(`schema1ToConfig needs a schema 1 manifest, not ${m.mediaType}`);
  const nonEmpty = m.layers.filter((l) => !l.emptyLayer).length;
  if (diffIDs.length !== nonEmpty) {
    throw new ManifestConversionError(`${diffIDs.length} diff IDs for ${nonEmpty} non-empty schema 1 layers`);
  }
  diffIDs.forEach((d) => {
    if (!isDigest(d)) throw new ManifestConversionError(`invalid diff ID "${d}"`);
  });
  const history = m.schema1.history.map((h, i) => parseV1Compatibility(h, `history[${i}]`)).reverse();
  // docker image config ("Image JSON Description") `history` entries, in docker's struct order.
  const converted = history.map((c) => ({
    created: c.created,
    author: c.author || undefined,
    created_by: c.cmd.join(' ') || undefined,
    comment: c.comment || undefined,
    empty_layer: c.throwaway || undefined,
  }));
  const members: Record<string, GoValue> = {};
  for (const [key, raw] of rawMembers(m.schema1.history[0] as string)) {
    if (!v1OnlyFields.has(key)) members[key] = new RawJson(raw);
  }
  members.rootfs = { type: 'layers', diff_ids: nonEmptyList(diffIDs) };
  members.history = converted;
  return goMarshalBytes(new GoMap(members));
}

/**
 * Converts a Docker manifest list to an OCI image index or back, keeping every instance as it is
 * (the copy engine updates instance types when it converts the instances). Going to Docker drops
 * annotations, `subject` and `artifactType`, and an index entry without a platform gets the host's
 * OS and architecture, as containers/image does; Docker's `features` is dropped going to OCI. A list
 * converted to its own type comes back byte for byte.
 */
export function convertManifestList(list: ManifestList, targetMediaType: string): Uint8Array {
  const target = normalizeMediaType(targetMediaType);
  if (!isManifestListMediaType(target)) {
    if (isImageManifestMediaType(target)) {
      throw new ManifestConversionError(
        `cannot convert a manifest list to "${target}", which is not a list type`,
      );
    }
    throw new UnsupportedMediaTypeError(target);
  }
  if (target === list.mediaType) return new Uint8Array(list.raw);
  for (const [i, d] of list.manifests.entries()) checkBlob(d, `manifests[${i}]`);
  if (target === MediaTypes.ociIndex) {
    // Docker list entries always carry a platform; containers/image writes it even when empty.
    return goMarshalBytes({
      schemaVersion: 2,
      mediaType: target,
      manifests: list.manifests.map((d: ListInstance) =>
        ociDescriptorJson({
          digest: d.digest,
          size: d.size,
          ...(d.mediaType !== undefined ? { mediaType: d.mediaType } : {}),
          ...(d.urls ? { urls: d.urls } : {}),
          platform: d.platform ?? { architecture: '', os: '' },
        }),
      ),
    });
  }
  const host = hostPlatform();
  return goMarshalBytes({
    schemaVersion: 2,
    mediaType: target,
    manifests: list.manifests.map((d: ListInstance) => ({
      ...dockerDescriptorJson(d),
      // Docker's platform has the OCI fields in the same order, plus `features`, which img does not keep.
      platform: ociPlatformJson(d.platform ?? { architecture: host.architecture, os: host.os }),
    })),
  });
}
