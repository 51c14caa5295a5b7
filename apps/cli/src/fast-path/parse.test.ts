import { type Command, Parser } from '@oclif/core';
import { afterEach, describe, expect, it } from 'vitest';
import { hoistGlobalFlags, normalizeBooleanValues } from '../argv.js';
import Copy from '../commands/copy.js';
import { parseFast } from './parse.js';
import type { FastCommandSpec } from './spec.js';
import { fastCommandSpec } from './spec-from-command.js';

const generated = fastCommandSpec(Copy);
if (!('spec' in generated)) throw new Error(`copy has no fast spec: ${generated.reason}`);
const spec: FastCommandSpec = generated.spec;

const src = 'oci:/srv/layout:v1';
const dst = 'dir:/tmp/out';
const envKey = 'IMG_BLOB_CACHE_DIR';
const savedEnv = process.env[envKey];

afterEach(() => {
  if (savedEnv === undefined) delete process.env[envKey];
  else process.env[envKey] = savedEnv;
});

/** What bin/run.js hands both paths: the normalised argv, without the command id. */
function normalised(commandLine: readonly string[]): string[] {
  const args = hoistGlobalFlags(normalizeBooleanValues(commandLine));
  expect(args[0]).toBe('copy');
  return args.slice(1);
}

/** What oclif's parser (and its checks) give Copy for this argv: as BaseCommand.init parses it. */
async function oclif(
  argv: string[],
): Promise<{ flags: Record<string, unknown>; args: Record<string, unknown> }> {
  const { flags, args } = await Parser.parse(argv, {
    flags: { ...Copy.baseFlags, ...Copy.flags } as Command.Class['flags'],
    args: Copy.args,
    strict: Copy.strict,
  });
  return { flags, args };
}

function withEnv(env: Record<string, string>): Record<string, string> {
  if (env[envKey] === undefined) delete process.env[envKey];
  else process.env[envKey] = env[envKey];
  return env;
}

/** The fast parser's result, which must be oclif's exactly. */
async function expectSameAsOclif(commandLine: readonly string[], env: Record<string, string> = {}) {
  const argv = normalised(commandLine);
  const fast = parseFast(spec, argv, withEnv(env));
  expect(fast, `the fast parser declined ${JSON.stringify(commandLine)}`).toBeDefined();
  expect(fast).toEqual(await oclif(argv));
  return fast!;
}

function expectDeclined(commandLine: readonly string[], env: Record<string, string> = {}) {
  expect(parseFast(spec, normalised(commandLine), withEnv(env))).toBeUndefined();
}

describe('parseFast, against oclif’s parser on copy', () => {
  const accepted: Array<[string, string[], Record<string, string>?]> = [
    ['no flags (defaults only)', ['copy', src, dst]],
    ['booleans, long and short', ['copy', '--quiet', '-a', '--remove-signatures', src, dst]],
    ['grouped short booleans', ['copy', '-aq', src, dst]],
    ['a short option after grouped booleans', ['copy', '-qf', 'oci', src, dst]],
    ['a short option with its value attached', ['copy', '-qfv2s2', src, dst]],
    ['a short option with =', ['copy', '-f=oci', src, dst]],
    [
      'options lists, separate and =-joined',
      ['copy', '--format', 'oci', '--multi-arch=index-only', src, dst],
    ],
    ['the progress default replaced', ['copy', '--progress', 'json', src, dst]],
    ['negatable booleans', ['copy', '--no-src-tls-verify', '--dest-tls-verify', src, dst]],
    [
      'Go-style --x=false, as bin/run.js rewrites it',
      ['copy', '--src-tls-verify=false', '--dest-tls-verify=1', src, dst],
    ],
    [
      'a plain boolean set to false by value',
      ['copy', '--src-no-creds=false', '--dest-no-creds=true', src, dst],
    ],
    ['a repeated boolean: the last one wins', ['copy', '--src-tls-verify', '--no-src-tls-verify', src, dst]],
    ['integers with bounds', ['copy', '--retry-times', '3', '--image-parallel-copies=0', src, dst]],
    ['Go durations', ['copy', '--retry-delay', '1m30s', '--command-timeout=250ms', src, dst]],
    ['a zero duration and a long one', ['copy', '--retry-delay=0', '--command-timeout', '9999h', src, dst]],
    ['global flags before the command', ['--insecure-policy', '--policy', '/p.json', 'copy', src, dst]],
    [
      'global flags after the arguments',
      ['copy', src, dst, '--override-os', 'linux', '--override-arch=arm64'],
    ],
    ['global flags on both sides', ['--tmpdir=/t', 'copy', src, dst, '--registries-conf', '/r.conf']],
    ['flags between the arguments', ['copy', src, '--quiet', '--digestfile', '/tmp/d', dst]],
    ['credentials and their old alias', ['copy', '--screds', 'u:p', '--dest-creds=v:q', src, dst]],
    [
      'username with password (dependsOn)',
      ['copy', '--dest-username', 'u', '--dest-password', 'p', src, dst],
    ],
    [
      'oci and daemon options',
      ['copy', '--src-shared-blob-dir', '/b', '--dest-daemon-host=unix:///d.sock', src, dst],
    ],
    [
      'registry options',
      ['copy', '--authfile', '/a.json', '--src-cert-dir', '/c', '--dest-registry-token', 't', src, dst],
    ],
    ['an empty value', ['copy', '--digestfile=', src, dst]],
    ['--debug (parsed; planFastPath leaves it to oclif)', ['--debug', 'copy', src, dst]],
    ['a value from the flag’s environment variable', ['copy', src, dst], { [envKey]: '/cache' }],
    [
      'the flag over its environment variable',
      ['copy', '--blob-cache-dir', '/flag', src, dst],
      { [envKey]: '/env' },
    ],
    ['- as an argument', ['copy', '-', dst]],
  ];
  for (const [name, commandLine, env] of accepted) {
    it(`gives oclif’s flags and arguments: ${name}`, async () => {
      await expectSameAsOclif(commandLine, env);
    });
  }

  it('gives the defaults as oclif does: a number, a string, and nothing for booleans', async () => {
    const { flags } = await expectSameAsOclif(['copy', src, dst]);
    expect(flags).toEqual({ 'retry-times': 0, progress: 'auto' });
  });

  const declined: Array<[string, string[], Record<string, string>?]> = [
    ['an unknown flag', ['copy', '--bogus', src, dst]],
    ['an unknown short flag', ['copy', '-z', src, dst]],
    ['a value outside the options', ['copy', '--format', 'v2s1', src, dst]],
    ['a =-joined value outside the options', ['copy', '--multi-arch=everything', src, dst]],
    ['a negative integer', ['copy', '--retry-times', '-1', src, dst]],
    ['an integer below its minimum, =-joined', ['copy', '--retry-times=-1', src, dst]],
    ['not an integer', ['copy', '--image-parallel-copies', '1.5', src, dst]],
    ['a duration without a unit', ['copy', '--retry-delay', '5', src, dst]],
    ['a negative duration', ['copy', '--command-timeout=-1s', src, dst]],
    ['exclusive flags together', ['copy', '--all', '--multi-arch', 'all', src, dst]],
    ['credentials with --no-creds', ['copy', '--src-creds', 'u:p', '--src-no-creds', src, dst]],
    ['a username without its password', ['copy', '--src-username', 'u', src, dst]],
    ['an option given twice', ['copy', '--format', 'oci', '--format', 'v2s2', src, dst]],
    ['an option given by name and by alias', ['copy', '--src-creds', 'a:b', '--screds', 'c:d', src, dst]],
    ['a boolean with a value bin/run.js does not rewrite', ['copy', '--quiet=yes', src, dst]],
    ['a negated boolean with a value', ['copy', '--no-src-tls-verify=false', src, dst]],
    ['--no- of a boolean that has none', ['copy', '--no-quiet', src, dst]],
    ['a value that starts with -', ['copy', '--digestfile', '-x', src, dst]],
    ['a flag where a value should be', ['copy', '--digestfile', '--quiet', src, dst]],
    ['a missing value at the end', ['copy', src, dst, '--digestfile']],
    ['--', ['copy', '--', src, dst]],
    ['--help', ['copy', '--help', src, dst]],
    ['one argument', ['copy', src]],
    ['three arguments', ['copy', src, dst, 'dir:/third']],
    ['a short group ending in -', ['copy', '-q-', src, dst]],
  ];
  for (const [name, commandLine, env] of declined) {
    it(`declines ${name}`, () => {
      expectDeclined(commandLine, env);
    });
  }

  it('declines an unknown flag that oclif refuses too', async () => {
    expectDeclined(['copy', '--bogus', src, dst]);
    await expect(oclif(normalised(['copy', '--bogus', src, dst]))).rejects.toThrow(/Nonexistent flag/);
  });
});

/** A small deterministic generator (mulberry32), so that a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const valuesByFlag: Record<string, string[]> = {
  format: ['oci', 'v2s2', 'v2s1'],
  'multi-arch': ['system', 'all', 'index-only', 'bogus'],
  progress: ['auto', 'bars', 'lines', 'json', 'none', 'loud'],
  'retry-times': ['0', '2', '-1', 'x', '007'],
  'image-parallel-copies': ['0', '8', '1e3'],
  'retry-delay': ['1s', '1m30s', '1.5h', '5', '-2s', '300ms'],
  'command-timeout': ['0', '30s', '9999h', 'soon'],
};

/** One random token (or two) for a flag of the spec, in any of the spellings a user might type. */
function flagTokens(pick: <T>(items: readonly T[]) => T): string[] {
  const names = [...Object.keys(spec.flags), 'bogus'];
  const name = pick(names);
  const flag = spec.flags[name];
  if (!flag) return [pick(['--bogus', '-z', '--', '--help'])];
  if (flag.kind === 'boolean') {
    const forms = [`--${name}`, `--${name}=true`];
    if (flag.allowNo) forms.push(`--no-${name}`, `--${name}=false`);
    if (flag.char) forms.push(`-${flag.char}`, `-${flag.char}q`);
    return [pick(forms)];
  }
  const value = pick([...(valuesByFlag[name] ?? ['/some/path', 'u:p']), '', '-v']);
  const forms = [[`--${name}`, value], [`--${name}=${value}`]];
  for (const alias of flag.aliases ?? []) forms.push([`--${alias}`, value]);
  if (flag.char) forms.push([`-${flag.char}`, value], [`-${flag.char}${value}`]);
  return pick(forms);
}

describe('parseFast on random copy command lines', () => {
  it('either gives exactly oclif’s result or declines, and takes most plain lines', async () => {
    const next = random(20_241_124);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
    let taken = 0;
    const runs = 600;
    for (let i = 0; i < runs; i++) {
      const tokens: string[] = [];
      const flagCount = Math.floor(next() * 4);
      for (let f = 0; f < flagCount; f++) tokens.push(...flagTokens(pick));
      const positionals = next() < 0.9 ? [src, dst] : pick([[src], [src, dst, dst]]);
      // Arguments go anywhere among the flags (never inside a flag's value: after a whole group).
      const line = [...tokens];
      for (const p of positionals) line.splice(Math.floor(next() * (line.length + 1)), 0, p);
      const leadingGlobal =
        next() < 0.2 ? pick([['--insecure-policy'], ['--tmpdir', '/t'], ['--debug']]) : [];
      const commandLine = [...leadingGlobal, 'copy', ...line];
      const env = next() < 0.2 ? { [envKey]: pick(['/cache', '']) } : {};
      const argv = normalised(commandLine);
      const fast = parseFast(spec, argv, withEnv(env));
      if (fast === undefined) continue;
      taken++;
      expect(fast, JSON.stringify(commandLine)).toEqual(await oclif(argv));
    }
    expect(taken).toBeGreaterThan(runs / 4);
  });
});
