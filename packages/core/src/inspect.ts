import type { Readable } from 'node:stream';
import { type Digest, digestAlgorithm, verifyBytes } from './digest.js';
import { DigestMismatchError, InvalidManifestError, NotSupportedError, TooLargeError } from './errors.js';
import { guessMediaType, maxManifestSize, parseJsonObject } from './manifest/descriptors.js';
import { manifestDigest, matchesDigest } from './manifest/digest.js';
import { compareUtf8 } from './manifest/go-json.js';
import { isManifestListMediaType } from './manifest/media-types.js';
import type { ImageManifest, LayerInfo } from './manifest/model.js';
import { chooseInstance } from './manifest/platform.js';
import { goTime } from './manifest/schema1.js';
import { parseImageManifest, parseManifestList } from './manifest/validate.js';
import type { BlobInfo, ImageSource, OperationOptions, RawManifest, SystemContext } from './types.js';

/** Options of {@link inspectImage} and {@link getImageConfig}. */
export interface InspectOptions extends OperationOptions {
  /** The platform to choose from a manifest list (`osChoice`, `architectureChoice`, `variantChoice`). */
  ctx?: SystemContext;
}

/** One layer as `skopeo inspect` reports it in `LayersData`. */
export interface InspectedLayer {
  /** The layer's media type; empty when the manifest does not say (schema 1). */
  MIMEType: string;
  Digest: Digest;
  /** Size in bytes, -1 when the manifest does not say (schema 1). */
  Size: number;
  /** The descriptor's annotations, keys sorted; null when there are none. */
  Annotations: Record<string, string> | null;
}

/**
 * What `skopeo inspect` prints for an image, with its key names and key order. Maps (`Labels`,
 * `Annotations`) have their keys sorted byte-wise, as Go writes them; absent values are null as
 * Go's nil slices and maps are.
 */
export interface ImageInspection {
  /** The docker reference name (`docker.io/library/busybox`); absent when the transport has none. */
  Name?: string;
  /** Schema 1 only: the tag the manifest names. */
  Tag?: string;
  /** The digest of the manifest as read: for a list, the list's digest (the rest describes the chosen instance). */
  Digest: Digest;
  /** Tags of the repository; always empty here (only a registry can list them). */
  RepoTags: string[];
  /** The creation time, RFC 3339 as Go writes it; null when the config has none. */
  Created: string | null;
  DockerVersion: string;
  Labels: Record<string, string> | null;
  Architecture: string;
  /** The CPU variant, present only when the config states one. */
  Variant?: string;
  Os: string;
  /** Layer digests, base first. */
  Layers: Digest[];
  LayersData: InspectedLayer[];
  Env: string[] | null;
}

/** An image's config as {@link getImageConfig} reads it. */
export interface ImageConfig {
  /** The config blob exactly as stored (its digest verified). */
  bytes: Uint8Array;
  /** The same, parsed. */
  config: Record<string, unknown>;
}

/** The single image a reference resolves to, after choosing from a list. */
interface ResolvedImage {
  /** The top-level manifest as read. */
  top: RawManifest;
  /** The image manifest: the top-level one, or the instance of the list chosen for the platform. */
  image: ImageManifest;
}

async function resolveImage(source: ImageSource, options: InspectOptions): Promise<ResolvedImage> {
  const signal = { signal: options.signal };
  const top = await source.getManifest(undefined, signal);
  const topType = top.mediaType || guessMediaType(top.bytes);
  if (!isManifestListMediaType(topType)) return { top, image: parseImageManifest(top.bytes, topType) };
  const instance = chooseInstance(parseManifestList(top.bytes, topType), options.ctx);
  const raw = await source.getManifest(instance.digest, signal);
  if (!matchesDigest(raw.bytes, instance.digest)) {
    throw new DigestMismatchError(
      instance.digest,
      manifestDigest(raw.bytes, digestAlgorithm(instance.digest)),
      'manifest',
    );
  }
  return { top, image: parseImageManifest(raw.bytes, raw.mediaType || guessMediaType(raw.bytes)) };
}

async function readCapped(stream: Readable, limit: number, what: string): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    total += buffer.byteLength;
    if (total > limit) {
      stream.destroy();
      throw new TooLargeError(what, limit);
    }
    chunks.push(buffer);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

async function readConfig(
  source: ImageSource,
  info: BlobInfo,
  options: InspectOptions,
): Promise<ImageConfig> {
  const blob = await source.getBlob(info, { signal: options.signal });
  const bytes = await readCapped(blob.stream, maxManifestSize, 'config');
  verifyBytes(bytes, info.digest, 'config');
  return { bytes, config: parseJsonObject(bytes, 'config') };
}

function asObject(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function asString(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function stringList(value: unknown): string[] | null {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : null;
}

/** A map with its keys in Go's order (byte-wise), so that JSON.stringify writes what Go would. */
function sortedMap(value: unknown): Record<string, string> | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const out: Record<string, string> = {};
  for (const key of Object.keys(value).sort(compareUtf8)) {
    const v = (value as Record<string, unknown>)[key];
    if (typeof v === 'string') out[key] = v;
  }
  return out;
}

function inspectedLayers(layers: readonly LayerInfo[]): InspectedLayer[] {
  return layers.map((l) => ({
    MIMEType: l.mediaType ?? '',
    Digest: l.digest,
    Size: l.size,
    Annotations: l.annotations && Object.keys(l.annotations).length > 0 ? sortedMap(l.annotations) : null,
  }));
}

// Schema 1 has no config blob: the newest history entry's v1Compatibility carries the image's settings.
function schema1Config(image: ImageManifest): Record<string, unknown> {
  const first = image.schema1?.history[0];
  if (first === undefined) throw new InvalidManifestError('a schema 1 manifest without history');
  try {
    return asObject(JSON.parse(first));
  } catch (error) {
    throw new InvalidManifestError('a schema 1 history entry is not valid JSON', { cause: error });
  }
}

/**
 * Reads an image's config blob (from the instance chosen for the platform when the image is a
 * list) and verifies its digest. Schema 1 images have no config blob and fail with NotSupportedError.
 */
export async function getImageConfig(
  source: ImageSource,
  options: InspectOptions = {},
): Promise<ImageConfig> {
  const { image } = await resolveImage(source, options);
  if (!image.config) throw new NotSupportedError(`a ${image.mediaType} image has no config blob`);
  return readConfig(source, image.config, options);
}

/**
 * Describes an image as `skopeo inspect` does: the manifest digest, the config's creation time,
 * labels, platform and environment, and the layers. For a list, the digest is the list's and the
 * rest describes the instance chosen for `ctx`'s platform (the host's by default).
 *
 * @example
 * const source = await parseImageName('oci:/tmp/layout:v1').newImageSource({});
 * try {
 *   console.log((await inspectImage(source)).Digest);
 * } finally {
 *   await source.close();
 * }
 */
export async function inspectImage(
  source: ImageSource,
  options: InspectOptions = {},
): Promise<ImageInspection> {
  const { top, image } = await resolveImage(source, options);
  let config: Record<string, unknown>;
  let created: string | null;
  if (image.schema1) {
    config = schema1Config(image);
    // containers/image reads schema 1's time into a time.Time, so an absent one is the zero time.
    created = goTime(config.created, 'history[0].v1Compatibility.created');
  } else if (image.config) {
    config = (await readConfig(source, image.config, options)).config;
    created =
      config.created === undefined || config.created === null
        ? null
        : goTime(config.created, 'config.created');
  } else {
    throw new InvalidManifestError(`a ${image.mediaType} manifest without a config`);
  }
  const settings = asObject(config.config);

  const name = source.reference.dockerReference?.name();
  const tag = image.schema1?.tag;
  const variant = asString(config.variant);
  return {
    ...(name ? { Name: name } : {}),
    ...(tag ? { Tag: tag } : {}),
    Digest: manifestDigest(top.bytes),
    RepoTags: [],
    Created: created,
    DockerVersion: asString(config.docker_version),
    Labels: sortedMap(settings.Labels),
    Architecture: asString(config.architecture),
    ...(variant ? { Variant: variant } : {}),
    Os: asString(config.os),
    Layers: image.layers.map((l) => l.digest),
    LayersData: inspectedLayers(image.layers),
    Env: stringList(settings.Env),
  };
}
