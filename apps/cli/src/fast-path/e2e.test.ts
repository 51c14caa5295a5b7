import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { copyImage, insecureAcceptAnythingPolicy, PolicyContext } from '@img/core';
import { MemoryStore, randomImage, runProgram } from '@img/testing';
import { newOciReference } from '@img/transport-oci';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Real `img copy` runs of the built binary, each once on the fast path and once with
// IMG_NO_FAST_PATH=1 (oclif): same stdout, stderr, exit code and files written.

const bin = fileURLToPath(new URL('../../bin/run.js', import.meta.url));
const bundle = fileURLToPath(new URL('../../dist/fast/main.js', import.meta.url));

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  /** Whether @oclif/core was loaded (a probe preloaded into the process says). */
  oclif: boolean;
}

let root: string;
let layout: string;
let probe: string;

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: join(root, 'home'),
    XDG_CONFIG_HOME: join(root, 'home/.config'),
    XDG_DATA_HOME: join(root, 'home/.local/share'),
    XDG_CACHE_HOME: join(root, 'home/.cache'),
    XDG_RUNTIME_DIR: join(root, 'run'),
    IMG_DATA_DIR: join(root, 'img-data'),
    IMG_BLOB_CACHE_DIR: join(root, 'blob-cache'),
    TMPDIR: tmpdir(),
    ...extra,
  };
}

async function img(args: string[], extraEnv: Record<string, string> = {}): Promise<Outcome> {
  const marker = join(root, `probe-${Math.random().toString(36).slice(2)}`);
  const result = await runProgram(process.execPath, ['--require', probe, bin, ...args], {
    env: env({ ...extraEnv, FAST_PATH_E2E_PROBE: marker }),
  });
  return { ...result, oclif: readFileSync(marker, 'utf8') === 'true' };
}

/**
 * Runs the same command line on both paths, `reset` putting the files back between them, and
 * returns both outcomes (the fast path's first).
 */
async function both(args: string[], reset: () => void = () => {}): Promise<[Outcome, Outcome]> {
  reset();
  const fast = await img(args);
  reset();
  const slow = await img(args, { IMG_NO_FAST_PATH: '1' });
  expect(slow.oclif).toBe(true);
  expect({ ...fast, oclif: undefined }).toEqual({ ...slow, oclif: undefined });
  return [fast, slow];
}

beforeAll(async () => {
  if (!existsSync(bundle))
    throw new Error(`${bundle} is missing: build first (pnpm turbo build --filter @img/cli)`);
  root = mkdtempSync(join(tmpdir(), 'img-fast-e2e-'));
  probe = join(root, 'probe.cjs');
  writeFileSync(
    probe,
    `process.on('exit', () => {
  const loaded = Object.keys(require.cache).some((p) => p.includes('@oclif'));
  require('node:fs').writeFileSync(process.env.FAST_PATH_E2E_PROBE, String(loaded));
});
`,
  );
  layout = join(root, 'layout');
  const store = new MemoryStore('fixture');
  const image = await randomImage({ seed: 7, layers: 1 });
  await copyImage(newOciReference(layout, 'v1'), store.add('v1', image), {
    policy: new PolicyContext(insecureAcceptAnythingPolicy),
  });
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('img copy on the fast path and on oclif', () => {
  it('copies an OCI layout image to a directory, then finds it present, alike', async () => {
    const dest = join(root, 'dir-dest');
    const fresh = () => rmSync(dest, { recursive: true, force: true });
    const [fast] = await both(
      ['--insecure-policy', 'copy', '--progress', 'lines', `oci:${layout}:v1`, `dir:${dest}`],
      fresh,
    );
    expect(fast.oclif).toBe(false);
    expect(fast.code).toBe(0);
    expect(fast.stderr).toMatch(/^Wrote 2 blobs, reused 0/m);
    expect(existsSync(join(dest, 'manifest.json'))).toBe(true);
    const [again] = await both([
      '--insecure-policy',
      'copy',
      '--progress',
      'lines',
      `oci:${layout}:v1`,
      `dir:${dest}`,
    ]);
    expect(again.oclif).toBe(false);
    expect(again.stderr).toMatch(
      /^Skipping: image already present at destination\nWrote 0 blobs, reused 0: .*nothing moved\n$/,
    );
  });

  it('copies to another layout and writes the same digest file, global flags after the arguments', async () => {
    const dest = join(root, 'oci-dest');
    const digestfile = join(root, 'digest');
    const args = [
      'copy',
      '--format',
      'oci',
      '-q',
      `oci:${layout}:v1`,
      `oci:${dest}:copy`,
      '--insecure-policy',
    ];
    const digests: string[] = [];
    const reset = () => {
      if (existsSync(digestfile)) digests.push(readFileSync(digestfile, 'utf8'));
      rmSync(dest, { recursive: true, force: true });
      rmSync(digestfile, { force: true });
    };
    const [fast] = await both([...args, '--digestfile', digestfile], reset);
    reset();
    expect(fast.oclif).toBe(false);
    expect(fast).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(digests).toHaveLength(2);
    expect(digests[0]).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(digests[1]).toBe(digests[0]);
  });

  it('prints JSON progress on stdout alike', async () => {
    const dest = join(root, 'json-dest');
    const [fast] = await both(
      ['--insecure-policy', 'copy', '--progress', 'json', `oci:${layout}:v1`, `dir:${dest}`],
      () => rmSync(dest, { recursive: true, force: true }),
    );
    expect(fast.oclif).toBe(false);
    expect(
      fast.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).type),
    ).toContain('done');
  });

  it('copies into a containers-storage store, then finds it present, alike', async () => {
    const store = `[vfs@${join(root, 'store/g')}+${join(root, 'store/r')}]localhost/e2e:v1`;
    const args = ['--insecure-policy', 'copy', '--quiet', `oci:${layout}:v1`, `containers-storage:${store}`];
    const [fast] = await both(args, () => rmSync(join(root, 'store'), { recursive: true, force: true }));
    expect(fast).toMatchObject({ code: 0, oclif: false, stderr: '' });
    const [again] = await both([
      '--insecure-policy',
      'copy',
      `oci:${layout}:v1`,
      `containers-storage:${store}`,
    ]);
    expect(again.oclif).toBe(false);
    expect(again.stderr).toMatch(/image already present: nothing moved\n$/);
  });

  it('fails alike on a bad reference', async () => {
    const [fast] = await both([
      '--insecure-policy',
      'copy',
      `oci:${layout}:v1`,
      'docker://Registry.example/Bad',
    ]);
    expect(fast.oclif).toBe(false);
    expect(fast.code).toBe(1);
    expect(fast.stderr).toMatch(/^Error: invalid reference .*\n$/);
  });

  it('fails alike on a missing image', async () => {
    const [fast] = await both([
      '--insecure-policy',
      'copy',
      `oci:${layout}:nosuchtag`,
      `dir:${join(root, 'x')}`,
    ]);
    expect(fast.oclif).toBe(false);
    expect(fast.code).toBe(1);
    expect(fast.stderr.split('\n')).toHaveLength(2);
    expect(fast.stderr).toMatch(/^Error: .*nosuchtag/);
  });

  it('fails alike on a usage error that copy finds itself, with exit 2', async () => {
    const [fast] = await both([
      '--insecure-policy',
      'copy',
      '--src-creds',
      'user',
      `oci:${layout}:v1`,
      `dir:${join(root, 'y')}`,
    ]);
    expect(fast.oclif).toBe(false);
    expect(fast).toMatchObject({
      code: 2,
      stderr:
        'Error: invalid --src-creds: a password is required (USERNAME:PASSWORD) (see "img copy --help")\n',
    });
  });

  it('leaves oclif’s usage errors to oclif', async () => {
    const [missing] = await both(['copy', `oci:${layout}:v1`]);
    expect(missing).toMatchObject({ code: 2, oclif: true });
    expect(missing.stderr).toMatch(/^Error: Missing 1 required arg/);
    const [badOption] = await both([
      'copy',
      '--format',
      'v2s1',
      `oci:${layout}:v1`,
      `dir:${join(root, 'z')}`,
    ]);
    expect(badOption).toMatchObject({ code: 2, oclif: true });
  });

  it('leaves --debug to oclif: the stacks name the real modules', async () => {
    const [fast] = await both([
      '--debug',
      '--insecure-policy',
      'copy',
      `oci:${layout}:nosuchtag`,
      `dir:${join(root, 'w')}`,
    ]);
    expect(fast).toMatchObject({ code: 1, oclif: true });
    expect(fast.stderr).toMatch(/^Error: .*\n.*\n\s+at /);
  });

  it('leaves help and version to oclif', async () => {
    const [version] = await both(['--version']);
    expect(version).toMatchObject({ code: 0, oclif: true });
    const [help] = await both(['copy', '--help']);
    expect(help).toMatchObject({ code: 0, oclif: true });
    expect(help.stdout).toContain('USAGE');
  });
});
