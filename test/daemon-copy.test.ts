import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type CountingProxy,
  type DockerdServer,
  type ProxiedRequest,
  startCountingProxy,
  startDockerd,
  type TestImage,
} from '@img/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { imgBin, run, Sandbox, skopeo } from './helpers/cli.js';
import { writeOciImage } from './helpers/images.js';

const hasSkopeo = (await run('skopeo', ['--version']).catch(() => ({ code: -1 }))).code === 0;

/** The Engine API requests a copy made, and the bytes it sent to POST /images/load. */
function summary(requests: ProxiedRequest[]): { requests: string[]; loadedBytes: number } {
  return {
    requests: requests.map((r) => `${r.method} ${r.path.replace(/^\/v[\d.]+/, '')}`),
    loadedBytes: requests
      .filter((r) => r.path.includes('/images/load'))
      .reduce((n, r) => n + r.requestBytes, 0),
  };
}

describe('img copy into and out of docker-daemon:', () => {
  let box: Sandbox;
  let daemon: DockerdServer;
  let proxy: CountingProxy;
  let image: TestImage;
  let src: string;
  beforeAll(async () => {
    box = await Sandbox.create();
    daemon = await startDockerd();
    proxy = await startCountingProxy(daemon.socket);
    src = box.path('src');
    image = await writeOciImage(src, 'v1', { seed: 61, layers: 3, layerSize: 300_000, compressed: false });
  });
  afterAll(async () => {
    await proxy?.close();
    await daemon?.stop();
    await box?.cleanup();
  });
  beforeEach(() => proxy.reset());

  const inspect = async (name: string) => JSON.parse(await daemon.docker(['image', 'inspect', name]))[0];

  it('loads an OCI image that docker shows with its config digest as ID and the tag', async () => {
    const result = await box.img(
      '--insecure-policy',
      'copy',
      '--dest-daemon-host',
      proxy.host,
      `oci:${src}:v1`,
      'docker-daemon:img-e2e/app:v1',
    );
    expect(result.code, result.stderr).toBe(0);
    const shown = await inspect('img-e2e/app:v1');
    expect(shown.Id).toBe(image.configDigest);
    expect(shown.RepoTags).toEqual(['img-e2e/app:v1']);
    expect(shown.RootFS.Layers).toEqual(image.layers.map((l) => l.diffID));
  });

  it('copies it again with exactly one Engine API request and 0 bytes loaded', async () => {
    const result = await box.img(
      '--insecure-policy',
      'copy',
      '--dest-daemon-host',
      proxy.host,
      `oci:${src}:v1`,
      'docker-daemon:img-e2e/app:v1',
    );
    expect(result.code, result.stderr).toBe(0);
    expect(summary(proxy.requests)).toEqual({
      requests: ['GET /images/img-e2e/app:v1/json'],
      loadedBytes: 0,
    });
  });

  it.runIf(hasSkopeo)('while skopeo streams the whole image again', async () => {
    const result = await skopeo(
      'copy',
      '--dest-daemon-host',
      proxy.host,
      `oci:${src}:v1`,
      'docker-daemon:img-e2e/app:v1',
    );
    expect(result.code, result.stderr).toBe(0);
    const { requests, loadedBytes } = summary(proxy.requests);
    expect(requests.filter((r) => r.startsWith('POST /images/load'))).toHaveLength(1);
    expect(loadedBytes).toBeGreaterThan(image.layers.reduce((n, l) => n + l.bytes.length, 0));
  });

  it('copies it back out to an OCI layout with equal layer and config digests', async () => {
    const out = box.path('out');
    const result = await box.img(
      '--insecure-policy',
      'copy',
      '--src-daemon-host',
      proxy.host,
      '--dest-oci-accept-uncompressed-layers',
      'docker-daemon:img-e2e/app:v1',
      `oci:${out}:v1`,
    );
    expect(result.code, result.stderr).toBe(0);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8'));
    const digest = index.manifests[0].digest as string;
    const manifest = JSON.parse(await readFile(join(out, 'blobs/sha256', digest.slice(7)), 'utf8'));
    expect(manifest.config.digest).toBe(image.configDigest);
    expect(manifest.layers.map((l: { digest: string }) => l.digest)).toEqual(
      image.layers.map((l) => l.digest),
    );
    expect(summary(proxy.requests).requests).toEqual(['GET /images/img-e2e/app:v1/get']);
  });

  it('takes the daemon from DOCKER_HOST when no flag is given', async () => {
    const result = await run(process.execPath, [imgBin, 'inspect', '--raw', 'docker-daemon:img-e2e/app:v1'], {
      env: { ...box.env(), DOCKER_HOST: proxy.host },
    });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).config.digest).toBe(image.configDigest);
  });

  it('fails with one line when the daemon has no such image', async () => {
    const result = await box.img('inspect', '--daemon-host', proxy.host, 'docker-daemon:img-e2e/absent:v1');
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe('Error: manifest unknown: docker-daemon:img-e2e/absent:v1');
  });

  it.runIf(hasSkopeo)(
    "writes docker-archive files that docker load and skopeo accept, and reads skopeo's",
    async () => {
      const ours = box.path('ours.tar');
      const written = await box.img(
        '--insecure-policy',
        'copy',
        `oci:${src}:v1`,
        `docker-archive:${ours}:img-e2e/archived:v1`,
      );
      expect(written.code, written.stderr).toBe(0);
      expect(await daemon.docker(['load', '-i', ours])).toContain('Loaded image: img-e2e/archived:v1');
      expect((await inspect('img-e2e/archived:v1')).Id).toBe(image.configDigest);
      const theirs = box.path('theirs.tar');
      const copied = await skopeo(
        'copy',
        `docker-archive:${ours}:img-e2e/archived:v1`,
        `docker-archive:${theirs}:img-e2e/theirs:v1`,
      );
      expect(copied.code, copied.stderr).toBe(0);
      const read = await box.img('inspect', '--raw', `docker-archive:${theirs}:img-e2e/theirs:v1`);
      expect(read.code, read.stderr).toBe(0);
      expect(JSON.parse(read.stdout).config.digest).toBe(image.configDigest);
    },
  );
});
