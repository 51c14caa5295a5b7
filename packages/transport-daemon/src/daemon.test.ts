import {
  computeDigest,
  copyImage,
  type ImageReference,
  ImgError,
  insecureAcceptAnythingPolicy,
  ManifestUnknownError,
  PolicyContext,
} from '@img/core';
import {
  type CountingProxy,
  type DockerdServer,
  MemoryStore,
  randomImage,
  readImage,
  startCountingProxy,
  startDockerd,
} from '@img/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { newDockerDaemonReference } from './index.js';

const policy = new PolicyContext(insecureAcceptAnythingPolicy);

let daemon: DockerdServer;
let proxy: CountingProxy;
beforeAll(async () => {
  daemon = await startDockerd();
  proxy = await startCountingProxy(daemon.socket);
}, 90_000);
afterAll(async () => {
  await proxy?.close();
  await daemon?.stop();
}, 60_000);
beforeEach(() => proxy.reset());

/** Contexts that reach the daemon through the counting proxy. */
const ctx = () => ({ transportOptions: { 'docker-daemon': { host: proxy.host } } });
const copy = (dest: ImageReference, src: ImageReference) =>
  copyImage(dest, src, { policy, sourceCtx: ctx(), destinationCtx: ctx() });

async function inspect(name: string): Promise<{ Id: string; RepoTags: string[] }> {
  return JSON.parse(await daemon.docker(['image', 'inspect', name]))[0];
}

const loads = () => proxy.requests.filter((r) => r.method === 'POST' && r.path.includes('/images/load'));

describe('docker-daemon destination', () => {
  it('loads an image that docker then shows with the config digest as ID and the tag', async () => {
    const store = new MemoryStore('daemon-load');
    const image = await randomImage({ seed: 21, layers: 2, layerSize: 50_000 });
    await copy(newDockerDaemonReference('img-test/load:v1'), store.add('a', image));
    const shown = await inspect('img-test/load:v1');
    expect(shown.Id).toBe(image.configDigest);
    expect(shown.RepoTags).toEqual(['img-test/load:v1']);
    // gzip layers were loaded as they came: the body carried them, not a decompressed copy.
    const [load] = loads();
    expect(load?.requestBytes).toBeGreaterThan(image.layers.reduce((n, l) => n + l.bytes.length, 0));
  });

  it('makes exactly one Engine API request and loads 0 bytes when copied again', async () => {
    const store = new MemoryStore('daemon-again');
    const image = await randomImage({ seed: 22, layers: 3, layerSize: 100_000 });
    const src = store.add('a', image);
    const dest = newDockerDaemonReference('img-test/again:v1');
    await copy(dest, src);
    proxy.reset();
    store.resetCounters();
    const second = await copy(dest, src);
    expect(second.alreadyPresent).toBe(true);
    expect(second.bytesMoved).toBe(0);
    expect(store.counters.getBlob).toBe(0);
    expect(proxy.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /v1.41/images/img-test/again:v1/json',
    ]);
    expect(loads()).toEqual([]);
  });

  it('only tags an image the daemon has under another name', async () => {
    const store = new MemoryStore('daemon-tag');
    const image = await randomImage({ seed: 23, layers: 2, layerSize: 20_000 });
    const src = store.add('a', image);
    await copy(newDockerDaemonReference('img-test/first:v1'), src);
    proxy.reset();
    store.resetCounters();
    const result = await copy(newDockerDaemonReference('img-test/second:v2'), src);
    expect(result.bytesMoved).toBe(0);
    expect(store.counters.getBlob).toBe(0);
    expect(loads()).toEqual([]);
    expect(proxy.requests.map((r) => r.method)).toEqual(['GET', 'GET', 'POST']);
    expect(proxy.requests[2]?.path).toMatch(
      new RegExp(`/images/${image.configDigest}/tag\\?repo=img-test%2Fsecond&tag=v2$`),
    );
    expect((await inspect(image.configDigest)).RepoTags.sort()).toEqual([
      'img-test/first:v1',
      'img-test/second:v2',
    ]);
  });

  it('reports the daemon refusing a load, and leaves no image', async () => {
    const store = new MemoryStore('daemon-refused');
    const image = await randomImage({ seed: 24, layers: 1, compressed: false });
    // A config whose DiffID is not the layer's: docker load refuses it.
    const config = JSON.parse(image.config.toString());
    config.rootfs.diff_ids = [computeDigest('another layer')];
    const bytes = Buffer.from(JSON.stringify(config));
    const digest = computeDigest(bytes);
    const manifest = JSON.parse(image.manifest.toString());
    manifest.config = { ...manifest.config, digest, size: bytes.length };
    image.manifest = Buffer.from(JSON.stringify(manifest));
    image.manifestDigest = computeDigest(image.manifest);
    image.blobs.delete(image.configDigest);
    image.blobs.set(digest, bytes);
    image.config = bytes;
    image.configDigest = digest;
    const dest = newDockerDaemonReference('img-test/refused:v1');
    await expect(copy(dest, store.add('a', image))).rejects.toThrow(
      /^docker daemon at unix:\/\/.*: POST \/images\/load failed: .*(?:layer|diff|digest).*\(HTTP 200\)$/i,
    );
    await expect(readImage(dest, ctx())).rejects.toBeInstanceOf(ManifestUnknownError);
  });

  it('refuses a reference without a tag as destination', async () => {
    const ref = newDockerDaemonReference(`img-test/x@${computeDigest('x')}`);
    await expect(ref.newImageDestination(ctx())).rejects.toThrow(/a destination must be a name:tag/);
  });
});

describe('docker-daemon source', () => {
  it('reads back an image loaded by docker with the same config and layer digests', async () => {
    const store = new MemoryStore('daemon-read');
    const image = await randomImage({ seed: 25, layers: 3, layerSize: 200_000, compressed: false });
    await copy(newDockerDaemonReference('img-test/read:v1'), store.add('a', image));
    proxy.reset();
    const back = await readImage(newDockerDaemonReference('img-test/read:v1'), ctx());
    expect(back.configDigest).toBe(image.configDigest);
    expect(back.layers.map((l) => l.digest)).toEqual(image.layers.map((l) => l.digest));
    expect(back.layers.map((l) => l.mediaType)).toEqual(
      image.layers.map(() => 'application/vnd.docker.image.rootfs.diff.tar'),
    );
    // One export, read once.
    expect(proxy.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /v1.41/images/img-test/read:v1/get',
    ]);
  });

  it('reads an image by its ID', async () => {
    const store = new MemoryStore('daemon-id');
    const image = await randomImage({ seed: 26, layers: 1, compressed: false });
    await copy(newDockerDaemonReference('img-test/by-id:v1'), store.add('a', image));
    const back = await readImage(newDockerDaemonReference(image.configDigest), ctx());
    expect(back.configDigest).toBe(image.configDigest);
  });

  it('fails with ManifestUnknownError for an image the daemon does not have', async () => {
    await expect(newDockerDaemonReference('img-test/absent:v1').newImageSource(ctx())).rejects.toBeInstanceOf(
      ManifestUnknownError,
    );
  });

  it('says clearly that the daemon cannot be reached', async () => {
    const gone = { transportOptions: { 'docker-daemon': { host: 'unix:///nonexistent/docker.sock' } } };
    const error = await newDockerDaemonReference('img-test/absent:v1')
      .newImageSource(gone)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImgError);
    expect((error as Error).message).toBe('cannot reach unix:///nonexistent/docker.sock: no such socket');
  });

  it('uses a fixed API version when one is given', async () => {
    const fixed = { transportOptions: { 'docker-daemon': { host: proxy.host, apiVersion: '1.40' } } };
    await expect(newDockerDaemonReference('img-test/absent:v1').newImageSource(fixed)).rejects.toBeInstanceOf(
      ManifestUnknownError,
    );
    expect(proxy.requests.map((r) => r.path)).toEqual(['/v1.40/images/img-test/absent:v1/get']);
  });
});
