import { type Command, Parser } from '@oclif/core';
import { describe, expect, it } from 'vitest';
import { booleanValueFlagNames, normalizeBooleanValues } from './argv.js';
import { BaseCommand } from './base-command.js';
import { authfileFlag, dockerFlags } from './docker-flags.js';
import { dockerOptionsFromFlags, parseCreds, withDockerOptions } from './docker-options.js';
import { UsageError } from './error-output.js';

const copyLikeFlags = {
  ...dockerFlags('src-'),
  ...dockerFlags('dest-'),
  ...authfileFlag,
  'registries-conf': BaseCommand.baseFlags['registries-conf'],
};

async function parse(argv: string[], flags: Record<string, unknown> = copyLikeFlags) {
  const { flags: parsed } = await Parser.parse(normalizeBooleanValues(argv), {
    flags: flags as Command.Class['flags'],
    strict: true,
  });
  return parsed as Record<string, unknown>;
}

describe('dockerFlags', () => {
  it('names the flags as skopeo does for each side', () => {
    expect(Object.keys(dockerFlags('')).sort()).toEqual(
      [
        'authfile',
        'cert-dir',
        'creds',
        'no-creds',
        'password',
        'registry-token',
        'tls-verify',
        'username',
      ].sort(),
    );
    expect(Object.keys(dockerFlags('src-'))).toContain('src-tls-verify');
    expect(Object.keys(dockerFlags('dest-'))).toContain('dest-creds');
  });

  it('lists every negatable flag for the --flag=false rewrite', () => {
    for (const prefix of ['', 'src-', 'dest-'] as const) {
      for (const [name, flag] of Object.entries(dockerFlags(prefix))) {
        if (flag.type !== 'boolean') continue;
        const names = flag.allowNo ? booleanValueFlagNames.negatable : booleanValueFlagNames.plain;
        expect(names).toContain(name);
      }
    }
  });
});

describe('dockerOptionsFromFlags', () => {
  it('gives nothing when no flag is set, so every default stays the transport’s', async () => {
    const flags = await parse([]);
    expect(dockerOptionsFromFlags(flags, 'src-')).toEqual({});
    expect(dockerOptionsFromFlags(flags, 'dest-')).toEqual({});
  });

  it('reads each side from its own prefixed flags', async () => {
    const flags = await parse([
      '--src-creds',
      'alice:s3:cr:et',
      '--src-cert-dir',
      '/certs/src',
      '--dest-registry-token',
      'tok',
      '--dest-authfile',
      '/a/dest.json',
      '--dest-tls-verify=false',
    ]);
    expect(dockerOptionsFromFlags(flags, 'src-')).toEqual({
      credentials: { username: 'alice', password: 's3:cr:et' },
      certDir: '/certs/src',
    });
    expect(dockerOptionsFromFlags(flags, 'dest-')).toEqual({
      registryToken: 'tok',
      authFile: '/a/dest.json',
      tlsVerify: false,
    });
  });

  it('uses the shared --authfile for a side without its own, and the global --registries-conf for both', async () => {
    const flags = await parse([
      '--authfile',
      '/a/both.json',
      '--src-authfile',
      '/a/src.json',
      '--registries-conf',
      '/r.conf',
    ]);
    expect(dockerOptionsFromFlags(flags, 'src-')).toEqual({
      authFile: '/a/src.json',
      registriesConfPath: '/r.conf',
    });
    expect(dockerOptionsFromFlags(flags, 'dest-')).toEqual({
      authFile: '/a/both.json',
      registriesConfPath: '/r.conf',
    });
  });

  it('takes --username and --password together', async () => {
    const flags = await parse(['--dest-username', 'bob', '--dest-password', 'pw'], dockerFlags('dest-'));
    expect(dockerOptionsFromFlags(flags, 'dest-').credentials).toEqual({ username: 'bob', password: 'pw' });
  });

  it('accepts --tls-verify, --no-tls-verify and Go’s --tls-verify=true|false', async () => {
    const flags = dockerFlags('');
    expect(dockerOptionsFromFlags(await parse(['--tls-verify'], flags), '').tlsVerify).toBe(true);
    expect(dockerOptionsFromFlags(await parse(['--no-tls-verify'], flags), '').tlsVerify).toBe(false);
    expect(dockerOptionsFromFlags(await parse(['--tls-verify=false'], flags), '').tlsVerify).toBe(false);
    expect(dockerOptionsFromFlags(await parse(['--tls-verify=TRUE'], flags), '').tlsVerify).toBe(true);
  });

  it('marks --no-creds as anonymous', async () => {
    const flags = await parse(['--no-creds=true'], dockerFlags(''));
    expect(dockerOptionsFromFlags(flags, '')).toEqual({ noCredentials: true });
  });

  it('refuses --creds with --no-creds, and --username without --password, as usage errors', async () => {
    await expect(parse(['--creds', 'a:b', '--no-creds'], dockerFlags(''))).rejects.toThrow(
      /cannot also be provided/,
    );
    await expect(parse(['--src-username', 'a'], copyLikeFlags)).rejects.toThrow(/src-password/);
  });

  it('also refuses contradictions when called without oclif’s checks', () => {
    expect(() => dockerOptionsFromFlags({ creds: 'a:b', 'no-creds': true }, '')).toThrow(
      '--creds and --no-creds cannot be used together',
    );
    expect(() => dockerOptionsFromFlags({ 'src-password': 'secret' }, 'src-')).toThrow(
      '--src-username is required with --src-password',
    );
  });

  it('passes a non-zero --retry-times and any --retry-delay to the transport', () => {
    expect(dockerOptionsFromFlags({ 'retry-times': 0 }, '')).toEqual({});
    expect(dockerOptionsFromFlags({ 'retry-times': 4, 'retry-delay': 1500 }, 'src-')).toEqual({
      retryTimes: 4,
      retryDelayMs: 1500,
    });
  });
});

describe('parseCreds', () => {
  it('splits at the first colon', () => {
    expect(parseCreds('creds', 'u:p:q')).toEqual({ username: 'u', password: 'p:q' });
  });

  it('refuses empty parts without echoing the value', () => {
    for (const bad of ['', ':secret', 'user', 'user:']) {
      let error: unknown;
      try {
        parseCreds('src-creds', bad);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toMatch(/^invalid --src-creds: /);
      if (bad.length > 0) expect((error as Error).message).not.toContain(bad.replace(':', ''));
    }
  });
});

describe('normalizeBooleanValues', () => {
  it('rewrites known boolean flags with values and leaves the rest alone', () => {
    expect(
      normalizeBooleanValues([
        'copy',
        '--src-tls-verify=false',
        '--dest-tls-verify=1',
        '--no-creds=false',
        '--src-no-creds=t',
        '--format=oci',
        '--unknown=false',
        '--',
        '--tls-verify=false',
      ]),
    ).toEqual([
      'copy',
      '--no-src-tls-verify',
      '--dest-tls-verify',
      '--src-no-creds',
      '--format=oci',
      '--unknown=false',
      '--',
      '--tls-verify=false',
    ]);
  });
});

describe('withDockerOptions', () => {
  it('adds the options under transportOptions.docker, keeping the other transports’', () => {
    const ctx = { tmpDir: '/t', transportOptions: { oci: { sharedBlobDir: '/b' } } };
    expect(withDockerOptions(ctx, { tlsVerify: false })).toEqual({
      tmpDir: '/t',
      transportOptions: { oci: { sharedBlobDir: '/b' }, docker: { tlsVerify: false } },
    });
    expect(withDockerOptions(ctx, {})).toEqual(ctx);
  });
});
