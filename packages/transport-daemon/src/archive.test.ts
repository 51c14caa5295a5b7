import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import {
  computeDigest,
  copyImage,
  type ImageReference,
  InvalidLayoutError,
  InvalidReferenceError,
  insecureAcceptAnythingPolicy,
  ManifestUnknownError,
  MediaTypes,
  PolicyContext,
} from '@img/core';
import { type DockerdServer, MemoryStore, makeTar, randomImage, readImage, startDockerd } from '@img/testing';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newDockerArchiveReference } from './index.js';
import { readArchiveStream } from './tarball/contents.js';
import { readManifestItems, resolveImage } from './tarball/image.js';

const run = promisify(execFile);
const policy = new PolicyContext(insecureAcceptAnythingPolicy);
const copy = (dest: ImageReference, src: ImageReference) => copyImage(dest, src, { policy });
const hasSkopeo = await run('skopeo', ['--version']).then(
  () => true,
  () => false,
);

let root: string;
let daemon: DockerdServer;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'img-docker-archive-'));
  daemon = await startDockerd();
}, 90_000);
afterAll(async () => {
  await daemon?.stop();
  await rm(root, { recursive: true, force: true });
}, 60_000);

/** A tar built in memory from entries in order: files, and symbolic links as `{link}`. */
async function tarOf(entries: Array<[string, Buffer | string | { link: string }]>): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((resolve) => p.on('end', () => resolve()));
  for (const [name, content] of entries) {
    if (typeof content === 'object' && !Buffer.isBuffer(content)) {
      p.entry({ name, type: 'symlink', linkname: content.link });
    } else {
      p.entry({ name, mode: 0o644 }, Buffer.from(content));
    }
  }
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

describe('docker-archive', () => {
  it('holds several images, read back by tag and by position', async () => {
    const path = join(root, 'several.tar');
    const store = new MemoryStore('archive-several');
    const one = await randomImage({ seed: 31, layers: 2, format: 'docker' });
    const two = await randomImage({ seed: 32, layers: 1, format: 'docker' });
    await copy(newDockerArchiveReference(path, 'img-test/one:v1'), store.add('one', one));
    await copy(newDockerArchiveReference(path, 'img-test/two:v1'), store.add('two', two));
    const byTag = await readImage(newDockerArchiveReference(path, 'img-test/two:v1'));
    expect(byTag.manifestDigest).toBe(two.manifestDigest);
    const byIndex = await readImage(newDockerArchiveReference(path, 0));
    expect(byIndex.manifestDigest).toBe(one.manifestDigest);
    await expect(readImage(newDockerArchiveReference(path))).rejects.toBeInstanceOf(InvalidReferenceError);
    await expect(readImage(newDockerArchiveReference(path, 'img-test/three:v1'))).rejects.toBeInstanceOf(
      ManifestUnknownError,
    );
  });

  it('moves a tag to the new image and drops the image that had only it', async () => {
    const path = join(root, 'moved.tar');
    const store = new MemoryStore('archive-moved');
    const one = await randomImage({ seed: 33, layers: 1, format: 'docker' });
    const two = await randomImage({ seed: 34, layers: 1, format: 'docker' });
    await copy(newDockerArchiveReference(path, 'img-test/moved:v1'), store.add('one', one));
    await copy(newDockerArchiveReference(path, 'img-test/moved:v1'), store.add('two', two));
    const { stdout } = await run('tar', ['-xOf', path, 'manifest.json']);
    const items = JSON.parse(stdout);
    expect(items).toHaveLength(1);
    expect(items[0].Config).toBe(`blobs/sha256/${two.configDigest.slice(7)}`);
    expect(items[0].RepoTags).toEqual(['img-test/moved:v1']);
  });

  it('is loaded by docker load with the expected ID and tag', async () => {
    const path = join(root, 'for-docker.tar');
    const store = new MemoryStore('archive-docker');
    const image = await randomImage({ seed: 35, layers: 2, format: 'docker' });
    await copy(newDockerArchiveReference(path, 'img-test/loaded:v1'), store.add('a', image));
    expect(await daemon.docker(['load', '-i', path])).toContain('Loaded image: img-test/loaded:v1');
    const [shown] = JSON.parse(await daemon.docker(['image', 'inspect', 'img-test/loaded:v1']));
    expect(shown.Id).toBe(image.configDigest);
  });

  it('reads what docker save writes (the legacy layout of Docker 20.10)', async () => {
    const path = join(root, 'saved.tar');
    const store = new MemoryStore('archive-saved');
    const image = await randomImage({ seed: 36, layers: 2, format: 'docker', compressed: false });
    await copy(newDockerArchiveReference(join(root, 'in.tar'), 'img-test/saved:v1'), store.add('a', image));
    await daemon.docker(['load', '-i', join(root, 'in.tar')]);
    await daemon.docker(['save', '-o', path, 'img-test/saved:v1']);
    const back = await readImage(newDockerArchiveReference(path, 'img-test/saved:v1'));
    expect(back.configDigest).toBe(image.configDigest);
    expect(back.layers.map((l) => l.digest)).toEqual(image.layers.map((l) => l.digest));
  });

  it('reads plain and gzip layers of a legacy archive, each with its own media type and digest', async () => {
    const plain = await makeTar({ 'a.txt': 'plain layer' });
    const zipped = await makeTar({ 'b.txt': 'zipped layer' });
    const gz = gzipSync(zipped);
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: [computeDigest(plain), computeDigest(zipped)] },
      }),
    );
    const path = join(root, 'legacy.tar');
    await writeFile(
      path,
      await tarOf([
        ['1111/layer.tar', plain],
        ['2222/layer.tar', gz],
        ['cfg.json', config],
        [
          'manifest.json',
          JSON.stringify([
            { Config: 'cfg.json', RepoTags: ['legacy:v1'], Layers: ['1111/layer.tar', '2222/layer.tar'] },
          ]),
        ],
      ]),
    );
    const source = await newDockerArchiveReference(path, 'legacy:v1').newImageSource({});
    try {
      const manifest = JSON.parse(Buffer.from((await source.getManifest()).bytes).toString());
      expect(manifest.mediaType).toBe(MediaTypes.dockerV2Schema2);
      expect(manifest.config.digest).toBe(computeDigest(config));
      expect(manifest.layers).toEqual([
        { mediaType: MediaTypes.dockerLayer, size: plain.length, digest: computeDigest(plain) },
        { mediaType: MediaTypes.dockerLayerGzip, size: gz.length, digest: computeDigest(gz) },
      ]);
    } finally {
      await source.close();
    }
    const back = await readImage(newDockerArchiveReference(path, 'legacy:v1'));
    expect(back.layers).toHaveLength(2);
  });

  it('gives back the stored manifest of an OCI-layout archive (docker save of Docker 25+), from a file and from a stream', async () => {
    const image = await randomImage({ seed: 37, layers: 2, format: 'oci', compressed: false });
    const hex = (d: string) => d.slice('sha256:'.length);
    const entries: Array<[string, Buffer | string | { link: string }]> = [
      [`blobs/sha256/${hex(image.manifestDigest)}`, image.manifest],
      [`blobs/sha256/${hex(image.configDigest)}`, image.config],
      ...image.layers.map((l): [string, Buffer] => [`blobs/sha256/${hex(l.digest)}`, l.bytes]),
      ['legacy1/layer.tar', { link: `../blobs/sha256/${hex(image.layers[0]!.digest)}` }],
      [
        'index.json',
        JSON.stringify({
          schemaVersion: 2,
          manifests: [
            {
              mediaType: MediaTypes.ociManifest,
              digest: image.manifestDigest,
              size: image.manifest.length,
              annotations: { 'io.containerd.image.name': 'docker.io/library/modern:v1' },
            },
          ],
        }),
      ],
      [
        'manifest.json',
        JSON.stringify([
          {
            Config: `blobs/sha256/${hex(image.configDigest)}`,
            RepoTags: ['modern:v1'],
            Layers: ['legacy1/layer.tar', `blobs/sha256/${hex(image.layers[1]!.digest)}`],
          },
        ]),
      ],
      ['oci-layout', '{"imageLayoutVersion":"1.0.0"}'],
      ['repositories', '{}'],
    ];
    const tar = await tarOf(entries);
    const path = join(root, 'modern.tar');
    await writeFile(path, tar);
    const back = await readImage(newDockerArchiveReference(path, 'modern:v1'));
    expect(back.manifestDigest).toBe(image.manifestDigest);
    expect(back.mediaType).toBe(MediaTypes.ociManifest);

    const spool = await mkdtemp(join(root, 'spool-'));
    const contents = await readArchiveStream(Readable.from([tar]), spool, () => false);
    const [item] = await readManifestItems(contents, 'stream');
    const resolved = await resolveImage(contents, item!, 'stream');
    expect(resolved.digest).toBe(image.manifestDigest);
    expect(resolved.stored).toBe(true);
  });

  it('refuses to overwrite a file that is not a docker archive', async () => {
    const path = join(root, 'not-an-archive.txt');
    await writeFile(path, 'precious');
    await expect(newDockerArchiveReference(path, 'x:v1').newImageDestination({})).rejects.toBeInstanceOf(
      InvalidLayoutError,
    );
    expect(await readFile(path, 'utf8')).toBe('precious');
  });

  it.runIf(hasSkopeo)('is read by skopeo, and reads what skopeo writes', async () => {
    const ours = join(root, 'ours.tar');
    const theirs = join(root, 'theirs.tar');
    const store = new MemoryStore('archive-skopeo');
    const image = await randomImage({ seed: 38, layers: 2, format: 'docker' });
    await copy(newDockerArchiveReference(ours, 'img-test/skopeo:v1'), store.add('a', image));
    const { stdout } = await run('skopeo', ['inspect', '--raw', `docker-archive:${ours}:img-test/skopeo:v1`]);
    expect(JSON.parse(stdout).config.digest).toBe(image.configDigest);
    await run('skopeo', [
      '--insecure-policy',
      'copy',
      `docker-archive:${ours}:img-test/skopeo:v1`,
      `docker-archive:${theirs}:img-test/skopeo:v1`,
    ]);
    const back = await readImage(newDockerArchiveReference(theirs, 'img-test/skopeo:v1'));
    expect(back.configDigest).toBe(image.configDigest);
    // skopeo decompresses layers into docker-archive: each is now its DiffID.
    expect(back.layers.map((l) => l.digest)).toEqual(image.layers.map((l) => l.diffID));
    expect(await daemon.docker(['load', '-i', theirs])).toContain('img-test/skopeo:v1');
  });
});
