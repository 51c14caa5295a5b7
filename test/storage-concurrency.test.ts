// img and podman writing the same containers-storage store at once (temp roots only): each waits for
// the other's locks, readers never see a half-made image, and both images end up complete and listed.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import type { TestImage } from '@img/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imgBin, run, Sandbox, skopeo } from './helpers/cli.js';
import { writeOciImage } from './helpers/images.js';

const exec = promisify(execFile);
const hasTools = existsSync('/usr/bin/podman') && existsSync('/usr/bin/skopeo') && process.getuid?.() === 0;

describe.runIf(hasTools)('img and podman writing one store at the same time (vfs)', () => {
  let box: Sandbox;
  let base: string[];
  let spec: string;
  let mine: TestImage;
  let theirs: TestImage;
  const podman = async (...args: string[]) =>
    (await exec('podman', [...base, ...args], { maxBuffer: 64 << 20 })).stdout;

  beforeAll(async () => {
    box = await Sandbox.create();
    const graph = box.path('store', 'g');
    const runRoot = box.path('store', 'r');
    base = ['--root', graph, '--runroot', runRoot, '--storage-driver', 'vfs'];
    spec = `[vfs@${graph}+${runRoot}]`;
    mine = await writeOciImage(box.path('mine'), 'v1', { seed: 91, layers: 4, layerSize: 8_000_000 });
    theirs = await writeOciImage(box.path('theirs'), 'v1', { seed: 92, layers: 4, layerSize: 8_000_000 });
    // podman loads its image from a docker archive (named inside the archive).
    const archive = await skopeo(
      'copy',
      '--quiet',
      `oci:${box.path('theirs')}:v1`,
      `docker-archive:${box.path('theirs.tar')}:localhost/theirs:v1`,
    );
    expect(archive.code, archive.stderr).toBe(0);
  });
  afterAll(async () => {
    await box.cleanup();
  });

  it('neither sees a half-made image, and both images end up complete and listed', async () => {
    const writers = Promise.all([
      run(
        process.execPath,
        [
          imgBin,
          '--insecure-policy',
          'copy',
          '--quiet',
          `oci:${box.path('mine')}:v1`,
          `containers-storage:${spec}localhost/mine:v1`,
        ],
        { env: box.env() },
      ),
      run('podman', [...base, 'load', '-q', '-i', box.path('theirs.tar')]),
    ]);
    let finished = false;
    void writers.finally(() => {
      finished = true;
    });
    // Readers, while both write: podman lists and inspects, img inspects. An image is either absent
    // or whole (every layer of its config present).
    const expected = new Map([
      ['localhost/mine:v1', mine.layers.map((l) => l.diffID)],
      ['localhost/theirs:v1', theirs.layers.map((l) => l.diffID)],
    ]);
    let podmanLooks = 0;
    let imgLooks = 0;
    const podmanReader = async () => {
      while (!finished) {
        const listed = JSON.parse(await podman('images', '--format', 'json')) as Array<{
          Names?: string[];
          Id: string;
        }>;
        for (const image of listed) {
          const [inspected] = JSON.parse(await podman('image', 'inspect', image.Id)) as Array<{
            RootFS: { Layers: string[] };
          }>;
          const name = image.Names?.[0];
          if (name) expect(inspected!.RootFS.Layers).toEqual(expected.get(name));
        }
        podmanLooks++;
      }
    };
    const imgReader = async () => {
      let sawMine = false;
      while (!finished) {
        const r = await box.img(
          'inspect',
          '--format',
          '{{.Digest}}',
          `containers-storage:${spec}localhost/mine:v1`,
        );
        if (r.code === 0) {
          sawMine = true;
          expect(r.stdout.trim()).toBe(mine.manifestDigest);
        } else {
          expect(sawMine, 'the image disappeared after it was seen').toBe(false);
          expect(r.stderr).toMatch(/manifest unknown/);
        }
        imgLooks++;
      }
    };
    await Promise.all([podmanReader(), imgReader()]);
    const [imgCopy, podmanLoad] = await writers;
    expect(imgCopy.code, imgCopy.stderr).toBe(0);
    expect(podmanLoad.code, podmanLoad.stderr).toBe(0);
    expect(podmanLooks).toBeGreaterThan(1);
    expect(imgLooks).toBeGreaterThan(0);

    const listed = JSON.parse(await podman('images', '--format', 'json')) as Array<{
      Names: string[];
      Id: string;
    }>;
    expect(listed.flatMap((i) => i.Names).sort()).toEqual(['localhost/mine:v1', 'localhost/theirs:v1']);
    expect(listed.map((i) => i.Id).sort()).toEqual(
      [mine.configDigest.slice(7), theirs.configDigest.slice(7)].sort(),
    );
    // Both read back whole: skopeo verifies every layer of each against its diff ID on the way out.
    for (const name of expected.keys()) {
      const out = await skopeo(
        'copy',
        '--quiet',
        `containers-storage:${spec}${name}`,
        `oci:${box.path('out')}:${name.split('/')[1]!.replace(':', '-')}`,
      );
      expect(out.code, out.stderr).toBe(0);
      const [inspected] = JSON.parse(await podman('image', 'inspect', name)) as Array<{
        RootFS: { Layers: string[] };
      }>;
      expect(inspected!.RootFS.Layers).toEqual(expected.get(name));
    }
    const theirsByImg = await box.img(
      'inspect',
      '--format',
      '{{.Digest}}',
      `containers-storage:${spec}localhost/theirs:v1`,
    );
    expect(theirsByImg.code, theirsByImg.stderr).toBe(0);
  });
});
