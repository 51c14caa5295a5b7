// podman pulls from a real registry (docker-registry on 127.0.0.1), where skopeo pushed layers
// compressed by Go's gzip: the store keeps them uncompressed, and img copies the image out through
// the layers' diff digests (LayerInfosForCopy), since zlib cannot rebuild Go's gzip bytes.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { type BlobInfo, computeDigest, MediaTypes, parseImageName } from '@img/core';
import { type RegistryServer, startRegistry, type TestImage } from '@img/testing';
import '@img/transport-storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, Sandbox, skopeo } from './helpers/cli.js';
import { writeOciImage } from './helpers/images.js';

const exec = promisify(execFile);
const hasTools =
  existsSync('/usr/bin/podman') &&
  existsSync('/usr/bin/skopeo') &&
  existsSync('/usr/bin/docker-registry') &&
  process.getuid?.() === 0;

// The copy engine (packages/core/src/copy) takes a source's layerInfosForCopy once it is wired in;
// until then a copy out of the store asks for Go's gzip blob, which the store cannot rebuild. The
// test below runs by itself as soon as the built engine uses the method.
const engineUsesLayerInfosForCopy = (() => {
  try {
    return readFileSync(join(repoRoot, 'packages/core/dist/copy/copy.js'), 'utf8').includes(
      'layerInfosForCopy',
    );
  } catch {
    return false;
  }
})();

describe.runIf(hasTools)('an image podman pulled from a registry (Go gzip layers)', () => {
  let box: Sandbox;
  let registry: RegistryServer;
  let graph: string;
  let runRoot: string;
  let spec: string;
  let image: TestImage;
  let pushed: { layers: BlobInfo[] };
  let name: string;

  beforeAll(async () => {
    box = await Sandbox.create();
    registry = await startRegistry({ logLevel: 'error' });
    graph = box.path('store', 'g');
    runRoot = box.path('store', 'r');
    spec = `[vfs@${graph}+${runRoot}]`;
    // An uncompressed layout: skopeo compresses each layer with Go's gzip on the way to the registry.
    const plain = box.path('plain');
    image = await writeOciImage(plain, 'v1', { seed: 81, layers: 3, layerSize: 250_000, compressed: false });
    name = `${registry.host}/go/app:v1`;
    const push = await skopeo(
      'copy',
      '--quiet',
      '--dest-tls-verify=false',
      `oci:${plain}:v1`,
      `docker://${name}`,
    );
    expect(push.code, push.stderr).toBe(0);
    const raw = await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${name}`);
    pushed = JSON.parse(raw.stdout);
    await exec('podman', [
      '--root',
      graph,
      '--runroot',
      runRoot,
      '--storage-driver',
      'vfs',
      'pull',
      '-q',
      '--tls-verify=false',
      name,
    ]);
  });
  afterAll(async () => {
    await registry?.stop();
    await box?.cleanup();
  });

  it('holds layers zlib cannot rebuild: podman recorded Go’s gzip digests', async () => {
    const layers = JSON.parse(await readFile(join(graph, 'vfs-layers', 'layers.json'), 'utf8')) as Array<{
      'compressed-diff-digest': string;
      'diff-digest': string;
    }>;
    const byDiff = new Map(layers.map((l) => [l['diff-digest'], l['compressed-diff-digest']]));
    for (const [i, layer] of image.layers.entries()) {
      const goDigest = pushed.layers[i]!.digest;
      expect(pushed.layers[i]!.mediaType).toBe(MediaTypes.ociLayerGzip);
      expect(byDiff.get(layer.diffID)).toBe(goDigest);
      expect(computeDigest(gzipSync(layer.bytes))).not.toBe(goDigest);
    }
  });

  it('the storage source offers the diff digests and serves each one byte for byte', async () => {
    const ref = parseImageName(`containers-storage:${spec}${name}`);
    const src = await ref.newImageSource({});
    try {
      const infos = (await src.layerInfosForCopy!()) as BlobInfo[];
      expect(infos).toEqual(
        image.layers.map((l) => ({ digest: l.diffID, size: l.bytes.length, mediaType: MediaTypes.ociLayer })),
      );
      for (const [i, info] of infos.entries()) {
        const hash = createHash('sha256');
        for await (const chunk of (await src.getBlob(info)).stream) hash.update(chunk as Buffer);
        expect(`sha256:${hash.digest('hex')}`).toBe(image.layers[i]!.diffID);
      }
    } finally {
      await src.close();
    }
  });

  it.skipIf(!engineUsesLayerInfosForCopy)(
    'img copies it out to oci: (needs the copy engine to use layerInfosForCopy)',
    async () => {
      const out = box.path('out');
      const r = await box.img(
        '--insecure-policy',
        'copy',
        '--quiet',
        `containers-storage:${spec}${name}`,
        `oci:${out}:v1`,
      );
      expect(r.code, r.stderr).toBe(0);
      // skopeo reads it back, verifying every blob; the layers are the same tars.
      const back = await skopeo('copy', '--quiet', `oci:${out}:v1`, `oci:${box.path('verified')}:v1`);
      expect(back.code, back.stderr).toBe(0);
      const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8'));
      const blob = (d: string) => readFile(join(out, 'blobs/sha256', d.slice(7)));
      const manifest = JSON.parse((await blob(index.manifests[0].digest)).toString('utf8'));
      const config = JSON.parse((await blob(manifest.config.digest)).toString('utf8'));
      expect(config.rootfs.diff_ids).toEqual(image.layers.map((l) => l.diffID));
      for (const [i, layer] of (manifest.layers as BlobInfo[]).entries()) {
        const bytes = await blob(layer.digest);
        const tar = layer.mediaType === MediaTypes.ociLayerGzip ? gunzipSync(bytes) : bytes;
        expect(computeDigest(tar)).toBe(image.layers[i]!.diffID);
      }
    },
  );
});
