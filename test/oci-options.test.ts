import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sandbox, skopeo } from './helpers/cli.js';
import { writeOciImage } from './helpers/images.js';

const hasSkopeo = existsSync('/usr/bin/skopeo');

interface Event {
  type: string;
  bytesMoved?: number;
}

describe("skopeo's oci: options", () => {
  let box: Sandbox;
  beforeAll(async () => {
    box = await Sandbox.create();
  });
  afterAll(() => box.cleanup());

  it('writes blobs to a shared blob directory that img and skopeo read back with --shared-blob-dir', async () => {
    const image = await writeOciImage(box.path('src'), 'v1', { seed: 91, layers: 2 });
    const shared = box.path('shared');
    const dest = `oci:${box.path('dest')}:v1`;
    const r = await box.img(
      '--insecure-policy',
      'copy',
      '--quiet',
      '--dest-shared-blob-dir',
      shared,
      `oci:${box.path('src')}:v1`,
      dest,
    );
    expect(r.code, r.stderr).toBe(0);
    const own = (await readdir(box.path('dest/blobs'), { recursive: true })) as string[];
    expect(own.filter((f) => /[a-f0-9]{64}$/.test(f))).toEqual([]);
    const digest = await box.img('inspect', '--shared-blob-dir', shared, '--format', '{{.Digest}}', dest);
    expect(digest.stdout.trim()).toBe(image.manifestDigest);
    if (hasSkopeo) {
      const back = await skopeo('inspect', '--shared-blob-dir', shared, '--format', '{{.Digest}}', dest);
      expect(back.stdout.trim()).toBe(image.manifestDigest);
    }
    const out = await box.img(
      '--insecure-policy',
      'copy',
      '--quiet',
      '--src-shared-blob-dir',
      shared,
      dest,
      `dir:${box.path('out')}`,
    );
    expect(out.code, out.stderr).toBe(0);
  });

  it('keeps uncompressed layers as they are with --dest-oci-accept-uncompressed-layers, so a second copy moves nothing', async () => {
    const image = await writeOciImage(box.path('plain'), 'v1', { seed: 92, layers: 2, compressed: false });
    const args = ['--insecure-policy', 'copy', '--progress=json', '--dest-oci-accept-uncompressed-layers'];
    const target = `oci:${box.path('plain-copy')}:v1`;
    const first = await box.img(...args, `oci:${box.path('plain')}:v1`, target);
    expect(first.code, first.stderr).toBe(0);
    const layers = JSON.parse((await box.img('inspect', target)).stdout).Layers;
    expect(layers).toEqual(image.layers.map((l) => l.digest));
    const again = await box.img(...args, `oci:${box.path('plain')}:v1`, target);
    const events = again.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Event);
    expect(events.at(-1)).toMatchObject({ type: 'done', bytesMoved: 0 });
  });
});
