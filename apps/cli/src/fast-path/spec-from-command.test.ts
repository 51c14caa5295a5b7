import { Args, Flags } from '@oclif/core';
import { describe, expect, it } from 'vitest';
import { durationFlag } from '../base-command.js';
import Copy from '../commands/copy.js';
import { fastCommandSpec } from './spec-from-command.js';

function specOf(flags: Record<string, unknown>, args: Record<string, unknown> = {}) {
  const result = fastCommandSpec({ flags, args });
  if (!('spec' in result)) throw new Error(result.reason);
  return result.spec;
}

describe('fastCommandSpec', () => {
  it('describes copy’s flags from the class: kinds, chars, aliases, options, defaults, env, relations', () => {
    const spec = specOf({ ...Copy.flags }, Copy.args);
    const withBase = fastCommandSpec(Copy);
    expect('spec' in withBase && Object.keys(withBase.spec.flags)).toEqual(
      Object.keys({ ...Copy.baseFlags, ...Copy.flags }),
    );
    expect(spec.args).toEqual(['source', 'destination']);
    expect(spec.flags.quiet).toEqual({ kind: 'boolean', char: 'q' });
    expect(spec.flags.all).toEqual({ kind: 'boolean', char: 'a', exclusive: ['multi-arch'] });
    expect(spec.flags.format).toEqual({ kind: 'string', char: 'f', options: ['oci', 'v2s2'] });
    expect(spec.flags.progress).toEqual({
      kind: 'string',
      default: 'auto',
      options: ['auto', 'bars', 'lines', 'json', 'none'],
    });
    expect(spec.flags['src-tls-verify']).toEqual({ kind: 'boolean', allowNo: true });
    expect(spec.flags['src-creds']).toEqual({
      kind: 'string',
      aliases: ['screds'],
      exclusive: ['src-no-creds', 'src-username', 'src-password'],
    });
    expect(spec.flags['src-username']).toEqual({
      kind: 'string',
      exclusive: ['src-no-creds'],
      dependsOn: ['src-password'],
    });
    expect(spec.flags['retry-times']).toEqual({ kind: 'integer', default: 0, min: 0 });
    expect(spec.flags['retry-delay']).toEqual({ kind: 'duration' });
    expect(spec.flags['blob-cache-dir']).toEqual({ kind: 'string', env: 'IMG_BLOB_CACHE_DIR' });
  });

  it('marks flags it cannot parse exactly as unsupported', () => {
    const spec = specOf({
      url: Flags.url(),
      custom: Flags.custom<string>({ parse: async (s) => s.toUpperCase() })(),
      many: Flags.string({ multiple: true }),
      stdin: Flags.string({ allowStdin: true }),
      related: Flags.string({ relationships: [{ type: 'all', flags: ['x'] }] }),
      old: Flags.boolean({ deprecated: true }),
      fromEnv: Flags.boolean({ env: 'X_BOOL' }),
      bounded: Flags.integer({ min: 1, max: 9 }),
      wait: durationFlag(),
    });
    for (const name of ['url', 'custom', 'many', 'stdin', 'related', 'old', 'fromEnv']) {
      expect(spec.flags[name]?.kind, name).toBe('unsupported');
    }
    expect(spec.flags.bounded).toEqual({ kind: 'integer', min: 1, max: 9 });
    expect(spec.flags.wait).toEqual({ kind: 'duration' });
  });

  it('leaves out aliases that oclif warns about', () => {
    const spec = specOf({ creds: Flags.string({ aliases: ['c2'], deprecateAliases: true }) });
    expect(spec.flags.creds).toEqual({ kind: 'string' });
  });

  it('keeps a command whose checks apply when a flag is absent with oclif', () => {
    expect(fastCommandSpec({ flags: { name: Flags.string({ required: true }) } })).toEqual({
      reason: '--name is required or in a required group',
    });
    expect(fastCommandSpec({ flags: { n: Flags.integer({ default: async () => 1 }) } })).toEqual({
      reason: '--n has a computed default',
    });
    expect(fastCommandSpec({ args: { image: Args.string({ required: false }) } })).toEqual({
      reason: 'argument image is not a required single value',
    });
    expect(fastCommandSpec({ args: { n: Args.integer({ required: true }) } })).toEqual({
      reason: 'argument n has its own parse',
    });
    expect(fastCommandSpec({ enableJsonFlag: true })).toEqual({ reason: 'the command has a --json flag' });
  });
});
