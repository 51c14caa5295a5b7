import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { entryPath, scanTar, type TarHeader } from './tar.js';
import { makeTar, useTempDirs } from './test-helpers.js';

const tempDir = useTempDirs();

async function scan(file: string): Promise<TarHeader[]> {
  const handle = await open(file, 'r');
  try {
    const out: TarHeader[] = [];
    for await (const entry of scanTar(handle)) out.push(entry);
    return out;
  } finally {
    await handle.close();
  }
}

const longName = `blobs/sha256/${'a'.repeat(64)}/${'b'.repeat(120)}`;

describe('tar header scan', () => {
  it('finds names, sizes and data offsets without reading data', async () => {
    const file = join(await tempDir(), 'a.tar');
    await writeFile(file, await makeTar({ 'index.json': '{}', 'oci-layout': 'layout!' }));
    const entries = await scan(file);
    expect(entries.map((e) => [e.name, e.type, e.size, e.offset])).toEqual([
      ['index.json', '0', 2, 512],
      ['oci-layout', '0', 7, 1536],
    ]);
  });

  it('applies a PAX path header to the entry after it', async () => {
    const file = join(await tempDir(), 'pax.tar');
    await writeFile(file, await makeTar({ [longName]: 'long' }));
    expect((await scan(file)).map((e) => [e.name, e.size])).toEqual([[longName, 4]]);
  });

  it('joins the ustar prefix to the name', async () => {
    const file = join(await tempDir(), 'ustar.tar');
    const split = `${'d'.repeat(90)}/${'e'.repeat(90)}`;
    await writeFile(file, await makeTar({ [split]: 'split' }));
    expect((await scan(file)).map((e) => [e.name, e.size])).toEqual([[split, 5]]);
  });

  it.skipIf(!existsSync('/usr/bin/tar'))('reads GNU long names written by tar(1)', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'src', longName, '..'), { recursive: true });
    await writeFile(join(dir, 'src', longName), 'gnu');
    await promisify(execFile)('/usr/bin/tar', [
      '--format=gnu',
      '-cf',
      join(dir, 'gnu.tar'),
      '-C',
      join(dir, 'src'),
      longName,
    ]);
    expect((await scan(join(dir, 'gnu.tar'))).map((e) => [e.name, e.size])).toEqual([[longName, 3]]);
  });

  it('fails on a header whose checksum is wrong', async () => {
    const file = join(await tempDir(), 'junk');
    await writeFile(file, 'x'.repeat(1024));
    await expect(scan(file)).rejects.toThrow(/not a tar header/);
  });

  it('keeps entry names inside the root', () => {
    expect(entryPath('./blobs/sha256/')).toBe('blobs/sha256');
    expect(entryPath('../x')).toBeUndefined();
    expect(entryPath('blobs/../../x')).toBeUndefined();
    expect(entryPath('/etc/passwd')).toBeUndefined();
    expect(entryPath('./')).toBeUndefined();
  });
});
