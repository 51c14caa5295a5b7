import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, run, Sandbox } from './helpers/cli.js';

/** The CLI from its TypeScript sources (bin/dev.js, through tsx), so no build of apps/cli is needed. */
const devBin = join(repoRoot, 'apps/cli/bin/dev.js');

describe('img CLI smoke test (sources through tsx)', () => {
  let box: Sandbox;
  const img = (...args: string[]) => run(process.execPath, [devBin, ...args], { env: box.env() });

  beforeAll(async () => {
    box = await Sandbox.create();
  });

  afterAll(async () => {
    await box.cleanup();
  });

  it('lists the commands in --help', async () => {
    const result = await img('--help');
    expect(result.code).toBe(0);
    for (const command of ['copy', 'inspect', 'manifest-digest'])
      expect(result.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
  });

  it('shows copy flags and the global flags in copy --help', async () => {
    const result = await img('copy', '--help');
    expect(result.code).toBe(0);
    for (const flag of [
      '--all',
      '--multi-arch',
      '--format',
      '--digestfile',
      '--progress',
      '--retry-times',
      '--insecure-policy',
    ]) {
      expect(result.stdout).toContain(flag);
    }
    expect(result.stdout).toContain('GLOBAL FLAGS');
  });

  it('fails inspect of a missing image with one Error line and exit code 1', async () => {
    const result = await img('inspect', `oci:${box.path('no-such-layout')}:v1`);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^Error: .*no-such-layout/);
  });

  it('fails on an unknown transport with exit code 1, listing the known ones', async () => {
    const result = await img('inspect', 's4:bucket/app');
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(
      /^Error: unknown transport "s4" in "s4:bucket\/app" \(known: .*\boci\b.*\)$/,
    );
  });

  it('accepts global flags before the command, as skopeo users write them', async () => {
    const result = await img('--debug', '--command-timeout', '1m', 'inspect', 's4:bucket/app');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^Error: unknown transport "s4"/);
    // --debug reached the command: the stack follows the one-line message.
    expect(result.stderr.split('\n').length).toBeGreaterThan(2);
  });

  it('exits 2 on a usage error', async () => {
    const result = await img('inspect');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Missing 1 required arg');
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('prints one line and exits 2 on an unknown flag', async () => {
    const result = await img('copy', '--bogus', 'dir:/a', 'dir:/b');
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('Error: Nonexistent flag: --bogus (see "img copy --help")\n');
  });
});
