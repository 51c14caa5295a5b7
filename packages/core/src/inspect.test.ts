import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { computeDigest, type Digest } from './digest.js';
import {
  BlobUnknownError,
  DigestMismatchError,
  ManifestUnknownError,
  NoMatchingPlatformError,
  NotSupportedError,
} from './errors.js';
import { getImageConfig, inspectImage } from './inspect.js';
import { MediaTypes } from './manifest/media-types.js';
import { parseNormalizedNamed } from './reference/docker-reference.js';
import type { BlobInfo, ImageReference, ImageSource, RawManifest } from './types.js';

const enc = (value: unknown) =>
  new Uint8Array(Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)));

/** An in-memory source: blobs and manifests by digest, one of them the top-level manifest. */
function fakeSource(
  top: Uint8Array,
  blobs: Uint8Array[],
  options: { dockerName?: string; mediaTypes?: Map<Uint8Array, string> } = {},
): ImageSource {
  const byDigest = new Map<string, Uint8Array>(blobs.map((b) => [computeDigest(b), b]));
  const reference = {
    dockerReference: options.dockerName ? parseNormalizedNamed(options.dockerName) : undefined,
    toString: () => 'fake:image',
  } as unknown as ImageReference;
  const raw = (bytes: Uint8Array): RawManifest => ({
    bytes,
    mediaType: options.mediaTypes?.get(bytes) ?? '',
  });
  return {
    reference,
    hasThreadSafeGetBlob: true,
    async getManifest(instance?: Digest) {
      if (!instance) return raw(top);
      const bytes = byDigest.get(instance);
      if (!bytes) throw new ManifestUnknownError(`fake:image@${instance}`);
      return raw(bytes);
    },
    async getBlob(info: BlobInfo) {
      const bytes = byDigest.get(info.digest);
      if (!bytes) throw new BlobUnknownError(info.digest, 'fake:image');
      return { stream: Readable.from([Buffer.from(bytes)]), size: bytes.byteLength };
    },
    async getSignatures() {
      return [];
    },
    async close() {},
  };
}

const descriptor = (bytes: Uint8Array, mediaType: string, extra: Record<string, unknown> = {}) => ({
  mediaType,
  digest: computeDigest(bytes),
  size: bytes.byteLength,
  ...extra,
});

function ociImage(configFields: Record<string, unknown>) {
  const config = enc({ rootfs: { type: 'layers', diff_ids: [] }, ...configFields });
  const layerA = enc('layer a');
  const layerB = enc('layer b');
  const manifest = enc({
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: descriptor(config, MediaTypes.ociConfig),
    layers: [
      descriptor(layerA, MediaTypes.ociLayerGzip, { annotations: { z: '1', a: '2' } }),
      descriptor(layerB, MediaTypes.ociLayerGzip),
    ],
  });
  return { config, layerA, layerB, manifest };
}

describe('inspectImage', () => {
  it('reports an image in skopeo inspect order with the manifest digest', async () => {
    const img = ociImage({
      created: '2023-01-02T03:04:05.120000000Z',
      docker_version: '24.0.7',
      architecture: 'arm',
      variant: 'v7',
      os: 'linux',
      config: { Env: ['PATH=/bin'], Labels: { version: '1.2', 'a.b': 'c' } },
    });
    const out = await inspectImage(fakeSource(img.manifest, [img.config, img.layerA, img.layerB]));
    expect(Object.keys(out)).toEqual([
      'Digest',
      'RepoTags',
      'Created',
      'DockerVersion',
      'Labels',
      'Architecture',
      'Variant',
      'Os',
      'Layers',
      'LayersData',
      'Env',
    ]);
    expect(out).toEqual({
      Digest: computeDigest(img.manifest),
      RepoTags: [],
      Created: '2023-01-02T03:04:05.12Z',
      DockerVersion: '24.0.7',
      Labels: { 'a.b': 'c', version: '1.2' },
      Architecture: 'arm',
      Variant: 'v7',
      Os: 'linux',
      Layers: [computeDigest(img.layerA), computeDigest(img.layerB)],
      LayersData: [
        {
          MIMEType: MediaTypes.ociLayerGzip,
          Digest: computeDigest(img.layerA),
          Size: 7,
          Annotations: { a: '2', z: '1' },
        },
        { MIMEType: MediaTypes.ociLayerGzip, Digest: computeDigest(img.layerB), Size: 7, Annotations: null },
      ],
      Env: ['PATH=/bin'],
    });
    expect(Object.keys(out.Labels ?? {})).toEqual(['a.b', 'version']);
  });

  it('names the docker reference and leaves out an unset variant', async () => {
    const img = ociImage({ architecture: 'amd64', os: 'linux' });
    const out = await inspectImage(
      fakeSource(img.manifest, [img.config, img.layerA, img.layerB], { dockerName: 'busybox:1.36' }),
    );
    expect(Object.keys(out)[0]).toBe('Name');
    expect(out.Name).toBe('docker.io/library/busybox');
    expect(out).not.toHaveProperty('Variant');
    expect(out.Created).toBeNull();
    expect(out.Labels).toBeNull();
    expect(out.Env).toBeNull();
  });

  it('gives the list digest with the config of the instance chosen for the platform', async () => {
    const amd = ociImage({ architecture: 'amd64', os: 'linux', config: { Labels: { arch: 'amd64' } } });
    const arm = ociImage({
      architecture: 'arm64',
      variant: 'v8',
      os: 'linux',
      config: { Labels: { arch: 'arm64' } },
    });
    const list = enc({
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: [
        descriptor(arm.manifest, MediaTypes.ociManifest, {
          platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
        }),
        descriptor(amd.manifest, MediaTypes.ociManifest, {
          platform: { os: 'linux', architecture: 'amd64' },
        }),
      ],
    });
    const source = fakeSource(list, [
      amd.manifest,
      amd.config,
      arm.manifest,
      arm.config,
      amd.layerA,
      amd.layerB,
    ]);
    const forAmd = await inspectImage(source, { ctx: { osChoice: 'linux', architectureChoice: 'amd64' } });
    expect(forAmd.Digest).toBe(computeDigest(list));
    expect(forAmd.Labels).toEqual({ arch: 'amd64' });
    const forArm = await inspectImage(source, {
      ctx: { osChoice: 'linux', architectureChoice: 'arm64', variantChoice: 'v8' },
    });
    expect(forArm.Digest).toBe(computeDigest(list));
    expect(forArm.Architecture).toBe('arm64');
    await expect(
      inspectImage(source, { ctx: { osChoice: 'linux', architectureChoice: 's390x' } }),
    ).rejects.toThrow(NoMatchingPlatformError);
  });

  it('refuses a config blob whose bytes do not match its digest', async () => {
    const img = ociImage({ architecture: 'amd64', os: 'linux' });
    const source = fakeSource(img.manifest, [img.layerA]);
    const tampered = enc({ architecture: 'evil' });
    source.getBlob = async () => ({
      stream: Readable.from([Buffer.from(tampered)]),
      size: tampered.byteLength,
    });
    await expect(inspectImage(source)).rejects.toThrow(DigestMismatchError);
  });

  it('reads schema 1 settings from the newest history entry and reports its tag', async () => {
    const id = (c: string) => c.repeat(64);
    const manifest = enc({
      schemaVersion: 1,
      name: 'library/old',
      tag: 'v1',
      architecture: 'amd64',
      fsLayers: [{ blobSum: computeDigest('top') }, { blobSum: computeDigest('base') }],
      history: [
        {
          v1Compatibility: JSON.stringify({
            id: id('b'),
            parent: id('a'),
            created: '2016-01-01T00:00:00.500+00:00',
            docker_version: '1.9.1',
            architecture: 'amd64',
            os: 'linux',
            config: { Env: ['A=1'], Labels: null },
          }),
        },
        { v1Compatibility: JSON.stringify({ id: id('a'), created: '2015-12-31T00:00:00Z' }) },
      ],
    });
    const out = await inspectImage(fakeSource(manifest, []));
    expect(Object.keys(out).slice(0, 2)).toEqual(['Tag', 'Digest']);
    expect(out.Tag).toBe('v1');
    expect(out.Created).toBe('2016-01-01T00:00:00.5Z');
    expect(out.DockerVersion).toBe('1.9.1');
    expect(out.Layers).toEqual([computeDigest('base'), computeDigest('top')]);
    expect(out.LayersData[0]).toEqual({
      MIMEType: '',
      Digest: computeDigest('base'),
      Size: -1,
      Annotations: null,
    });
    expect(out.Labels).toBeNull();
    expect(out.Env).toEqual(['A=1']);
  });

  it('refuses a list instance whose bytes do not match the list entry', async () => {
    const amd = ociImage({ architecture: 'amd64', os: 'linux' });
    const list = enc({
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: [
        descriptor(amd.manifest, MediaTypes.ociManifest, {
          platform: { os: 'linux', architecture: 'amd64' },
        }),
      ],
    });
    const source = fakeSource(list, [amd.manifest, amd.config]);
    source.getManifest = async (instance?: Digest) => ({
      bytes: instance ? enc({ schemaVersion: 2 }) : list,
      mediaType: '',
    });
    await expect(
      inspectImage(source, { ctx: { architectureChoice: 'amd64', osChoice: 'linux' } }),
    ).rejects.toThrow(DigestMismatchError);
  });
});

describe('getImageConfig', () => {
  it('returns the config blob bytes exactly as stored', async () => {
    const img = ociImage({ architecture: 'amd64', os: 'linux' });
    const got = await getImageConfig(fakeSource(img.manifest, [img.config]));
    expect(Buffer.from(got.bytes).equals(Buffer.from(img.config))).toBe(true);
    expect(got.config.architecture).toBe('amd64');
  });

  it('has no config blob to give for schema 1', async () => {
    const manifest = enc({
      schemaVersion: 1,
      fsLayers: [{ blobSum: computeDigest('base') }],
      history: [{ v1Compatibility: JSON.stringify({ id: 'a'.repeat(64) }) }],
    });
    await expect(getImageConfig(fakeSource(manifest, []))).rejects.toThrow(NotSupportedError);
  });
});
