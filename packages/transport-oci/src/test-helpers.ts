// Test-only helpers (excluded from the build): small real images built in the test, temp dirs.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { computeDigest, type Digest, type ImageDestination, MediaTypes } from '@img/core';
import { pack } from 'tar-stream';
import { afterEach } from 'vitest';

/** Temp dirs made by the returned function are removed after each test. */
export function useTempDirs(): () => Promise<string> {
  const made: string[] = [];
  afterEach(async () => {
    await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), 'img-oci-test-'));
    made.push(dir);
    return dir;
  };
}

/** A tar (uncompressed) of path → content, built with tar-stream. */
export async function makeTar(files: Record<string, string | Buffer>): Promise<Buffer> {
  const archive = pack();
  for (const [name, content] of Object.entries(files)) {
    archive.entry({ name, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 }, Buffer.from(content));
  }
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A blob and its descriptor fields. */
export interface TestBlob {
  bytes: Buffer;
  digest: Digest;
  mediaType: string;
}

/** A small OCI image: gzip layers with real tars, a config naming their diff IDs, the manifest. */
export interface TestImage {
  layers: TestBlob[];
  config: TestBlob;
  manifest: Buffer;
  digest: Digest;
  /** The files in the layers, path → content. */
  files: Record<string, string>;
}

function blob(bytes: Buffer, mediaType: string): TestBlob {
  return { bytes, digest: computeDigest(bytes), mediaType };
}

function descriptor(b: TestBlob) {
  return { mediaType: b.mediaType, digest: b.digest, size: b.bytes.length };
}

/** Builds an image whose layers hold `name/file-<i>.txt`, one file each; `architecture` for index tests. */
export async function makeImage(name: string, layerCount = 2, architecture = 'amd64'): Promise<TestImage> {
  const files: Record<string, string> = {};
  const layers: TestBlob[] = [];
  const diffIDs: Digest[] = [];
  for (let i = 0; i < layerCount; i++) {
    const path = `${name}/file-${i}.txt`;
    files[path] = `${name} layer ${i}\n`;
    const tar = await makeTar({ [path]: files[path] });
    diffIDs.push(computeDigest(tar));
    layers.push(blob(gzipSync(tar), MediaTypes.ociLayerGzip));
  }
  const config = blob(
    Buffer.from(
      JSON.stringify({
        architecture,
        os: 'linux',
        config: { Cmd: ['/bin/sh'] },
        rootfs: { type: 'layers', diff_ids: diffIDs },
      }),
    ),
    MediaTypes.ociConfig,
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: descriptor(config),
      layers: layers.map(descriptor),
    }),
  );
  return { layers, config, manifest, digest: computeDigest(manifest), files };
}

/** An OCI index over images, each with its platform. */
export function makeIndex(images: TestImage[]): { bytes: Buffer; digest: Digest } {
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: images.map((image) => ({
        mediaType: MediaTypes.ociManifest,
        digest: image.digest,
        size: image.manifest.length,
        platform: { os: 'linux', architecture: JSON.parse(image.config.bytes.toString()).architecture },
      })),
    }),
  );
  return { bytes, digest: computeDigest(bytes) };
}

/** Puts every blob of the image and its manifest (as an instance when `instance`), without committing. */
export async function putImage(dest: ImageDestination, image: TestImage, instance = false): Promise<void> {
  for (const layer of image.layers) {
    await dest.putBlob(Readable.from([layer.bytes]), { digest: layer.digest, size: layer.bytes.length });
  }
  await dest.putBlob(Readable.from([image.config.bytes]), {
    digest: image.config.digest,
    size: image.config.bytes.length,
  });
  await dest.putManifest(image.manifest, instance ? image.digest : undefined);
}

/** Reads a stream to the end. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
