import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AbortedError, InvalidPolicyError } from '../errors.js';
import { loadPolicy } from './load.js';

let root: string;
let home: string;
let systemPath: string;

/** Writes `files` (path relative to the temp root → content) and returns nothing: the layout is in the test. */
async function testdir(files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

const rejectAll = '{"default": [{"type": "reject"}]}';
const acceptAll = '{"default": [{"type": "insecureAcceptAnything"}]}';
const userFile = 'home/.config/containers/policy.json';

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'img-policy-'));
  home = join(root, 'home');
  systemPath = join(root, 'etc/containers/policy.json');
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('loadPolicy', () => {
  it('reads the explicit path and nothing else', async () => {
    await testdir({
      'explicit.json': rejectAll,
      [userFile]: acceptAll,
      'etc/containers/policy.json': acceptAll,
    });
    const policy = await loadPolicy({ path: join(root, 'explicit.json'), home, systemPath });
    expect(policy.default).toEqual([{ type: 'reject' }]);
  });

  it('prefers the user file over the system file', async () => {
    await testdir({ [userFile]: rejectAll, 'etc/containers/policy.json': acceptAll });
    expect((await loadPolicy({ home, systemPath })).default).toEqual([{ type: 'reject' }]);
  });

  it('falls back to the system file when the user has none', async () => {
    await testdir({ 'etc/containers/policy.json': rejectAll });
    expect((await loadPolicy({ home, systemPath })).default).toEqual([{ type: 'reject' }]);
  });

  it('falls back to the system file when ~/.config is a file', async () => {
    await testdir({ 'home/.config': 'not a directory', 'etc/containers/policy.json': rejectAll });
    expect((await loadPolicy({ home, systemPath })).default).toEqual([{ type: 'reject' }]);
  });

  it('does not fall back when the user file exists but is invalid', async () => {
    await testdir({ [userFile]: '{"default": []}', 'etc/containers/policy.json': acceptAll });
    await expect(loadPolicy({ home, systemPath })).rejects.toThrow(
      `invalid policy in "${join(root, userFile)}": default: a list of requirements must not be empty`,
    );
  });

  it('names both paths tried and the ways out when neither exists', async () => {
    const load = loadPolicy({ home, systemPath });
    await expect(load).rejects.toBeInstanceOf(InvalidPolicyError);
    await expect(load).rejects.toThrow(
      `no policy file found (tried "${join(root, userFile)}" and "${systemPath}"): ` +
        'pass --policy with a policy file, or --insecure-policy to accept any image',
    );
  });

  it('names the explicit path when it does not exist, without trying the others', async () => {
    await testdir({ [userFile]: acceptAll });
    await expect(loadPolicy({ path: join(root, 'missing.json'), home, systemPath })).rejects.toThrow(
      `policy file "${join(root, 'missing.json')}" does not exist: pass --policy with an existing file, or --insecure-policy to accept any image`,
    );
  });

  it('names the file in a parse error', async () => {
    await testdir({ 'explicit.json': '{"default": [{"type": "rejected"}]}' });
    await expect(loadPolicy({ path: join(root, 'explicit.json') })).rejects.toThrow(
      new RegExp(
        `^invalid policy in "${join(root, 'explicit.json')}": default\\[0\\]\\.type: unknown requirement type "rejected"`,
      ),
    );
  });

  it('reports a directory given as the policy as unreadable', async () => {
    await expect(loadPolicy({ path: root })).rejects.toThrow(
      new RegExp(`^cannot read policy file "${root}": EISDIR`),
    );
  });

  it.skipIf(process.getuid?.() === 0)('reports an unreadable user file instead of skipping it', async () => {
    await testdir({ [userFile]: acceptAll, 'etc/containers/policy.json': acceptAll });
    await chmod(join(root, userFile), 0o000);
    await expect(loadPolicy({ home, systemPath })).rejects.toThrow(/^cannot read policy file ".*": EACCES/);
  });

  it('refuses a file over 4 MiB', async () => {
    await testdir({ 'big.json': `{"default": [{"type": "reject"}]}${' '.repeat(4 * 1024 * 1024)}` });
    await expect(loadPolicy({ path: join(root, 'big.json') })).rejects.toThrow(
      /larger than the 4194304-byte limit$/,
    );
  });

  it('fails with AbortedError when the signal is already aborted', async () => {
    await testdir({ 'explicit.json': rejectAll });
    await expect(
      loadPolicy({ path: join(root, 'explicit.json'), signal: AbortSignal.abort() }),
    ).rejects.toBeInstanceOf(AbortedError);
  });
});
