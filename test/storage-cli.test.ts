// img and podman sharing one containers-storage store (temp graph and run roots only), through the
// built CLI: what img writes podman lists, a repeated copy reads and writes nothing, layers podman
// already has are not extracted again, delete, copy out and inspect.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { computeDigest, copyImage, insecureAcceptAnythingPolicy, MediaTypes, PolicyContext } from '@img/core';
import { MemoryStore, randomImage, type TestImage } from '@img/testing';
import { newOciReference } from '@img/transport-oci';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, Sandbox, skopeo } from './helpers/cli.js';
import { writeOciImage } from './helpers/images.js';

const exec = promisify(execFile);
const hasTools = existsSync('/usr/bin/podman') && existsSync('/usr/bin/skopeo') && process.getuid?.() === 0;
const hasUmoci = existsSync('/usr/bin/umoci');

interface Event {
  type: string;
  kind?: string;
  bytesMoved?: number;
}

function events(stdout: string): Event[] {
  return stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Event);
}

/** `base`'s layers plus the last layer of `extra`, as a new image (its own config and manifest). */
function stacked(base: TestImage, extra: TestImage): TestImage {
  const layers = [...base.layers, extra.layers.at(-1)!];
  const config = Buffer.from(
    JSON.stringify({
      created: '2026-01-01T00:00:00Z',
      architecture: 'amd64',
      os: 'linux',
      config: { Labels: { stacked: 'yes' } },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffID) },
    }),
  );
  const configDigest = computeDigest(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: configDigest, size: config.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.bytes.length })),
    }),
  );
  const blobs = new Map([[configDigest, config]]);
  for (const l of layers) blobs.set(l.digest, l.bytes);
  return {
    manifest,
    manifestDigest: computeDigest(manifest),
    mediaType: MediaTypes.ociManifest,
    config,
    configDigest,
    layers,
    blobs,
  };
}

describe.runIf(hasTools)('img and podman share a containers-storage store (vfs)', () => {
  let box: Sandbox;
  let graph: string;
  let runRoot: string;
  let spec: string;
  let src: string;
  let image: TestImage;
  const podman = async (...args: string[]) =>
    (
      await exec('podman', ['--root', graph, '--runroot', runRoot, '--storage-driver', 'vfs', ...args], {
        maxBuffer: 64 << 20,
      })
    ).stdout;
  const layersJson = () => readFile(join(graph, 'vfs-layers', 'layers.json'), 'utf8');
  const imagesJson = () => readFile(join(graph, 'vfs-images', 'images.json'), 'utf8');

  beforeAll(async () => {
    box = await Sandbox.create();
    graph = box.path('store', 'g');
    runRoot = box.path('store', 'r');
    spec = `[vfs@${graph}+${runRoot}]`;
    src = box.path('src');
    image = await writeOciImage(src, 'v1', { seed: 71, layers: 3, layerSize: 300_000 });
  });
  afterAll(async () => {
    await exec('podman', [
      '--root',
      graph,
      '--runroot',
      runRoot,
      '--storage-driver',
      'vfs',
      'image',
      'unmount',
      '--all',
    ]).catch(() => {});
    await box.cleanup();
  });

  it('img copy writes an image podman lists and inspects with the same ID, digest, name and layers', async () => {
    const r = await box.img(
      '--insecure-policy',
      'copy',
      '--quiet',
      `oci:${src}:v1`,
      `containers-storage:${spec}localhost/app:v1`,
    );
    expect(r.code, r.stderr).toBe(0);
    const listed = JSON.parse(await podman('images', '--format', 'json')) as Array<{
      Id: string;
      Names: string[];
      Digest: string;
    }>;
    expect(listed.map((i) => [i.Id, i.Names, i.Digest])).toEqual([
      [image.configDigest.slice(7), ['localhost/app:v1'], image.manifestDigest],
    ]);
    const [inspected] = JSON.parse(await podman('image', 'inspect', 'localhost/app:v1')) as Array<{
      Id: string;
      Digest: string;
      RootFS: { Layers: string[] };
    }>;
    expect(inspected!.RootFS.Layers).toEqual(image.layers.map((l) => l.diffID));
    // podman reads the files back: its own export of the image carries the same diff IDs.
    const saved = box.path('podman-saved');
    await podman('save', '--format', 'oci-dir', '-o', saved, 'localhost/app:v1');
    const index = JSON.parse(await readFile(join(saved, 'index.json'), 'utf8'));
    const m = JSON.parse(
      await readFile(join(saved, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'),
    );
    const c = JSON.parse(await readFile(join(saved, 'blobs/sha256', m.config.digest.slice(7)), 'utf8'));
    expect(c.rootfs.diff_ids).toEqual(image.layers.map((l) => l.diffID));
  });

  it('a second copy reads no layer and writes nothing: layers.json and images.json stay as they were', async () => {
    const before = { layers: await layersJson(), images: await imagesJson() };
    const mtimes = [
      (await stat(join(graph, 'vfs-layers', 'layers.json'))).mtimeMs,
      (await stat(join(graph, 'vfs-images', 'images.json'))).mtimeMs,
    ];
    const hidden = box.path('hidden');
    await mkdir(hidden);
    const paths = image.layers.map((l) => join(src, 'blobs/sha256', l.digest.slice(7)));
    for (const [i, p] of paths.entries()) await rename(p, join(hidden, String(i)));
    try {
      const r = await box.img(
        '--insecure-policy',
        'copy',
        '--progress=json',
        `oci:${src}:v1`,
        `containers-storage:${spec}localhost/app:v1`,
      );
      expect(r.code, r.stderr).toBe(0);
      const evs = events(r.stdout);
      expect(evs.some((e) => e.type === 'image-present')).toBe(true);
      expect(evs.filter((e) => e.type === 'blob-done')).toEqual([]);
      expect(evs.find((e) => e.type === 'done')?.bytesMoved).toBe(0);
    } finally {
      for (const [i, p] of paths.entries()) await rename(join(hidden, String(i)), p);
    }
    expect({ layers: await layersJson(), images: await imagesJson() }).toEqual(before);
    expect([
      (await stat(join(graph, 'vfs-layers', 'layers.json'))).mtimeMs,
      (await stat(join(graph, 'vfs-images', 'images.json'))).mtimeMs,
    ]).toEqual(mtimes);
  });

  it('img inspect reads the image podman lists', async () => {
    const r = await box.img('inspect', `containers-storage:${spec}localhost/app:v1`);
    expect(r.code, r.stderr).toBe(0);
    const inspected = JSON.parse(r.stdout) as {
      Digest: string;
      Layers: string[];
      Labels: Record<string, string>;
    };
    expect(inspected.Digest).toBe(image.manifestDigest);
    expect(inspected.Layers).toEqual(image.layers.map((l) => l.digest));
    expect(inspected.Labels).toEqual({ seed: '71' });
    const byId = await box.img(
      'inspect',
      '--format',
      '{{.Digest}}',
      `containers-storage:${spec}@${image.configDigest.slice(7)}`,
    );
    expect(byId.stdout.trim(), byId.stderr).toBe(image.manifestDigest);
  });

  it('img copies out to oci: what skopeo and umoci read with the same digests and files', async () => {
    const out = box.path('out');
    const r = await box.img(
      '--insecure-policy',
      'copy',
      '--quiet',
      `containers-storage:${spec}localhost/app:v1`,
      `oci:${out}:v1`,
    );
    expect(r.code, r.stderr).toBe(0);
    const s = await skopeo('inspect', `oci:${out}:v1`);
    expect(s.code, s.stderr).toBe(0);
    const inspected = JSON.parse(s.stdout) as { Digest: string; Layers: string[] };
    // Layers img wrote were made by zlib, so they are rebuilt byte for byte: the same image.
    expect(inspected.Digest).toBe(image.manifestDigest);
    expect(inspected.Layers).toEqual(image.layers.map((l) => l.digest));
    if (hasUmoci) {
      const bundle = box.path('bundle');
      const u = await run('umoci', ['unpack', '--image', `${out}:v1`, bundle]);
      expect(u.code, u.stderr).toBe(0);
      for (const [i, layer] of image.layers.entries()) {
        // Each random layer is one file: its bytes follow the first 512-byte tar header.
        const tar = gunzipSync(layer.bytes);
        expect(tar.subarray(0, 16).toString('latin1')).toBe(`layer-${i}/data.bin`);
        const unpacked = await readFile(join(bundle, 'rootfs', `layer-${i}`, 'data.bin'));
        expect(Buffer.compare(unpacked, tar.subarray(512, 512 + 300_000))).toBe(0);
      }
    }
  });

  it('a copy of an image whose base layers the store has extracts only the new layer', async () => {
    // containers/storage itself (skopeo, podman's library) stores the base image; img then copies an
    // image stacked on it. (podman pull oci: derives a name from the path, refused for upper case.)
    const baseLayout = box.path('base');
    const base = await writeOciImage(baseLayout, 'v1', { seed: 72, layers: 2, layerSize: 200_000 });
    const pulled = await skopeo(
      'copy',
      '--quiet',
      `oci:${baseLayout}:v1`,
      `containers-storage:${spec}localhost/base:v1`,
    );
    expect(pulled.code, pulled.stderr).toBe(0);
    const derived = stacked(base, await randomImage({ seed: 73, layers: 1, layerSize: 200_000 }));
    const derivedLayout = box.path('derived');
    await copyImage(newOciReference(derivedLayout, 'v1'), new MemoryStore('fixture').add('v1', derived), {
      policy: new PolicyContext(insecureAcceptAnythingPolicy),
    });
    // The base layers' blobs are gone from the layout: img must not need them.
    for (const l of base.layers) await rm(join(derivedLayout, 'blobs/sha256', l.digest.slice(7)));
    const layerIdsBefore = (JSON.parse(await layersJson()) as Array<{ id: string }>).map((l) => l.id);
    const dirsBefore = await readdir(join(graph, 'vfs', 'dir'));

    const r = await box.img(
      '--insecure-policy',
      'copy',
      '--progress=json',
      `oci:${derivedLayout}:v1`,
      `containers-storage:${spec}localhost/derived:v1`,
    );
    expect(r.code, r.stderr).toBe(0);
    const done = events(r.stdout).filter((e) => e.type === 'blob-done' && e.kind === 'layer');
    expect(done).toHaveLength(1);
    const layersAfter = JSON.parse(await layersJson()) as Array<{ id: string; 'diff-digest': string }>;
    const added = layersAfter.filter((l) => !layerIdsBefore.includes(l.id));
    expect(added.map((l) => l['diff-digest'])).toEqual([derived.layers[2]!.diffID]);
    expect((await readdir(join(graph, 'vfs', 'dir'))).sort()).toEqual([...dirsBefore, added[0]!.id].sort());
    const [inspected] = JSON.parse(await podman('image', 'inspect', 'localhost/derived:v1')) as Array<{
      RootFS: { Layers: string[] };
    }>;
    expect(inspected!.RootFS.Layers).toEqual(derived.layers.map((l) => l.diffID));
  });

  it('img delete removes the image and its unshared layers; podman keeps the rest', async () => {
    const before = JSON.parse(await layersJson()) as Array<{ id: string; 'diff-digest': string }>;
    const r = await box.img('delete', `containers-storage:${spec}localhost/derived:v1`);
    expect(r.code, r.stderr).toBe(0);
    const names = (JSON.parse(await podman('images', '--format', 'json')) as Array<{ Names?: string[] }>)
      .flatMap((i) => i.Names ?? [])
      .sort();
    expect(names).toEqual(['localhost/app:v1', 'localhost/base:v1']);
    expect(names).not.toContain('localhost/derived:v1');
    expect(JSON.parse(await imagesJson())).toHaveLength(2);
    const after = JSON.parse(await layersJson()) as Array<{ id: string }>;
    // Only the derived image's own top layer went away; podman's base layers stay.
    expect(before.length - after.length).toBe(1);
    expect(await readdir(join(graph, 'vfs', 'dir'))).toHaveLength(after.length);
    const gone = await podman('image', 'exists', 'localhost/derived:v1').then(
      () => false,
      () => true,
    );
    expect(gone).toBe(true);
  });
});
