import { ManifestUnknownError } from '@img/core';
import { Errors } from '@oclif/core';
import { describe, expect, it } from 'vitest';
import {
  commandErrorReport,
  describeError,
  errorMessage,
  redactCredentials,
  UsageError,
  usageErrorLine,
} from './error-output.js';

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

  it('gives the reasons of a failed flag relationship, without the secret values they quote', () => {
    const error = new Errors.CLIError(
      'The following errors occurred:\n  --src-creds=u:hunter2 cannot also be provided when using --src-no-creds\n  --src-no-creds=true cannot also be provided when using --src-creds\nSee more help with --help',
      { exit: 2 },
    );
    const line = usageErrorLine(error, 'img', 'copy');
    expect(line).toBe(
      '--src-creds=*** cannot also be provided when using --src-no-creds; --src-no-creds=true cannot also be provided when using --src-creds (see "img copy --help")',
    );
    expect(line).not.toContain('hunter2');
  });

  it('points at the command help of a nested command', () => {
    const error = new Errors.CLIError('Nonexistent flag: --bogus\nSee more help with --help', { exit: 2 });
    expect(usageErrorLine(error, 'img', 'plugins:install')).toBe(
      'Nonexistent flag: --bogus (see "img plugins install --help")',
    );
  });
});

describe('commandErrorReport', () => {
  const context = { usage: false, debug: false, interrupted: false, bin: 'img', commandId: 'copy' };

  it('is one Error line without credentials, and exit 1', () => {
    const error = new Error('GET https://bob:hunter2@r.example/v2/ failed:\n  connection reset');
    expect(commandErrorReport(error, context)).toEqual({
      text: 'Error: GET https://***@r.example/v2/ failed: connection reset\n',
      exitCode: 1,
    });
  });

  it('points a usage error at the command’s help, with exit 2', () => {
    const error = new UsageError('invalid --src-creds: a password is required (USERNAME:PASSWORD)');
    expect(commandErrorReport(error, { ...context, usage: true })).toEqual({
      text: 'Error: invalid --src-creds: a password is required (USERNAME:PASSWORD) (see "img copy --help")\n',
      exitCode: 2,
    });
  });

  it('says interrupted after Ctrl-C, with exit 130, and names an expired timeout', () => {
    expect(commandErrorReport(new Error('aborted'), { ...context, interrupted: true })).toEqual({
      text: 'Error: interrupted\n',
      exitCode: 130,
    });
    expect(commandErrorReport(new Error('aborted'), { ...context, timedOutAfter: '1m30s' })).toEqual({
      text: 'Error: command timed out after 1m30s\n',
      exitCode: 1,
    });
  });

  it('adds the stack and the causes with --debug, credentials removed', () => {
    const error = new Error('failed', { cause: new Error('token=abc at https://u:p@h.example/') });
    const { text } = commandErrorReport(error, { ...context, debug: true });
    expect(text).toMatch(/^Error: failed\nError: failed\n\s+at /);
    expect(text).toContain('Caused by: Error: token=abc at https://***@h.example/');
    expect(text).not.toContain('u:p@');
  });
});
