import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hoistGlobalFlags, normalizeBooleanValues } from '../argv.js';
import Copy from '../commands/copy.js';
import { type FastPathPlan, planFastPath, runFastPath } from './main.js';
import type { FastPathManifest } from './spec.js';
import { fastCommandSpec } from './spec-from-command.js';

const copy = fastCommandSpec(Copy);
if (!('spec' in copy)) throw new Error(copy.reason);
const manifest: FastPathManifest = {
  bin: 'img',
  dirname: 'img',
  helpFlags: ['--help'],
  commands: { copy: copy.spec },
};
const home = mkdtempSync(join(tmpdir(), 'img-fast-home-'));
const env = { HOME: home, PATH: '/usr/bin' };

function plan(commandLine: string[], extraEnv: Record<string, string> = {}) {
  const args = hoistGlobalFlags(normalizeBooleanValues(commandLine));
  return planFastPath(args, { ...env, ...extraEnv }, manifest);
}

function declined(commandLine: string[], extraEnv: Record<string, string> = {}): string {
  const result = plan(commandLine, extraEnv);
  expect('declined' in result, JSON.stringify(commandLine)).toBe(true);
  return (result as { declined: string }).declined;
}

describe('planFastPath', () => {
  it('takes a copy between built-in transports, with what the parser read', () => {
    const result = plan([
      '--insecure-policy',
      'copy',
      '--quiet',
      'oci:/l:v1',
      'containers-storage:[vfs@/g+/r]x:v1',
    ]);
    expect('load' in result).toBe(true);
    const taken = result as FastPathPlan;
    expect(taken.commandId).toBe('copy');
    expect(taken.args).toEqual({ source: 'oci:/l:v1', destination: 'containers-storage:[vfs@/g+/r]x:v1' });
    expect(taken.flags).toEqual({ 'insecure-policy': true, quiet: true, 'retry-times': 0, progress: 'auto' });
  });

  it('takes every built-in transport', () => {
    for (const image of [
      'dir:/d',
      'oci:/l',
      'oci-archive:/a.tar',
      'docker://r.example/app:v1',
      'docker-daemon:app:v1',
      'docker-archive:/a.tar',
      'containers-storage:app',
    ]) {
      expect('load' in plan(['copy', image, 'dir:/out']), image).toBe(true);
    }
  });

  it('leaves other commands, help and version to oclif', () => {
    expect(declined(['inspect', 'oci:/l:v1'])).toBe('not a fast command');
    expect(declined(['--version'])).toBe('not a fast command');
    expect(declined(['help', 'copy'])).toBe('not a fast command');
    expect(declined([])).toBe('not a fast command');
    expect(declined(['copy', '--help'])).toBe('help is asked for');
    expect(declined(['copy', 'oci:/l', 'dir:/d', '--help'])).toBe('help is asked for');
    expect(declined(['copy', '-h', 'oci:/l', 'dir:/d'])).toMatch(/not certain to parse/);
  });

  it('leaves --debug to oclif, its stacks naming the real files', () => {
    expect(declined(['--debug', 'copy', 'oci:/l', 'dir:/d'])).toBe('--debug is given');
  });

  it('leaves images without a built-in transport to oclif, which loads the plugins', () => {
    expect(declined(['copy', 's3:bucket/app', 'dir:/d'])).toBe('source does not name a built-in transport');
    expect(declined(['copy', 'oci:/l', '/no/transport'])).toBe(
      'destination does not name a built-in transport',
    );
    expect(declined(['copy', ':x', 'dir:/d'])).toBe('source does not name a built-in transport');
  });

  it('leaves a usage error to oclif', () => {
    expect(declined(['copy', 'oci:/l'])).toMatch(/not certain to parse/);
    expect(declined(['copy', '--format', 'v2s1', 'oci:/l', 'dir:/d'])).toMatch(/not certain to parse/);
  });

  it('steps aside for IMG_NO_FAST_PATH, DEBUG and oclif’s development mode', () => {
    expect(declined(['copy', 'oci:/l', 'dir:/d'], { IMG_NO_FAST_PATH: '1' })).toBe('IMG_NO_FAST_PATH is set');
    expect(declined(['copy', 'oci:/l', 'dir:/d'], { DEBUG: 'oclif:*' })).toBe('DEBUG is set');
    expect(declined(['copy', 'oci:/l', 'dir:/d'], { NODE_ENV: 'test' })).toBe('NODE_ENV is test');
  });

  it('steps aside when a plugin is installed', () => {
    const data = mkdtempSync(join(tmpdir(), 'img-fast-data-'));
    writeFileSync(
      join(data, 'package.json'),
      JSON.stringify({ oclif: { plugins: [{ name: 'img-transport-s3', type: 'user' }] } }),
    );
    expect(declined(['copy', 'oci:/l', 'dir:/d'], { IMG_DATA_DIR: data })).toMatch(/plugins are installed/);
  });

  it('takes nothing when this module runs unbundled, without a built manifest', async () => {
    expect(planFastPath(['copy', 'oci:/l', 'dir:/d'], env, undefined)).toEqual({
      declined: 'the fast path was not built',
    });
    expect(await runFastPath(['copy', 'oci:/l', 'dir:/d'], env)).toBe(false);
  });
});
