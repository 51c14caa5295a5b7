import { describe, expect, it } from 'vitest';
import { globalFlagNames, hoistGlobalFlags } from './argv.js';
import { BaseCommand } from './base-command.js';

describe('hoistGlobalFlags', () => {
  it('moves leading global flags after the command and its arguments', () => {
    expect(hoistGlobalFlags(['--debug', 'copy', 'dir:/a', 'dir:/b'])).toEqual([
      'copy',
      'dir:/a',
      'dir:/b',
      '--debug',
    ]);
  });

  it('takes the values of valued flags along, in both spellings', () => {
    expect(
      hoistGlobalFlags(['--policy', '/p.json', '--command-timeout=30s', 'inspect', 'oci:/l:v1']),
    ).toEqual(['inspect', 'oci:/l:v1', '--policy', '/p.json', '--command-timeout=30s']);
  });

  it('puts them before the command flags and keeps everything after --', () => {
    expect(hoistGlobalFlags(['--insecure-policy', 'copy', '--all', 'a:x', 'b:y'])).toEqual([
      'copy',
      '--insecure-policy',
      '--all',
      'a:x',
      'b:y',
    ]);
    expect(hoistGlobalFlags(['--debug', 'inspect', '--', '-odd'])).toEqual([
      'inspect',
      '--debug',
      '--',
      '-odd',
    ]);
  });

  it('keeps a multi-word command together', () => {
    expect(hoistGlobalFlags(['--debug', 'plugins', 'install', 's3'])).toEqual([
      'plugins',
      'install',
      's3',
      '--debug',
    ]);
  });

  it('leaves argv alone when no global flag leads or no command follows', () => {
    expect(hoistGlobalFlags(['copy', '--debug', 'a:x', 'b:y'])).toEqual(['copy', '--debug', 'a:x', 'b:y']);
    expect(hoistGlobalFlags(['--debug'])).toEqual(['--debug']);
    expect(hoistGlobalFlags(['--debug', '--help'])).toEqual(['--debug', '--help']);
    expect(hoistGlobalFlags(['--version'])).toEqual(['--version']);
    expect(hoistGlobalFlags(['--policy'])).toEqual(['--policy']);
    expect(hoistGlobalFlags([])).toEqual([]);
  });

  it('stops at the first flag that is not global', () => {
    expect(hoistGlobalFlags(['--debug', '--all', 'copy'])).toEqual(['--debug', '--all', 'copy']);
  });

  it('knows exactly the global flags BaseCommand declares, with or without a value', () => {
    const declared = Object.entries(BaseCommand.baseFlags);
    expect(
      declared
        .filter(([, f]) => f.type === 'boolean')
        .map(([n]) => n)
        .sort(),
    ).toEqual([...globalFlagNames.boolean].sort());
    expect(
      declared
        .filter(([, f]) => f.type === 'option')
        .map(([n]) => n)
        .sort(),
    ).toEqual([...globalFlagNames.valued].sort());
  });
});
