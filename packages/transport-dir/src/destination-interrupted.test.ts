// A commit interrupted at its worst moment, right after the new manifest is renamed into place: the
// process "dies" there (the mocked rename does its work, then throws), and what is on disk is checked.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { MediaTypes, type Signature } from '@img/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { newDirReference } from './index.js';

const crash = vi.hoisted(() => ({ afterRenameTo: undefined as string | undefined }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...actual,
    rename: async (from: string, to: string) => {
      await actual.rename(from, to);
      if (crash.afterRenameTo !== undefined && basename(to) === crash.afterRenameTo) {
        throw new Error('simulated crash');
      }
    },
  };
});

/** A manifest with no blobs: enough for dir:, which stores any manifest. */
function manifest(seed: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      layers: [],
      annotations: { seed },
    }),
  );
}

const signature = (n: number): Signature => ({
  format: 'simple-signing',
  bytes: Uint8Array.from([0xa3, 1, n]),
});

describe('DirImageDestination commit interrupted after the manifest is replaced', () => {
  let dir: string;

  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'img-dir-crash-')), 'image');
    const dest = await newDirReference(dir).newImageDestination({});
    await dest.putManifest(manifest('old'));
    await dest.putSignatures([signature(1), signature(2)]);
    await dest.commit();
    await dest.close();
  });

  afterEach(async () => {
    crash.afterRenameTo = undefined;
    await rm(join(dir, '..'), { recursive: true, force: true });
  });

  async function commitNew(signatures?: Signature[]): Promise<void> {
    const dest = await newDirReference(dir).newImageDestination({});
    await dest.putManifest(manifest('new'));
    if (signatures) await dest.putSignatures(signatures);
    crash.afterRenameTo = 'manifest.json';
    await expect(dest.commit()).rejects.toThrow('simulated crash');
    crash.afterRenameTo = undefined;
    await dest.close();
  }

  it('leaves the new manifest unsigned, without the old signatures', async () => {
    await commitNew();
    expect(await readFile(join(dir, 'manifest.json'))).toEqual(manifest('new'));
    expect((await readdir(dir)).filter((name) => name.startsWith('signature-'))).toEqual([]);
  });

  it('leaves the new manifest unsigned when new signatures were put too', async () => {
    await commitNew([signature(9)]);
    expect(await readFile(join(dir, 'manifest.json'))).toEqual(manifest('new'));
    expect((await readdir(dir)).filter((name) => name.startsWith('signature-'))).toEqual([]);
  });
});
