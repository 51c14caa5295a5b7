import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { makeTar } from '@img/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imgBin, repoRoot, run, Sandbox } from './helpers/cli.js';
import {
  claimsDirPlugin,
  futurePlugin,
  miniPlugin,
  throwingPlugin,
  writeFixturePlugin,
} from './helpers/plugin-fixtures.js';

const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const hex = (digest: string) => digest.slice('sha256:'.length);
const exampleDir = join(repoRoot, 'examples/transport-tarball');
/** Nothing listens there: any npm registry request fails at once, so installs must be offline. */
const deadRegistry = 'http://127.0.0.1:9/';

/** The plugin tests run in order: install, use, link broken plugins, uninstall. */
describe('transport plugins in the img CLI', () => {
  let box: Sandbox;
  let tgz: string;
  let tar: Buffer;
  let gz: Buffer;
  let rootfs: string;

  const img = (...args: string[]) =>
    run(process.execPath, [imgBin, ...args], {
      env: { ...box.env(), npm_config_registry: deadRegistry, IMG_NPM_REGISTRY: deadRegistry },
    });
  const warnings = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('Warning: '));

  beforeAll(async () => {
    box = await Sandbox.create();
    const packed = await run('npm', ['pack', '--pack-destination', box.dir, exampleDir], {
      env: { ...process.env, npm_config_registry: deadRegistry },
    });
    expect(packed.code, packed.stderr).toBe(0);
    tgz = join(box.dir, packed.stdout.trim().split('\n').at(-1)!);
    tar = await makeTar({ 'etc/os-release': 'ID=plugin-test\n', 'bin/app': Buffer.alloc(20_000, 3) });
    gz = gzipSync(tar);
    rootfs = box.path('rootfs.tar.gz');
    await writeFile(rootfs, gz);
  });

  afterAll(async () => {
    await box.cleanup();
  });

  it('installs the example plugin from its packed tgz, offline, with no @img/core of its own', async () => {
    expect(tgz).toMatch(/img-transport-tarball-0\.1\.0\.tgz$/);
    const result = await img('plugins', 'install', tgz);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('installed v0.1.0');
    expect(result.stderr).not.toContain('may not work as expected');
    const modules = box.path('img-data/node_modules');
    expect(existsSync(join(modules, 'img-transport-tarball/dist/hooks/transports.js'))).toBe(true);
    expect(existsSync(join(modules, '@img'))).toBe(false);

    const list = await img('plugins');
    expect(list.code).toBe(0);
    expect(list.stdout).toContain('img-transport-tarball 0.1.0');
  });

  it('lists the plugin transport in img transports, with origin and capabilities', async () => {
    const result = await img('transports');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
    const lines = result.stdout.split('\n');
    expect(lines[0]).toMatch(/^NAME\s+ORIGIN\s+CAPABILITIES$/);
    expect(lines.find((l) => l.startsWith('tarball '))).toMatch(
      /^tarball\s+plugin img-transport-tarball 0\.1\.0\s+read-only$/,
    );
    expect(lines.find((l) => l.startsWith('dir '))).toMatch(/^dir\s+built-in @img\/transport-dir \S+\s/);
    const json = JSON.parse((await img('transports', '--json')).stdout) as Array<{
      name: string;
      origin: { kind: string; package: string; version: string } | null;
      capabilities: unknown;
    }>;
    expect(json.find((t) => t.name === 'tarball')).toEqual({
      name: 'tarball',
      origin: { kind: 'plugin', package: 'img-transport-tarball', version: '0.1.0', pluginType: 'user' },
      capabilities: { source: true, destination: false },
    });
  });

  it('copies from tarball: with img copy: the layer written is the tarball, byte for byte', async () => {
    const out = box.path('from-tarball');
    const result = await img('copy', '--insecure-policy', `tarball:${rootfs}`, `dir:${out}`);
    expect(result.code, result.stderr).toBe(0);
    const manifestBytes = await readFile(join(out, 'manifest.json'));
    const manifest = JSON.parse(manifestBytes.toString()) as {
      mediaType: string;
      config: { digest: string };
      layers: Array<{ digest: string; size: number; mediaType: string }>;
    };
    expect(manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(manifest.layers).toEqual([
      { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(gz), size: gz.length },
    ]);
    expect((await readFile(join(out, hex(sha256(gz))))).equals(gz)).toBe(true);
    const config = JSON.parse((await readFile(join(out, hex(manifest.config.digest)))).toString());
    expect(config.rootfs.diff_ids).toEqual([sha256(tar)]);

    const inspected = await img('inspect', `tarball:${rootfs}`);
    expect(inspected.code, inspected.stderr).toBe(0);
    const info = JSON.parse(inspected.stdout) as { Digest: string; Layers: string[] };
    expect(info.Digest).toBe(sha256(manifestBytes));
    expect(info.Layers).toEqual([sha256(gz)]);

    const again = await img('copy', '--insecure-policy', `tarball:${rootfs}`, `dir:${out}`);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('image already present');
  });

  it('refuses tarball: as a destination, with one error line', async () => {
    const result = await img(
      'copy',
      '--insecure-policy',
      `dir:${box.path('from-tarball')}`,
      'tarball:/x.tar',
    );
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(
      'Error: the tarball transport is read-only: tarball:/x.tar can be copied from, not to',
    );
  });

  it('links plugins: a minimal one works; broken ones cost one warning line each and break nothing', async () => {
    const dir = box.path('plugins');
    await mkdir(dir);
    for (const p of [miniPlugin, claimsDirPlugin, futurePlugin, throwingPlugin]) {
      const linked = await img('plugins', 'link', '--no-install', await writeFixturePlugin(dir, p));
      expect(linked.code, linked.stderr).toBe(0);
    }
    const result = await img('transports');
    expect(result.code, result.stderr).toBe(0);
    expect(warnings(result.stderr).sort()).toEqual([
      'Warning: plugin img-transport-claims-dir@0.0.1: transport "dir" is already registered by built-in @img/transport-dir; the plugin\'s is not used',
      'Warning: plugin img-transport-future@0.0.1: transport API version 99 is not supported (this img supports 1); its transports are not loaded',
      'Warning: plugin img-transport-throws@0.0.1: its img:transports hook failed: the S3 SDK is missing',
    ]);
    const names = result.stdout
      .split('\n')
      .slice(1)
      .map((l) => l.split(/\s+/)[0]);
    expect(names).toEqual(expect.arrayContaining(['dir', 'oci', 'tarball', 'mini']));
    expect(names).not.toContain('future');
    expect(result.stdout).toMatch(
      /^mini\s+plugin img-transport-mini 0\.0\.1 \(linked\)\s+\(not declared\)$/m,
    );
    expect(result.stdout).toMatch(/^dir\s+built-in @img\/transport-dir/m);
  });

  it("uses a minimal plugin's transport as destination and source, in copy and inspect", async () => {
    const mini = box.path('mini-image');
    const toMini = await img('copy', '--insecure-policy', `tarball:${rootfs}`, `mini:${mini}`);
    expect(toMini.code, toMini.stderr).toBe(0);
    expect((await readFile(join(mini, 'blobs', hex(sha256(gz))))).equals(gz)).toBe(true);
    const manifestDigest = sha256(await readFile(join(mini, 'manifest.json')));

    // No alreadyContainsManifest: the engine falls back to the ordered copy, reusing every blob.
    const again = await img('copy', '--insecure-policy', `tarball:${rootfs}`, `mini:${mini}`);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/Wrote 0 blobs, reused 2/);

    // dir: is still the built-in one (the plugin claiming the name would throw on parse).
    const out = box.path('from-mini');
    const fromMini = await img('copy', '--insecure-policy', `mini:${mini}`, `dir:${out}`);
    expect(fromMini.code, fromMini.stderr).toBe(0);
    expect(sha256(await readFile(join(out, 'manifest.json')))).toBe(manifestDigest);
    expect((await readFile(join(out, hex(sha256(gz))))).equals(gz)).toBe(true);

    const inspected = await img('inspect', `mini:${mini}`);
    expect(inspected.code, inspected.stderr).toBe(0);
    expect(JSON.parse(inspected.stdout).Digest).toBe(manifestDigest);
  });

  it("deletes through a plugin's transport with img delete", async () => {
    const mini = box.path('mini-image');
    const result = await img('delete', `mini:${mini}`);
    expect(result.code, result.stderr).toBe(0);
    expect(existsSync(join(mini, 'manifest.json'))).toBe(false);
    const inspected = await img('inspect', `mini:${mini}`);
    expect(inspected.code).toBe(1);
    expect(inspected.stderr).toContain(`manifest unknown: mini:${mini}`);
  });

  it('uninstalls the plugin: tarball: is unknown again, the rest still works', async () => {
    const result = await img('plugins', 'uninstall', 'img-transport-tarball');
    expect(result.code, result.stderr).toBe(0);
    expect((await img('plugins')).stdout).not.toContain('img-transport-tarball');
    const copy = await img('copy', '--insecure-policy', `tarball:${rootfs}`, `dir:${box.path('gone')}`);
    expect(copy.code).toBe(1);
    expect(copy.stderr).toMatch(/^Error: unknown transport "tarball"/m);
    const transports = await img('transports');
    expect(transports.stdout).not.toMatch(/^tarball /m);
    expect(transports.stdout).toMatch(/^mini /m);
  });
});
