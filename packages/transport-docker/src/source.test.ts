import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import {
  copyImage,
  type Digest,
  DigestMismatchError,
  insecureAcceptAnythingPolicy,
  ManifestUnknownError,
  MediaTypes,
  PolicyContext,
} from '@img/core';
import {
  BLOB_GET,
  type FaultProxy,
  MemoryStore,
  type RegistryServer,
  randomImage,
  readImage,
  startFaultProxy,
  startRegistry,
} from '@img/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dockerTransport, listTags } from './index.js';
import { useTestConfig } from './test-helpers.js';

const policy = new PolicyContext(insecureAcceptAnythingPolicy);
const fast = { transportOptions: { docker: { retryDelayMs: 10 } } };

function sha256(data: Buffer): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('docker source', () => {
  let registry: RegistryServer;
  let proxy: FaultProxy;
  const big = Buffer.alloc(6 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
  const bigDigest = sha256(big);
  const ref = (name: string) => dockerTransport.parseReference(`//${proxy.host}/${name}`);

  beforeAll(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy({ target: registry.url });
    useTestConfig({ insecureHosts: [proxy.host, registry.host] });
    const dest = await ref('blobs:v1').newImageDestination({});
    await dest.putBlob(Readable.from([big]), { digest: bigDigest, size: big.length });
    await dest.close();
  });
  afterAll(async () => {
    await proxy?.close();
    await registry?.stop();
  });
  beforeEach(() => {
    proxy.clearFaults();
    proxy.reset();
  });

  it('resumes a blob read that breaks mid-way with a Range request, and the digest verifies', async () => {
    const image = await randomImage({ seed: 3, layers: 1, layerSize: 1000 });
    await copyImage(ref('blobs:v1'), new MemoryStore('resume').add('one', image), { policy });
    proxy.reset();
    proxy.addFault({
      match: BLOB_GET,
      action: { kind: 'reset-response', afterBytes: 1_000_000, rst: true },
      times: 2,
    });
    const source = await ref('blobs:v1').newImageSource(fast);
    try {
      const { stream, size } = await source.getBlob({ digest: bigDigest, size: big.length });
      expect(size).toBe(big.length);
      expect(sha256(await readAll(stream))).toBe(bigDigest);
    } finally {
      await source.close();
    }
    await proxy.settled();
    const gets = proxy.requests.filter((r) => r.method === 'GET' && r.path.includes(bigDigest));
    // Two breaks, each resumed where the client stopped (a RST may drop bytes in flight).
    expect(gets.map((r) => r.status)).toEqual([200, 206, 206]);
  });

  it('retries a manifest GET answered 429, honouring Retry-After', async () => {
    const image = await randomImage({ seed: 4, layers: 1, layerSize: 1000 });
    await copyImage(ref('limited:v1'), new MemoryStore('m429').add('x', image), { policy });
    proxy.reset();
    proxy.addFault({
      match: { method: 'GET', path: '/manifests/' },
      action: { kind: 'too-many-requests', retryAfter: 1 },
      times: 2,
    });
    const source = await ref('limited:v1').newImageSource(fast);
    const manifest = await source.getManifest();
    expect(sha256(Buffer.from(manifest.bytes))).toBe(image.manifestDigest);
    expect(manifest.mediaType).toBe(MediaTypes.ociManifest);
    await proxy.settled();
    expect(proxy.requests.filter((r) => r.path.includes('/manifests/')).map((r) => r.status)).toEqual([
      429, 429, 200,
    ]);
  });

  it('reads by digest and refuses a manifest whose Docker-Content-Digest does not match', async () => {
    const image = await randomImage({ seed: 5, layers: 1, layerSize: 1000 });
    await copyImage(ref('verify:v1'), new MemoryStore('mv').add('x', image), { policy });
    const byDigest = await dockerTransport
      .parseReference(`//${proxy.host}/verify@${image.manifestDigest}`)
      .newImageSource({});
    expect(sha256(Buffer.from((await byDigest.getManifest()).bytes))).toBe(image.manifestDigest);
    proxy.addFault({
      match: { method: 'GET', path: '/manifests/v1' },
      action: {
        kind: 'status',
        status: 200,
        headers: {
          'docker-content-digest': sha256(Buffer.from('other')),
          'content-type': MediaTypes.ociManifest,
        },
        body: image.manifest.toString(),
      },
      times: 1,
    });
    await expect(ref('verify:v1').newImageSource({})).rejects.toBeInstanceOf(DigestMismatchError);
  });

  it('reads from the first registries.conf pull source that has the image', async () => {
    const image = await randomImage({ seed: 8, layers: 1, layerSize: 1000 });
    await copyImage(ref('primary/app:v1'), new MemoryStore('mirrors').add('x', image), { policy });
    const sources = (host: string) => [
      { host, repository: 'empty-mirror/app', insecure: true, isMirror: true },
      { host, repository: 'primary/app', insecure: true, isMirror: false },
    ];
    useTestConfig({
      insecureHosts: [proxy.host, registry.host],
      endpointPlan: async (host) => ({
        blocked: false,
        pullSources: sources(host),
        primary: { host, repository: 'primary/app', insecure: true },
      }),
    });
    try {
      proxy.reset();
      const back = await readImage(ref('primary/app:v1'));
      expect(back.manifestDigest).toBe(image.manifestDigest);
      await proxy.settled();
      expect(
        proxy.requests.filter((r) => r.path.includes('/manifests/')).map((r) => [r.path, r.status]),
      ).toEqual([
        ['/v2/empty-mirror/app/manifests/v1', 404],
        ['/v2/primary/app/manifests/v1', 200],
      ]);
    } finally {
      useTestConfig({ insecureHosts: [proxy.host, registry.host] });
    }
  });

  it('fails with ManifestUnknownError for a missing tag', async () => {
    await expect(ref('nothing:here').newImageSource({})).rejects.toBeInstanceOf(ManifestUnknownError);
  });

  it('lists the tags of a repository', async () => {
    const image = await randomImage({ seed: 6, layers: 1, layerSize: 100 });
    const store = new MemoryStore('tags');
    for (const tag of ['a', 'b', 'c', 'd', 'e'])
      await copyImage(ref(`tagged:${tag}`), store.add(tag, image), { policy });
    proxy.reset();
    const tags: string[] = [];
    for await (const tag of listTags(ref('tagged:latest'), {}, { pageSize: 2 })) tags.push(tag);
    // distribution 2.8 ignores `n` on tags/list (one page, storage order); Link paging is unit-tested.
    expect(tags.sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('deletes by digest after resolving the tag with a HEAD', async () => {
    const image = await randomImage({ seed: 7, layers: 1, layerSize: 100 });
    await copyImage(ref('doomed:v1'), new MemoryStore('del').add('x', image), { policy });
    proxy.reset();
    await ref('doomed:v1').deleteImage!({});
    await proxy.settled();
    expect(proxy.requests.map((r) => [r.method, r.path, r.status]).filter((r) => r[0] !== 'GET')).toEqual([
      ['HEAD', '/v2/doomed/manifests/v1', 200],
      ['DELETE', `/v2/doomed/manifests/${image.manifestDigest}`, 202],
    ]);
    await expect(ref('doomed:v1').newImageSource({})).rejects.toBeInstanceOf(ManifestUnknownError);
  });
});

describe('redirects', () => {
  let front: Server;
  let storage: Server;
  const seen: IncomingHttpHeaders[] = [];
  const blob = Buffer.from('redirected blob bytes');
  const digest = sha256(blob);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest, size: blob.length },
      layers: [],
    }),
  );

  beforeAll(async () => {
    storage = createServer((req, res) => {
      seen.push(req.headers);
      res.end(blob);
    });
    storage.listen(0, '127.0.0.1');
    await once(storage, 'listening');
    const storagePort = (storage.address() as AddressInfo).port;
    // A registry that wants basic auth and sends blob reads to another host (as S3-backed ones do).
    front = createServer((req, res) => {
      if (req.headers.authorization !== `Basic ${Buffer.from('u:p').toString('base64')}`) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="test, with a comma"' }).end();
        return;
      }
      if (req.url?.includes('/manifests/')) {
        res.writeHead(200, {
          'content-type': MediaTypes.ociManifest,
          'docker-content-digest': sha256(manifest),
        });
        res.end(manifest);
        return;
      }
      if (req.url?.includes('/blobs/')) {
        res.writeHead(307, { location: `http://localhost:${storagePort}/bucket/blob?X-Signature=abc` }).end();
        return;
      }
      res.writeHead(200).end('{}');
    });
    front.listen(0, '127.0.0.1');
    await once(front, 'listening');
  });
  afterAll(async () => {
    front.close();
    storage.close();
  });

  it('sends no Authorization header to the redirect target', async () => {
    const host = `127.0.0.1:${(front.address() as AddressInfo).port}`;
    useTestConfig({ insecureHosts: [host] });
    const source = await dockerTransport
      .parseReference(`//${host}/app:v1`)
      .newImageSource({ transportOptions: { docker: { credentials: { username: 'u', password: 'p' } } } });
    const { stream } = await source.getBlob({ digest, size: blob.length });
    expect((await readAll(stream)).equals(blob)).toBe(true);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.authorization).toBeUndefined();
  });
});
