import { ManifestUnknownError } from '@img/core';
import { Errors } from '@oclif/core';
import { describe, expect, it } from 'vitest';
import { describeError, errorMessage, redactCredentials, usageErrorLine } from './base-command.js';

describe('redactCredentials', () => {
  it('removes user info from URLs, authorization values and token parameters', () => {
    expect(redactCredentials('GET https://bob:hunter2@registry.example/v2/ failed')).toBe(
      'GET https://***@registry.example/v2/ failed',
    );
    expect(redactCredentials('Authorization: Bearer abc.def')).toBe('Authorization: ***');
    expect(redactCredentials('https://r.example/token?scope=x&access_token=secret1')).toBe(
      'https://r.example/token?scope=x&access_token=***',
    );
    expect(redactCredentials('manifest unknown: oci:/tmp/a:b')).toBe('manifest unknown: oci:/tmp/a:b');
  });
});

describe('errorMessage', () => {
  it('is the message on one line', () => {
    expect(errorMessage(new Error('first\n  second'))).toBe('first second');
    expect(errorMessage('plain')).toBe('plain');
  });
});

describe('describeError', () => {
  it('lists the stack of the error and of every cause, with codes', () => {
    const root = new Error('socket hang up');
    const error = new ManifestUnknownError('oci:/x:y', { cause: root });
    const text = describeError(error);
    expect(text).toMatch(/^ManifestUnknownError: manifest unknown: oci:\/x:y\n\s+at /);
    expect(text).toContain('[IMG_MANIFEST_UNKNOWN]');
    expect(text).toMatch(/Caused by: Error: socket hang up\n\s+at /);
  });

  it('includes the errors of an AggregateError', () => {
    const text = describeError(new AggregateError([new Error('a'), new Error('b')], 'both failed'));
    expect(text).toContain('Including: Error: a');
    expect(text).toContain('Including: Error: b');
  });
});

describe('usageErrorLine', () => {
  it('keeps the first line of a parse error and names the missing arguments', () => {
    const error = Object.assign(
      new Errors.CLIError('Missing 2 required args:\nsource  The image\nSee more help with --help', {
        exit: 2,
      }),
      { args: [{ name: 'source' }, { name: 'destination' }] },
    );
    expect(usageErrorLine(error, 'img', 'copy')).toBe(
      'Missing 2 required args: source, destination (see "img copy --help")',
    );
  });

  it('points at the command help of a nested command', () => {
    const error = new Errors.CLIError('Nonexistent flag: --bogus\nSee more help with --help', { exit: 2 });
    expect(usageErrorLine(error, 'img', 'plugins:install')).toBe(
      'Nonexistent flag: --bogus (see "img plugins install --help")',
    );
  });
});
