import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import {
  BLOB_GET,
  BLOB_UPLOAD,
  type FaultProxy,
  type RegistryServer,
  startFaultProxy,
  startRegistry,
} from '@img/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imgBin, Sandbox, skopeo } from './helpers/cli.js';
import { writeOciImage } from './helpers/images.js';

const GiB = 1024 * 1024 * 1024;

/** A digesting pass-through that also counts. */
function hasher(): Transform & { digest: () => string; size: () => number } {
  const hash = createHash('sha256');
  let size = 0;
  const t = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  let digest: string | undefined;
  return Object.assign(t, {
    digest: () => {
      digest ??= `sha256:${hash.digest('hex')}`;
      return digest;
    },
    size: () => size,
  });
}

/**
 * Writes an OCI layout holding one image whose single layer is a gzip (level 0, so it is quick)
 * of a tar of `size` random bytes: built from /dev/urandom with tar, streamed, nothing in memory.
 */
async function writeBigImage(
  layout: string,
  size: number,
): Promise<{ layerDigest: string; layerSize: number }> {
  const blobs = join(layout, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const tmp = join(layout, 'layer.tmp');
  const tar = spawn(
    'sh',
    ['-c', `head -c ${size} /dev/urandom > ${layout}/data && tar -C ${layout} -cf - data`],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const diff = hasher();
  const layer = hasher();
  await pipeline(tar.stdout, diff, createGzip({ level: 0 }), layer, createWriteStream(tmp));
  await rename(tmp, join(blobs, layer.digest().slice(7)));
  const put = async (bytes: Buffer) => {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    await writeFile(join(blobs, digest.slice(7)), bytes);
    return { digest, size: bytes.length };
  };
  const config = await put(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: [diff.digest()] },
      }),
    ),
  );
  const manifest = await put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [
          {
            mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
            digest: layer.digest(),
            size: layer.size(),
          },
        ],
      }),
    ),
  );
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'org.opencontainers.image.ref.name': 'v1' },
        },
      ],
    }),
  );
  return { layerDigest: layer.digest(), layerSize: layer.size() };
}

describe('registry copies under faults', () => {
  let box: Sandbox;
  let registry: RegistryServer;
  let proxy: FaultProxy;
  beforeAll(async () => {
    box = await Sandbox.create();
    registry = await startRegistry({ logLevel: 'error' });
    proxy = await startFaultProxy({ target: registry.url });
  });
  afterAll(async () => {
    await proxy?.close();
    await registry?.stop();
    await box?.cleanup();
  });

  it('copies 1 GiB through 429 storms and mid-blob resets, both ways', { timeout: 600_000 }, async () => {
    const layout = box.path('big');
    const { layerDigest, layerSize } = await writeBigImage(layout, GiB);

    // Push: every 3rd PATCH chunk refused once with 429 (Retry-After 1), so chunks are sent again.
    proxy.reset();
    const patches = proxy.addFault({
      match: { method: 'PATCH' },
      action: { kind: 'too-many-requests', retryAfter: 1 },
      every: 3,
    });
    let started = Date.now();
    const pushed = await box.img(
      '--insecure-policy',
      'copy',
      '--quiet',
      '--dest-tls-verify=false',
      `oci:${layout}:v1`,
      `docker://${proxy.host}/big:v1`,
    );
    const pushMs = Date.now() - started;
    expect(pushed.code, pushed.stderr).toBe(0);
    await proxy.settled();
    expect(patches.applied).toBeGreaterThan(5);
    // One accepted PATCH per 64 MiB chunk read from the layout's file: every refused chunk was sent
    // again, none twice.
    expect(proxy.requests.filter((r) => r.method === 'PATCH' && r.status === 202).length).toBe(
      Math.ceil(layerSize / (64 * 1024 * 1024)),
    );
    patches.remove();

    // Pull: the blob read is cut three times mid-way, and a storm of 429s hits the first GETs.
    proxy.reset();
    proxy.addFault({
      match: { method: 'GET' },
      action: { kind: 'too-many-requests', retryAfter: 1 },
      times: 3,
    });
    proxy.addFault({
      match: BLOB_GET,
      action: { kind: 'reset-response', afterBytes: 200 * 1024 * 1024, rst: true },
      times: 3,
    });
    started = Date.now();
    const pulled = await box.img(
      '--insecure-policy',
      'copy',
      '--quiet',
      '--src-tls-verify=false',
      `docker://${proxy.host}/big:v1`,
      `oci:${box.path('big-back')}:v1`,
    );
    const pullMs = Date.now() - started;
    expect(pulled.code, pulled.stderr).toBe(0);
    await proxy.settled();
    const layerGets = proxy.requests.filter((r) => r.method === 'GET' && r.path.includes(layerDigest));
    expect(layerGets.map((r) => r.status)).toEqual([200, 206, 206, 206]);
    const back = await skopeo('inspect', '--raw', `oci:${box.path('big-back')}:v1`);
    expect(JSON.parse(back.stdout).layers[0]).toMatchObject({ digest: layerDigest, size: layerSize });
    // Measurements for the report (not asserted: timings live in bench/).
    process.stderr.write(`1 GiB push ${pushMs} ms (with 429s), pull ${pullMs} ms (3 resets, 3 429s)\n`);
  });

  it('leaves no tag when killed mid-copy, and the re-run reuses what was uploaded', async () => {
    const src = box.path('killed-src');
    await writeOciImage(src, 'v1', { seed: 51, layers: 3, layerSize: 6 * 1024 * 1024 });
    proxy.reset();
    const throttle = proxy.addFault({
      match: BLOB_UPLOAD,
      action: { kind: 'throttle', bytesPerSecond: 4 * 1024 * 1024, direction: 'up' },
    });
    const args = [
      imgBin,
      '--insecure-policy',
      'copy',
      '--quiet',
      '--image-parallel-copies',
      '1',
      '--dest-tls-verify=false',
      `oci:${src}:v1`,
      `docker://${proxy.host}/killed:v1`,
    ];
    const child: ChildProcess = spawn(process.execPath, args, { env: box.env(), stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal ? 137 : _code)),
    );
    // Kill it as soon as one blob upload has completed (a final PUT answered 201).
    for (let i = 0; i < 600; i++) {
      if (
        proxy.requests.some(
          (r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/') && r.status === 201,
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    expect(await exited).toBe(137);
    throttle.remove();
    await proxy.settled();
    const completed = proxy.requests.filter(
      (r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/') && r.status === 201,
    ).length;
    expect(completed).toBeGreaterThanOrEqual(1);
    expect(proxy.count({ method: 'PUT', path: '/manifests/' })).toBe(0);
    const noTag = await skopeo('inspect', '--tls-verify=false', `docker://${registry.host}/killed:v1`);
    expect(noTag.code).not.toBe(0);

    proxy.reset();
    const rerun = await box.img(...args.slice(1));
    expect(rerun.code, rerun.stderr).toBe(0);
    await proxy.settled();
    const reused = proxy.requests.filter(
      (r) => r.method === 'HEAD' && r.path.includes('/blobs/') && r.status === 200,
    );
    expect(reused.length).toBe(completed);
    const uploadedAgain = proxy.requests.filter(
      (r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/') && r.status === 201,
    ).length;
    expect(uploadedAgain).toBe(4 - completed);
    const tagged = await skopeo('inspect', '--tls-verify=false', `docker://${registry.host}/killed:v1`);
    expect(tagged.code, tagged.stderr).toBe(0);
  });
});
