import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, Sandbox, skopeo } from './helpers/cli.js';
import { writeOciImage } from './helpers/images.js';

const hasSkopeo = existsSync('/usr/bin/skopeo');
const hasUmoci = existsSync('/usr/bin/umoci');

async function skopeoDigest(image: string): Promise<string> {
  const r = await skopeo('inspect', '--format', '{{.Digest}}', image);
  expect(r.stderr).toBe('');
  return r.stdout.trim();
}

async function imgDigest(box: Sandbox, image: string): Promise<string> {
  const r = await box.img('inspect', '--format', '{{.Digest}}', image);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

async function skopeoLayers(image: string): Promise<string[]> {
  const r = await skopeo('inspect', image);
  return JSON.parse(r.stdout).Layers;
}

describe.runIf(hasSkopeo)('skopeo reads what img writes, and img reads what skopeo writes', () => {
  let box: Sandbox;
  let src: string;
  beforeAll(async () => {
    box = await Sandbox.create();
    src = box.path('src');
    await writeOciImage(src, 'v1', { seed: 31, layers: 3, layerSize: 50_000 });
  });
  afterAll(() => box.cleanup());

  for (const [name, dest] of [
    ['dir:', (b: Sandbox, who: string) => `dir:${b.path(`${who}-dir`)}`],
    ['oci:', (b: Sandbox, who: string) => `oci:${b.path(`${who}-oci`)}:v1`],
    ['oci-archive:', (b: Sandbox, who: string) => `oci-archive:${b.path(`${who}.tar`)}:v1`],
  ] as const) {
    it(`img writes ${name} and skopeo reads the same manifest and layers`, async () => {
      const target = dest(box, 'by-img');
      const copied = await box.img('--insecure-policy', 'copy', '--quiet', `oci:${src}:v1`, target);
      expect(copied.code, copied.stderr).toBe(0);
      expect(await skopeoDigest(target)).toBe(await skopeoDigest(`oci:${src}:v1`));
      expect(await skopeoLayers(target)).toEqual(await skopeoLayers(`oci:${src}:v1`));
      // skopeo copies it out again, verifying every blob on the way.
      const out = await skopeo(
        'copy',
        '--quiet',
        target,
        `oci:${box.path(`back-${name.replace(':', '')}`)}:v1`,
      );
      expect(out.code, out.stderr).toBe(0);
    });

    it(`skopeo writes ${name} and img reads the same manifest and layers`, async () => {
      const target = dest(box, 'by-skopeo');
      const copied = await skopeo('copy', '--quiet', `oci:${src}:v1`, target);
      expect(copied.code, copied.stderr).toBe(0);
      expect(await imgDigest(box, target)).toBe(await skopeoDigest(target));
      const back = await box.img(
        '--insecure-policy',
        'copy',
        '--quiet',
        target,
        `oci:${box.path('img-back')}:${name.replace(/[^a-z]/g, '')}`,
      );
      expect(back.code, back.stderr).toBe(0);
      const inspected = JSON.parse((await box.img('inspect', target)).stdout);
      expect(inspected.Layers).toEqual(await skopeoLayers(target));
    });
  }
});

describe.runIf(hasUmoci)('umoci builds fixtures img copies, and unpacks what img writes', () => {
  let box: Sandbox;
  beforeAll(async () => {
    box = await Sandbox.create();
  });
  afterAll(() => box.cleanup());

  it('copies an image umoci built and umoci unpacks the copy with the same files', async () => {
    const layout = box.path('umoci');
    expect((await run('umoci', ['init', '--layout', layout])).code).toBe(0);
    expect((await run('umoci', ['new', '--image', `${layout}:base`])).code).toBe(0);
    const bundle = box.path('bundle');
    expect((await run('umoci', ['unpack', '--rootless', '--image', `${layout}:base`, bundle])).code).toBe(0);
    const { writeFile, mkdir } = await import('node:fs/promises');
    await mkdir(`${bundle}/rootfs/etc`, { recursive: true });
    await writeFile(`${bundle}/rootfs/etc/hello`, 'hello from umoci\n');
    const repack = await run('umoci', ['repack', '--image', `${layout}:base`, bundle]);
    expect(repack.code, repack.stderr).toBe(0);

    const copied = await box.img(
      '--insecure-policy',
      'copy',
      '--quiet',
      `oci:${layout}:base`,
      `oci:${box.path('copy')}:v1`,
    );
    expect(copied.code, copied.stderr).toBe(0);
    const unpacked = box.path('unpacked');
    const r = await run('umoci', ['unpack', '--rootless', '--image', `${box.path('copy')}:v1`, unpacked]);
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(`${unpacked}/rootfs/etc/hello`, 'utf8')).toBe('hello from umoci\n');
    expect(await readdir(`${unpacked}/rootfs`)).toContain('etc');
  });
});
