import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { koffiLoadedFrom, loadKoffi } from './koffi.js';

describe('loadKoffi', () => {
  it("loads koffi's prebuilt binary directly, the version of the koffi package this package resolves", () => {
    const koffi = loadKoffi(import.meta.url);
    expect(koffiLoadedFrom).toBe('binary');
    const require = createRequire(import.meta.url);
    const main = require.resolve('koffi');
    const version = JSON.parse(readFileSync(join(main, '..', 'package.json'), 'utf8')).version;
    expect(koffi.version).toBe(version);
    // The same API as koffi's loader gives: a libc function called through it works.
    const getpid = koffi.load('libc.so.6').func('int getpid()');
    expect(getpid()).toBe(process.pid);
  });
});
