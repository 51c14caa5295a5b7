import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { entryPath, packLayout, scanTar, type TarHeader } from './tar.js';
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

  it('fails on an entry whose data runs past the end of the file', async () => {
    const file = join(await tempDir(), 'cut.tar');
    const whole = await makeTar({ 'index.json': '{}', blob: 'b'.repeat(2000) });
    // Keep the first entry and half of the second one's data; the end-of-archive blocks go too.
    await writeFile(file, whole.subarray(0, 1024 + 512 + 1000));
    await expect(scan(file)).rejects.toThrow(/truncated tar: the entry at offset 1024 has 2000 bytes/);
  });

  it('keeps entry names inside the root', () => {
    expect(entryPath('./blobs/sha256/')).toBe('blobs/sha256');
    expect(entryPath('../x')).toBeUndefined();
    expect(entryPath('blobs/../../x')).toBeUndefined();
    expect(entryPath('/etc/passwd')).toBeUndefined();
    expect(entryPath('./')).toBeUndefined();
  });
});

/** A layout directory whose one blob is made by `make` at its digest-named path. */
async function layoutWithBlob(make: (path: string) => Promise<unknown>): Promise<string> {
  const dir = await tempDir();
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(join(dir, 'index.json'), '{"schemaVersion":2,"manifests":[]}');
  await make(join(dir, 'blobs', 'sha256', 'a'.repeat(64)));
  return dir;
}

describe('layout packing', () => {
  it('rejects when a blob cannot be read and leaves no temp file beside the target', async () => {
    const layout = await layoutWithBlob((path) => mkdir(path));
    const out = await tempDir();
    await expect(packLayout(layout, join(out, 'image.tar'))).rejects.toMatchObject({ code: 'EISDIR' });
    expect(await readdir(out)).toEqual([]);
  });

  it.skipIf(!existsSync('/usr/bin/mkfifo'))(
    'rejects an abort in the middle of a blob and leaves no temp file beside the target',
    async () => {
      // A FIFO as the blob: packing blocks inside the entry until this test writes, so the abort
      // lands while the entry is open, whatever the machine's speed.
      const layout = await layoutWithBlob((path) => promisify(execFile)('/usr/bin/mkfifo', [path]));
      const out = await tempDir();
      const stop = new AbortController();
      const packed = packLayout(layout, join(out, 'image.tar'), { signal: stop.signal });
      const writer = await open(join(layout, 'blobs', 'sha256', 'a'.repeat(64)), 'w');
      await writer.write(Buffer.alloc(4096, 1));
      stop.abort(new Error('stop'));
      // A read may be pending on the FIFO when the abort lands; the stream closes only once that
      // read returns, so end the writer's side now rather than after the rejection.
      await writer.close();
      await expect(packed).rejects.toMatchObject({ name: 'AbortError' });
      expect(await readdir(out)).toEqual([]);
    },
  );
});
