import { createHash } from 'node:crypto';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as core from '@img/core';
import { MemoryStore, makeTar, readImage } from '@img/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import transportsHook from './hooks/transports.js';
import { isTarHeader } from './layer.js';
import { createTarballTransport } from './transport.js';

const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const policy = new core.PolicyContext(core.insecureAcceptAnythingPolicy);
const tarball = createTarballTransport(core);

let root: string;
let tar: Buffer;
let gz: Buffer;
let plainFile: string;
let gzFile: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'img-tarball-test-'));
  tar = await makeTar({ 'etc/hostname': 'box\n', 'usr/bin/tool': Buffer.alloc(5000, 1) });
  gz = gzipSync(tar);
  plainFile = join(root, 'rootfs.tar');
  gzFile = join(root, 'rootfs.tar.gz');
  await writeFile(plainFile, tar);
  await writeFile(gzFile, gz);
  const when = new Date('2024-05-06T07:08:09Z');
  await utimes(plainFile, when, when);
  await utimes(gzFile, when, when);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function manifestAndConfig(ref: core.ImageReference, ctx: core.SystemContext = {}) {
  const source = await ref.newImageSource(ctx);
  try {
    const raw = await source.getManifest();
    const manifest = JSON.parse(Buffer.from(raw.bytes).toString()) as {
      mediaType: string;
      config: core.BlobInfo;
      layers: Array<core.BlobInfo & { mediaType: string }>;
      annotations?: Record<string, string>;
    };
    const { stream } = await source.getBlob(manifest.config);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    const config = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown> & {
      rootfs: { diff_ids: string[] };
    };
    return { raw, manifest, config };
  } finally {
    await source.close();
  }
}

describe('tarball: as an image', () => {
  it('makes a gzip rootfs tarball a single-layer OCI image whose layer is the file, unchanged', async () => {
    const { raw, manifest, config } = await manifestAndConfig(tarball.parseReference(gzFile));
    expect(raw.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(manifest.layers).toEqual([
      { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(gz), size: gz.length },
    ]);
    expect(config.rootfs.diff_ids).toEqual([sha256(tar)]);
    expect(config.created).toBe('2024-05-06T07:08:09.000Z');
    expect(config.os).toBe('linux');
  });

  it('makes a plain tarball an uncompressed layer whose digest is its diff_id', async () => {
    const { manifest, config } = await manifestAndConfig(tarball.parseReference(plainFile));
    expect(manifest.layers).toEqual([
      { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(tar), size: tar.length },
    ]);
    expect(config.rootfs.diff_ids).toEqual([sha256(tar)]);
  });

  it('makes one layer per file, in order, from tarball:A:B', async () => {
    const { manifest, config } = await manifestAndConfig(tarball.parseReference(`${plainFile}:${gzFile}`));
    expect(manifest.layers.map((l) => l.digest)).toEqual([sha256(tar), sha256(gz)]);
    expect(config.rootfs.diff_ids).toEqual([sha256(tar), sha256(tar)]);
  });

  it('takes the platform from the SystemContext and config, annotations and time from its options', async () => {
    const { manifest, config } = await manifestAndConfig(tarball.parseReference(gzFile), {
      osChoice: 'freebsd',
      architectureChoice: 'riscv64',
      transportOptions: {
        tarball: {
          config: { Cmd: ['/usr/bin/tool'], Env: ['A=1'] },
          annotations: { 'org.opencontainers.image.title': 'tool' },
          created: '2020-01-01T00:00:00Z',
        },
      },
    });
    expect(config).toMatchObject({
      os: 'freebsd',
      architecture: 'riscv64',
      created: '2020-01-01T00:00:00Z',
      config: { Cmd: ['/usr/bin/tool'], Env: ['A=1'] },
    });
    expect(manifest.annotations).toEqual({ 'org.opencontainers.image.title': 'tool' });
  });

  it('copies into a destination that holds then exactly the bytes of the file', async () => {
    const store = new MemoryStore('tarball-copy');
    const result = await core.copyImage(store.ref('app'), tarball.parseReference(gzFile), { policy });
    const back = await readImage(store.ref('app'));
    expect(back.manifestDigest).toBe(result.manifestDigest);
    expect(back.layers.map((l) => l.digest)).toEqual([sha256(gz)]);
    expect(store.blobs.get(sha256(gz) as core.Digest)?.equals(gz)).toBe(true);
  });
});

describe('tarball: errors', () => {
  it('refuses a file that is not a tar archive, plain or gzip', async () => {
    const text = join(root, 'notes.txt');
    await writeFile(text, 'just some text, long enough to fill nothing at all\n'.repeat(20));
    await expect(tarball.parseReference(text).newImageSource({})).rejects.toThrow(
      /is not a tar archive \(plain or gzip-compressed\)/,
    );
    const badGzip = join(root, 'bad.tar.gz');
    await writeFile(badGzip, Buffer.concat([gz.subarray(0, 20), Buffer.alloc(50, 9)]));
    await expect(tarball.parseReference(badGzip).newImageSource({})).rejects.toBeInstanceOf(
      core.InvalidLayoutError,
    );
  });

  it('reports a missing file as ManifestUnknownError and a directory as InvalidLayoutError', async () => {
    await expect(tarball.parseReference(join(root, 'nope.tar')).newImageSource({})).rejects.toBeInstanceOf(
      core.ManifestUnknownError,
    );
    await expect(tarball.parseReference(root).newImageSource({})).rejects.toBeInstanceOf(
      core.InvalidLayoutError,
    );
  });

  it('parses references and refuses empty ones, writing and policy scopes', async () => {
    const ref = tarball.parseReference('rel/rootfs.tar');
    expect(ref.toString()).toBe('tarball:rel/rootfs.tar');
    expect(ref.resolvedPaths).toEqual([join(process.cwd(), 'rel/rootfs.tar')]);
    expect(() => tarball.parseReference('')).toThrow(core.InvalidReferenceError);
    expect(() => tarball.parseReference('a.tar::b.tar')).toThrow(core.InvalidReferenceError);
    expect(() => tarball.newReference('a:b.tar')).toThrow(core.InvalidReferenceError);
    await expect(ref.newImageDestination({})).rejects.toBeInstanceOf(core.NotSupportedError);
    expect(() => tarball.validatePolicyConfigurationScope('/srv')).toThrow(core.InvalidPolicyError);
    expect(tarball.capabilities).toEqual({ source: true, destination: false });
  });

  it('refuses a @img/core of another transport API version', () => {
    expect(() => createTarballTransport({ ...core, transportApiVersion: 2 as 1 })).toThrow(
      /implements transport API version 1, but this @img\/core has 2/,
    );
  });
});

describe('isTarHeader', () => {
  it('accepts a real header and an empty archive, refuses other bytes', () => {
    expect(isTarHeader(tar.subarray(0, 512))).toBe(true);
    expect(isTarHeader(Buffer.alloc(512))).toBe(true);
    const broken = Buffer.from(tar.subarray(0, 512));
    broken[0]! ^= 1;
    expect(isTarHeader(broken)).toBe(false);
    expect(isTarHeader(Buffer.alloc(100))).toBe(false);
  });
});

describe('the img:transports hook', () => {
  it("builds the transport on the core img hands it, whose errors are the host's", async () => {
    const [transport, ...rest] = await transportsHook.call(undefined, { apiVersion: 1, core });
    expect(rest).toEqual([]);
    expect(transport!.name).toBe('tarball');
    expect(() => transport!.parseReference('')).toThrow(core.InvalidReferenceError);
  });

  it('fails, with a reason, on an img that passes no core', async () => {
    await expect(transportsHook.call(undefined, { apiVersion: 1 })).rejects.toThrow(/passes no @img\/core/);
  });
});

describe('the library entry', () => {
  it('registers tarball: with the @img/core it imports', async () => {
    const { tarballTransport } = await import('./index.js');
    expect(core.transports.get('tarball')).toBe(tarballTransport);
    const ref = core.parseImageName(`tarball:${gzFile}`);
    expect((await readImage(ref)).layers.map((l) => l.digest)).toEqual([sha256(gz)]);
  });
});
