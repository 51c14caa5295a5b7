import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sandbox } from './helpers/cli.js';
import { writeOciImage } from './helpers/images.js';

interface Event {
  type: string;
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

describe('a repeated copy between local layouts', () => {
  let box: Sandbox;
  let src: string;
  let layerPaths: string[];
  beforeAll(async () => {
    box = await Sandbox.create();
    src = box.path('src');
    const image = await writeOciImage(src, 'v1', { seed: 41, layers: 4, layerSize: 200_000 });
    layerPaths = image.layers.map((l) => join(src, 'blobs/sha256', l.digest.slice('sha256:'.length)));
  });
  afterAll(() => box.cleanup());

  for (const [name, dest] of [
    ['oci:', (b: Sandbox) => `oci:${b.path('dest-oci')}:v1`],
    ['dir:', (b: Sandbox) => `dir:${b.path('dest-dir')}`],
  ] as const) {
    it(`into ${name} reads no layer blob: it succeeds with the source's layers deleted`, async () => {
      const target = dest(box);
      const first = await box.img('--insecure-policy', 'copy', '--progress=json', `oci:${src}:v1`, target);
      expect(first.code, first.stderr).toBe(0);
      const done = events(first.stdout).find((e) => e.type === 'done')!;
      expect(done.bytesMoved).toBeGreaterThan(800_000);

      // Hide the source's layer blobs: a copy that read any of them would fail.
      const hidden = box.path(`hidden-${name.replace(':', '')}`);
      const { mkdir, rename } = await import('node:fs/promises');
      await mkdir(hidden, { recursive: true });
      for (const [i, p] of layerPaths.entries()) await rename(p, join(hidden, String(i)));
      try {
        const second = await box.img('--insecure-policy', 'copy', '--progress=json', `oci:${src}:v1`, target);
        expect(second.code, second.stderr).toBe(0);
        const evs = events(second.stdout);
        expect(evs.filter((e) => e.type === 'blob-done')).toEqual([]);
        expect(evs.find((e) => e.type === 'done')?.bytesMoved).toBe(0);
        expect(evs.some((e) => e.type === 'image-present')).toBe(true);
      } finally {
        for (const [i, p] of layerPaths.entries()) await rename(join(hidden, String(i)), p);
        await rm(hidden, { recursive: true, force: true });
      }
      await stat(layerPaths[0]!);
    });
  }
});
