import {
  BLOB_GET,
  BLOB_UPLOAD,
  type FaultProxy,
  type RegistryServer,
  startFaultProxy,
  startRegistry,
} from '@img/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sandbox } from './helpers/cli.js';
import { writeOciImage } from './helpers/images.js';

interface Event {
  type: string;
  digest?: string;
  how?: string;
  kind?: string;
  bytes?: number;
  bytesMoved?: number;
  imageSize?: number;
}

function events(stdout: string): Event[] {
  return stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Event);
}

/** Blob mounts: `POST /v2/<name>/blobs/uploads/?mount=…&from=…`. */
const MOUNT = { method: 'POST', path: /\/blobs\/uploads\/\?.*mount=/ } as const;

describe('the blob-info cache and blob reuse against a registry', () => {
  let box: Sandbox;
  let registry: RegistryServer;
  let proxy: FaultProxy;
  let layout: string;
  let layers: Array<{ digest: string; size: number }>;
  let configSize: number;
  beforeAll(async () => {
    box = await Sandbox.create();
    registry = await startRegistry({ logLevel: 'error' });
    // Every request img makes goes through the proxy, which counts them and the blob bytes.
    proxy = await startFaultProxy({ target: registry.url });
    layout = box.path('src');
    const base = await writeOciImage(layout, 'base', { seed: 61, layers: 3, layerSize: 300_000 });
    await writeOciImage(layout, 'derived', { seed: 61, layers: 4, layerSize: 300_000 });
    layers = base.layers.map((l) => ({ digest: l.digest, size: l.bytes.length }));
    configSize = base.config.length;
  });
  afterAll(async () => {
    await proxy?.close();
    await registry?.stop();
    await box?.cleanup();
  });

  const copy = (...args: string[]) =>
    box.img(
      '--insecure-policy',
      'copy',
      '--progress=json',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      ...args,
    );

  it('moves 0 blob bytes and makes at most 3 requests on a second copy to the same repository', async () => {
    const first = await copy(`oci:${layout}:base`, `docker://${proxy.host}/app:v1`);
    expect(first.code, first.stderr).toBe(0);
    await proxy.settled();
    proxy.reset();
    const second = await copy(`oci:${layout}:base`, `docker://${proxy.host}/app:v1`);
    expect(second.code, second.stderr).toBe(0);
    await proxy.settled();
    expect(proxy.blobBytesUp).toBe(0);
    expect(proxy.blobBytesDown).toBe(0);
    expect(events(second.stdout).find((e) => e.type === 'done')?.bytesMoved).toBe(0);
    expect(
      proxy.requests.length,
      JSON.stringify(proxy.requests.map((r) => `${r.method} ${r.path}`)),
    ).toBeLessThanOrEqual(3);
  });

  it('mounts every layer into a second repository of the registry, moving no layer bytes', async () => {
    // The cache of the sandbox knows the blobs are in app (recorded by the first test's push).
    proxy.reset();
    const result = await copy(`oci:${layout}:base`, `docker://${proxy.host}/second:v1`);
    expect(result.code, result.stderr).toBe(0);
    await proxy.settled();
    const evs = events(result.stdout);
    const mounted = evs.filter((e) => e.type === 'blob-reused' && e.how === 'mounted');
    expect(
      mounted
        .filter((e) => e.kind === 'layer')
        .map((e) => e.digest)
        .sort(),
    ).toEqual(layers.map((l) => l.digest).sort());
    expect(proxy.count(MOUNT)).toBeGreaterThanOrEqual(layers.length);
    expect(proxy.blobBytesUp).toBe(0);
    expect(evs.find((e) => e.type === 'done')?.bytesMoved).toBe(0);
  });

  it('uploads only the new layer of an image whose base layers the repository already has', async () => {
    proxy.reset();
    const result = await copy(`oci:${layout}:derived`, `docker://${proxy.host}/app:v2`);
    expect(result.code, result.stderr).toBe(0);
    await proxy.settled();
    const copied = events(result.stdout).filter((e) => e.type === 'blob-done');
    // The fourth layer and the derived image's config; the three base layers are HEADed, not sent.
    expect(copied).toHaveLength(2);
    expect(copied.map((e) => e.digest)).not.toEqual(expect.arrayContaining([layers[0]!.digest]));
    const sent = copied.reduce((n, e) => n + e.bytes!, 0);
    expect(proxy.blobBytesUp).toBe(sent);
    expect(sent).toBeLessThan(layers[0]!.size + configSize + 1024 * 1024);
  });

  it('mounts every blob from the source repository of the same registry, even with an empty cache', async () => {
    proxy.reset();
    const result = await copy(
      '--blob-cache-dir',
      box.path('empty-cache'),
      `docker://${proxy.host}/app:v1`,
      `docker://${proxy.host}/third:v1`,
    );
    expect(result.code, result.stderr).toBe(0);
    await proxy.settled();
    expect(proxy.blobBytesDown).toBe(0);
    expect(proxy.blobBytesUp).toBe(0);
    expect(proxy.count(BLOB_GET)).toBe(0);
    expect(proxy.count(BLOB_UPLOAD)).toBe(proxy.count(MOUNT));
    const evs = events(result.stdout);
    expect(evs.filter((e) => e.type === 'blob-reused' && e.how === 'mounted')).toHaveLength(
      layers.length + 1,
    );
    expect(evs.find((e) => e.type === 'done')?.bytesMoved).toBe(0);
  });

  it('moves 0 blob bytes on a second push of an uncompressed image to the same repository', async () => {
    // The layout keeps its layers uncompressed; the registry wants them compressed, so the first push
    // gzips and uploads them. The second finds the gzip variants through the cache and a HEAD.
    const plain = await writeOciImage(layout, 'plain', {
      seed: 63,
      layers: 3,
      layerSize: 200_000,
      compressed: false,
    });
    const first = await copy(`oci:${layout}:plain`, `docker://${proxy.host}/plain:v1`);
    expect(first.code, first.stderr).toBe(0);
    await proxy.settled();
    expect(proxy.blobBytesUp).toBeGreaterThan(0);
    proxy.reset();
    const second = await copy(`oci:${layout}:plain`, `docker://${proxy.host}/plain:v1`);
    expect(second.code, second.stderr).toBe(0);
    await proxy.settled();
    expect(proxy.blobBytesUp).toBe(0);
    expect(proxy.blobBytesDown).toBe(0);
    expect(proxy.count(BLOB_UPLOAD)).toBe(0);
    const evs = events(second.stdout);
    expect(evs.find((e) => e.type === 'done')?.bytesMoved).toBe(0);
    const substituted = evs.filter((e) => e.type === 'blob-reused' && e.how === 'substituted');
    expect(substituted.map((e) => e.digest).sort()).toEqual(plain.layers.map((l) => l.digest).sort());
    // The same manifest, of gzip layers, as the first push wrote.
    const written = (out: string) => events(out).find((e) => e.type === 'manifest-written')?.digest;
    expect(written(second.stdout)).toBe(written(first.stdout));
  });
});
