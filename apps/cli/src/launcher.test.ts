// bin/img, the launcher users start: which Node it starts, with what, and when it keeps
// NODE_EXTRA_CA_CERTS from Node's start-up. A stand-in `node` first on PATH prints what it got.
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runProgram } from '@img/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const launcher = fileURLToPath(new URL('../bin/img', import.meta.url));
const runJs = fileURLToPath(new URL('../bin/run.js', import.meta.url));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'img-launcher-'));
  await mkdir(join(dir, 'bin'));
  await writeFile(
    join(dir, 'bin', 'node'),
    `#!/bin/sh\nprintf "%s|%s|%s|%s\\n" "\${NODE_EXTRA_CA_CERTS-unset}" "\${IMG_DEFERRED_NODE_EXTRA_CA_CERTS-unset}" "\${GLIBC_TUNABLES-unset}" "$*"\n`,
  );
  await chmod(join(dir, 'bin', 'node'), 0o755);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function launch(env: NodeJS.ProcessEnv, program = launcher) {
  const r = await runProgram(program, ['copy', 'a b', '--quiet'], {
    env: { PATH: `${join(dir, 'bin')}:/usr/bin:/bin`, ...env },
  });
  expect(r.code).toBe(0);
  const [extra, deferred, tunables, args] = r.stdout.trim().split('|');
  return { extra, deferred, tunables, args };
}

describe('bin/img', () => {
  it('starts the Node on PATH with bin/run.js and the arguments as given', async () => {
    expect(await launch({ HOME: dir })).toEqual({
      extra: 'unset',
      deferred: 'unset',
      tunables: 'glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=16777216',
      args: `${runJs} copy a b --quiet`,
    });
  });

  it("keeps the user's own glibc tunables", async () => {
    expect((await launch({ HOME: dir, GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' })).tunables).toBe(
      'glibc.malloc.arena_max=2',
    );
  });

  it('finds run.js beside its own file when started through a symlink (npm -g, pnpm)', async () => {
    const link = join(dir, 'bin', 'img');
    await symlink(launcher, link);
    expect((await launch({ HOME: dir }, link)).args).toBe(`${runJs} copy a b --quiet`);
  });

  it("hands NODE_EXTRA_CA_CERTS to img instead of Node's start-up", async () => {
    expect(await launch({ HOME: dir, NODE_EXTRA_CA_CERTS: '/x/ca.pem' })).toMatchObject({
      extra: 'unset',
      deferred: '/x/ca.pem',
    });
  });

  it('leaves it to Node when a plugin may be installed, or Node is told which store to use', async () => {
    const data = join(dir, 'data');
    await mkdir(join(data, 'img'), { recursive: true });
    await writeFile(join(data, 'img', 'package.json'), '{"oclif":{"plugins":["x"]}}');
    const kept = { extra: '/x/ca.pem', deferred: 'unset' };
    const env = { HOME: dir, NODE_EXTRA_CA_CERTS: '/x/ca.pem' };
    expect(await launch({ ...env, XDG_DATA_HOME: data })).toMatchObject(kept);
    expect(await launch({ ...env, IMG_DATA_DIR: join(data, 'img') })).toMatchObject(kept);
    const home = join(dir, 'home');
    await mkdir(join(home, '.local/share/img'), { recursive: true });
    await writeFile(join(home, '.local/share/img/package.json'), '{}');
    expect(await launch({ ...env, HOME: home, XDG_DATA_HOME: '' })).toMatchObject(kept);
    expect(await launch({ ...env, NODE_OPTIONS: '--use-openssl-ca' })).toMatchObject(kept);
    expect(await launch({ NODE_EXTRA_CA_CERTS: '/x/ca.pem' })).toMatchObject(kept);
  });
});
