import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imgBin, Sandbox } from './helpers/cli.js';
import { writeOciImage } from './helpers/images.js';

interface Event {
  type: string;
  bytesMoved?: number;
}

/** Starts a copy and SIGKILLs it as soon as it has stored its first blob. */
function copyKilledAfterFirstBlob(box: Sandbox, src: string, dest: string): Promise<Event[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [imgBin, '--insecure-policy', 'copy', '--image-parallel-copies', '1', '--progress=json', src, dest],
      { env: box.env(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const events: Event[] = [];
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const event = JSON.parse(line) as Event;
        events.push(event);
        if (event.type === 'blob-done') child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('close', (_code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`the copy was not interrupted (${signal ?? 'exited'})`));
      else resolve(events);
    });
  });
}

describe('a copy killed with SIGKILL', () => {
  let box: Sandbox;
  let src: string;
  beforeAll(async () => {
    box = await Sandbox.create();
    src = `oci:${box.path('src')}:v1`;
    await writeOciImage(box.path('src'), 'v1', { seed: 81, layers: 6, layerSize: 4 << 20 });
  });
  afterAll(() => box.cleanup());

  for (const [name, dest, previous] of [
    ['oci:', (b: Sandbox) => `oci:${b.path('dest-oci')}:v1`, (b: Sandbox) => b.path('dest-oci/index.json')],
    ['dir:', (b: Sandbox) => `dir:${b.path('dest-dir')}`, (b: Sandbox) => b.path('dest-dir/manifest.json')],
  ] as const) {
    it(`into ${name} leaves the previous image in place and its stored blobs reused by the next run`, async () => {
      const target = dest(box);
      // The destination already holds another image under the same name.
      await writeOciImage(box.path('other'), 'v1', { seed: 82, layers: 1 });
      expect(
        (await box.img('--insecure-policy', 'copy', '--quiet', `oci:${box.path('other')}:v1`, target)).code,
      ).toBe(0);
      const before = await readFile(previous(box));
      const digestBefore = (await box.img('inspect', '--format', '{{.Digest}}', target)).stdout;

      const events = await copyKilledAfterFirstBlob(box, src, target);
      expect(events.some((e) => e.type === 'blob-done')).toBe(true);
      expect((await readFile(previous(box))).equals(before)).toBe(true);
      expect((await box.img('inspect', '--format', '{{.Digest}}', target)).stdout).toBe(digestBefore);

      const again = await box.img('--insecure-policy', 'copy', '--progress=json', src, target);
      expect(again.code, again.stderr).toBe(0);
      const rerun = again.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Event);
      expect(rerun.filter((e) => e.type === 'blob-reused').length).toBeGreaterThanOrEqual(1);
      expect(rerun.filter((e) => e.type === 'blob-done').length).toBeLessThan(7);
      // The killed run's temp files were cleared by the next one.
      const root = box.path(name === 'oci:' ? 'dest-oci' : 'dest-dir');
      const files = (await readdir(root, { recursive: true })) as string[];
      expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    });
  }
});
