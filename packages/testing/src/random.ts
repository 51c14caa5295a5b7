import { gzipSync } from 'node:zlib';
import { computeDigest, type Digest, MediaTypes } from '@img/core';
import { pack } from 'tar-stream';

/** A deterministic pseudo-random generator (mulberry32), so a seed always gives the same image. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` pseudo-random bytes from a generator. */
export function randomBytes(random: () => number, n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let i = 0;
  for (; i + 4 <= n; i += 4) out.writeUInt32LE(Math.floor(random() * 4294967296), i);
  for (; i < n; i++) out[i] = Math.floor(random() * 256);
  return out;
}

/** Builds a tar archive in memory from path → content (small test layers only). */
export async function makeTar(
  files: Record<string, string | Uint8Array>,
  mtime = new Date(0),
): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((resolve, reject) => {
    p.on('end', resolve);
    p.on('error', reject);
  });
  for (const [name, content] of Object.entries(files)) {
    p.entry({ name, mtime, mode: 0o644, uid: 0, gid: 0 }, Buffer.from(content));
  }
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** One layer of a test image. */
export interface TestLayer {
  /** The blob as stored (gzip-compressed unless the image was made uncompressed). */
  bytes: Buffer;
  digest: Digest;
  /** The digest of the uncompressed tar (the DiffID). */
  diffID: Digest;
  mediaType: string;
}

/** A complete image held in memory. */
export interface TestImage {
  manifest: Buffer;
  manifestDigest: Digest;
  mediaType: string;
  config: Buffer;
  configDigest: Digest;
  layers: TestLayer[];
  /** Every blob by digest: config and layers. */
  blobs: Map<Digest, Buffer>;
}

/** Options of {@link randomImage}. */
export interface RandomImageOptions {
  seed?: number;
  layers?: number;
  /** Bytes of random file content per layer (the tar is slightly larger). */
  layerSize?: number;
  format?: 'oci' | 'docker';
  compressed?: boolean;
  architecture?: string;
  os?: string;
  variant?: string;
  labels?: Record<string, string>;
}

/**
 * A random but reproducible image (go-containerregistry's `random.Image`): real tar layers, each
 * holding one file of pseudo-random bytes, a real config with their DiffIDs, and a manifest.
 */
export async function randomImage(options: RandomImageOptions = {}): Promise<TestImage> {
  const random = seededRandom(options.seed ?? 1);
  const format = options.format ?? 'oci';
  const compressed = options.compressed ?? true;
  const layers: TestLayer[] = [];
  for (let i = 0; i < (options.layers ?? 2); i++) {
    const tar = await makeTar({ [`layer-${i}/data.bin`]: randomBytes(random, options.layerSize ?? 1024) });
    const bytes = compressed ? gzipSync(tar) : tar;
    const mediaType =
      format === 'oci'
        ? compressed
          ? MediaTypes.ociLayerGzip
          : MediaTypes.ociLayer
        : compressed
          ? MediaTypes.dockerLayerGzip
          : MediaTypes.dockerLayer;
    layers.push({ bytes, digest: computeDigest(bytes), diffID: computeDigest(tar), mediaType });
  }
  const config = Buffer.from(
    JSON.stringify({
      created: '2026-01-01T00:00:00Z',
      architecture: options.architecture ?? 'amd64',
      ...(options.variant ? { variant: options.variant } : {}),
      os: options.os ?? 'linux',
      config: { Env: ['PATH=/usr/bin'], Labels: options.labels ?? { seed: String(options.seed ?? 1) } },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffID) },
      history: layers.map((_, i) => ({ created: '2026-01-01T00:00:00Z', created_by: `layer ${i}` })),
    }),
  );
  const configDigest = computeDigest(config);
  const mediaType = format === 'oci' ? MediaTypes.ociManifest : MediaTypes.dockerV2Schema2;
  const manifest = Buffer.from(
    JSON.stringify(
      {
        schemaVersion: 2,
        mediaType,
        config: {
          mediaType: format === 'oci' ? MediaTypes.ociConfig : MediaTypes.dockerConfig,
          digest: configDigest,
          size: config.length,
        },
        layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.bytes.length })),
      },
      null,
      2,
    ),
  );
  const blobs = new Map<Digest, Buffer>([[configDigest, config]]);
  for (const l of layers) blobs.set(l.digest, l.bytes);
  return {
    manifest,
    manifestDigest: computeDigest(manifest),
    mediaType,
    config,
    configDigest,
    layers,
    blobs,
  };
}

/** A multi-platform image: an index (or Docker list) over one random image per platform. */
export interface TestIndex {
  manifest: Buffer;
  manifestDigest: Digest;
  mediaType: string;
  images: TestImage[];
}

/** A random index over images for the given platforms (`linux/amd64`, `linux/arm64/v8`, …). */
export async function randomIndex(
  platforms: string[],
  options: Omit<RandomImageOptions, 'architecture' | 'os' | 'variant'> = {},
): Promise<TestIndex> {
  const format = options.format ?? 'oci';
  const images: TestImage[] = [];
  const entries = [];
  for (const [i, platform] of platforms.entries()) {
    const [os, architecture, variant] = platform.split('/') as [string, string, string | undefined];
    const image = await randomImage({
      ...options,
      seed: (options.seed ?? 1) * 100 + i,
      os,
      architecture,
      ...(variant ? { variant } : {}),
    });
    images.push(image);
    entries.push({
      mediaType: image.mediaType,
      digest: image.manifestDigest,
      size: image.manifest.length,
      platform: { architecture, os, ...(variant ? { variant } : {}) },
    });
  }
  const mediaType = format === 'oci' ? MediaTypes.ociIndex : MediaTypes.dockerV2List;
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, manifests: entries }, null, 2));
  return { manifest, manifestDigest: computeDigest(manifest), mediaType, images };
}
