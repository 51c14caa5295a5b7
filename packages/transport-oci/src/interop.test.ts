// Interoperability with the tools whose formats this package follows: skopeo (containers/image)
// reads and writes what we do, umoci unpacks our layouts.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { computeDigest } from '@img/core';
import { describe, expect, it } from 'vitest';
import { newOciArchiveReference, newOciReference } from './index.js';
import { makeImage, putImage, type TestImage, useTempDirs } from './test-helpers.js';

const run = promisify(execFile);
const tempDir = useTempDirs();
const noSkopeo = !existsSync('/usr/bin/skopeo');
const noUmoci = !existsSync('/usr/bin/umoci');

async function skopeoCopy(from: string, to: string): Promise<void> {
  await run('/usr/bin/skopeo', ['--insecure-policy', 'copy', '--quiet', from, to], { timeout: 60_000 });
}

async function writeLayout(dir: string, tag: string, image: TestImage): Promise<void> {
  const dest = await newOciReference(dir, tag).newImageDestination({});
  await putImage(dest, image);
  await dest.commit();
  await dest.close();
}

async function manifestDigestAt(
  ref: ReturnType<typeof newOciReference> | ReturnType<typeof newOciArchiveReference>,
) {
  const src = await ref.newImageSource({});
  try {
    return computeDigest((await src.getManifest()).bytes);
  } finally {
    await src.close();
  }
}

describe('interoperability', () => {
  it.skipIf(noSkopeo)(
    'skopeo copies a layout we wrote, and we read its copy with the same digest',
    async () => {
      const base = await tempDir();
      const image = await makeImage('app');
      await writeLayout(join(base, 'A'), 'tag', image);
      await skopeoCopy(`oci:${join(base, 'A')}:tag`, `oci:${join(base, 'B')}:tag`);
      expect(await manifestDigestAt(newOciReference(join(base, 'B'), 'tag'))).toBe(image.digest);
    },
  );

  it.skipIf(noSkopeo)('skopeo reads an oci-archive we wrote', async () => {
    const base = await tempDir();
    const image = await makeImage('app');
    const dest = await newOciArchiveReference(join(base, 'a.tar'), 'tag').newImageDestination({});
    await putImage(dest, image);
    await dest.commit();
    await dest.close();
    await skopeoCopy(`oci-archive:${join(base, 'a.tar')}:tag`, `oci:${join(base, 'C')}:tag`);
    expect(await manifestDigestAt(newOciReference(join(base, 'C'), 'tag'))).toBe(image.digest);
  });

  it.skipIf(noSkopeo)('reads an oci-archive skopeo wrote, and finds the image already there', async () => {
    const base = await tempDir();
    const image = await makeImage('app');
    await writeLayout(join(base, 'A'), 'tag', image);
    await skopeoCopy(`oci:${join(base, 'A')}:tag`, `oci-archive:${join(base, 's.tar')}:tag`);
    const ref = newOciArchiveReference(join(base, 's.tar'), 'tag');
    expect(await manifestDigestAt(ref)).toBe(image.digest);
    const dest = await ref.newImageDestination({});
    try {
      expect(await dest.alreadyContainsManifest!(image.digest, image.manifest)).toEqual({ present: true });
    } finally {
      await dest.close();
    }
  });

  it.skipIf(noUmoci)('umoci unpacks a layout we wrote into the files of its layers', async () => {
    const base = await tempDir();
    const image = await makeImage('app');
    await writeLayout(join(base, 'layout'), 'tag', image);
    await run(
      '/usr/bin/umoci',
      ['unpack', '--rootless', '--image', `${join(base, 'layout')}:tag`, join(base, 'bundle')],
      {
        timeout: 60_000,
      },
    );
    for (const [path, content] of Object.entries(image.files)) {
      expect(await readFile(join(base, 'bundle', 'rootfs', path), 'utf8')).toBe(content);
    }
  });
});
