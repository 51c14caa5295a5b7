import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sandbox, skopeo } from './helpers/cli.js';
import { writeOciIndex } from './helpers/images.js';

const hasSkopeo = existsSync('/usr/bin/skopeo');

describe('multi-platform images', () => {
  let box: Sandbox;
  let src: string;
  let indexDigest: string;
  let instances: string[];
  beforeAll(async () => {
    box = await Sandbox.create();
    src = box.path('src');
    const index = await writeOciIndex(src, 'multi', ['linux/amd64', 'linux/arm64/v8', 'linux/s390x'], 71);
    indexDigest = index.manifestDigest;
    instances = index.images.map((i) => i.manifestDigest);
  });
  afterAll(() => box.cleanup());

  it('copies every instance and keeps the index byte for byte with --all', async () => {
    const dest = box.path('all');
    const r = await box.img(
      '--insecure-policy',
      'copy',
      '--all',
      '--quiet',
      '--digestfile',
      box.path('digest'),
      `oci:${src}:multi`,
      `oci:${dest}:multi`,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(box.path('digest'), 'utf8')).toBe(indexDigest);
    const raw = await box.img('inspect', '--raw', `oci:${dest}:multi`);
    expect(raw.stdout).toBe(await readFile(join(src, 'blobs/sha256', indexDigest.slice(7)), 'utf8'));
    for (const digest of instances) {
      const blob = await readFile(join(dest, 'blobs/sha256', digest.slice(7)));
      expect(blob.length).toBeGreaterThan(0);
    }
  });

  it('copies only the instance for the chosen platform without --all', async () => {
    const dest = box.path('one');
    const r = await box.img(
      '--insecure-policy',
      '--override-arch',
      'arm64',
      'copy',
      '--quiet',
      '--digestfile',
      box.path('one-digest'),
      `oci:${src}:multi`,
      `dir:${dest}`,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(box.path('one-digest'), 'utf8')).toBe(instances[1]);
  });

  it.runIf(hasSkopeo)('writes a list to dir: that skopeo copies out whole', async () => {
    const dest = box.path('all-dir');
    const r = await box.img(
      '--insecure-policy',
      'copy',
      '--all',
      '--quiet',
      `oci:${src}:multi`,
      `dir:${dest}`,
    );
    expect(r.code, r.stderr).toBe(0);
    const out = await skopeo(
      'copy',
      '--all',
      '--quiet',
      `dir:${dest}`,
      `oci:${box.path('skopeo-out')}:multi`,
    );
    expect(out.code, out.stderr).toBe(0);
    const raw = await skopeo('inspect', '--raw', `oci:${box.path('skopeo-out')}:multi`);
    expect(raw.stdout).toBe(await readFile(join(src, 'blobs/sha256', indexDigest.slice(7)), 'utf8'));
  });

  it('moves nothing when the list is copied again with --all', async () => {
    const dest = box.path('again');
    expect(
      (
        await box.img(
          '--insecure-policy',
          'copy',
          '--all',
          '--quiet',
          `oci:${src}:multi`,
          `oci:${dest}:multi`,
        )
      ).code,
    ).toBe(0);
    const r = await box.img(
      '--insecure-policy',
      'copy',
      '--all',
      '--progress=json',
      `oci:${src}:multi`,
      `oci:${dest}:multi`,
    );
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; bytesMoved?: number });
    expect(events.filter((e) => e.type.startsWith('blob-'))).toEqual([]);
    expect(events.at(-1)).toMatchObject({ type: 'done', bytesMoved: 0 });
  });
});
