import { createHash } from 'node:crypto';
import { cp, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sandbox } from './helpers/cli.js';
import { writeOciImage } from './helpers/images.js';

/** A snapshot of a directory tree (paths and file digests) to prove a destination was left as it was. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string) => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else
        out[p.slice(dir.length)] = createHash('sha256')
          .update(await readFile(p))
          .digest('hex');
    }
  };
  await walk(dir);
  return out;
}

function oneLineError(stderr: string): string {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^Error: /);
  return lines[0]!;
}

describe('bad input: one clear line, a non-zero exit, the destination unchanged', () => {
  let box: Sandbox;
  let good: string;
  let dest: string;
  let before: Record<string, string>;
  let manifestPath: string;

  beforeAll(async () => {
    box = await Sandbox.create();
    good = box.path('good');
    const image = await writeOciImage(good, 'v1', { seed: 51, layers: 2 });
    manifestPath = join(good, 'blobs/sha256', image.manifestDigest.slice(7));
    dest = box.path('dest');
    await writeOciImage(dest, 'v1', { seed: 52, layers: 1 });
    before = await snapshot(dest);
  });
  afterAll(() => box.cleanup());

  async function expectFailure(src: string, pattern: RegExp): Promise<void> {
    const r = await box.img('--insecure-policy', 'copy', '--quiet', src, `oci:${dest}:v1`);
    expect(r.code).not.toBe(0);
    expect(oneLineError(r.stderr)).toMatch(pattern);
    expectUnchanged(await snapshot(dest));
  }

  /**
   * The destination is as it was: every file it had is there with the same bytes, and anything new is
   * a complete, verified blob (uploaded blobs may stay, for reuse by the next run), never a temp file.
   */
  function expectUnchanged(after: Record<string, string>): void {
    for (const [path, digest] of Object.entries(before)) expect(after[path], path).toBe(digest);
    for (const [path, digest] of Object.entries(after)) {
      if (path in before) continue;
      expect(path).toMatch(/^\/blobs\/sha256\/[a-f0-9]{64}$/);
      expect(path.endsWith(digest), `${path} holds other bytes`).toBe(true);
    }
  }

  async function variant(name: string, edit: (layout: string) => Promise<void>): Promise<string> {
    const layout = box.path(name);
    await cp(good, layout, { recursive: true });
    await edit(layout);
    return layout;
  }

  it('names the unknown transport and lists the known ones', async () => {
    await expectFailure('s4:bucket/app', /unknown transport "s4".*known: .*dir.*oci/);
  });

  it('explains a malformed reference', async () => {
    const r = await box.img('inspect', 'dir:');
    expect(r.code).not.toBe(0);
    expect(oneLineError(r.stderr)).toMatch(/invalid reference|path/);
  });

  it('says the image is missing', async () => {
    await expectFailure(`oci:${good}:nope`, /nope/);
  });

  it('refuses a corrupted blob with a digest mismatch', async () => {
    const layout = await variant('corrupt', async (l) => {
      const blobs = join(l, 'blobs/sha256');
      const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
      const layer = join(blobs, manifest.layers[1].digest.slice(7));
      const bytes = await readFile(layer);
      bytes[bytes.length - 10]! ^= 0xff;
      await writeFile(layer, bytes);
    });
    await expectFailure(`oci:${layout}:v1`, /digest mismatch/);
  });

  it('refuses a truncated manifest', async () => {
    const layout = await variant('truncated', async (l) => {
      const p = join(l, 'blobs/sha256', manifestPath.split('/').at(-1)!);
      const bytes = await readFile(p);
      await writeFile(p, bytes.subarray(0, bytes.length - 40));
    });
    await expectFailure(`oci:${layout}:v1`, /manifest|digest/);
  });

  it('refuses a manifest over 4 MiB', async () => {
    const layout = await variant('oversized', async (l) => {
      const big = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          pad: 'x'.repeat(5 << 20),
        }),
      );
      const digest = createHash('sha256').update(big).digest('hex');
      await writeFile(join(l, 'blobs/sha256', digest), big);
      const index = JSON.parse(await readFile(join(l, 'index.json'), 'utf8'));
      index.manifests[0].digest = `sha256:${digest}`;
      index.manifests[0].size = big.length;
      await writeFile(join(l, 'index.json'), JSON.stringify(index));
    });
    await expectFailure(`oci:${layout}:v1`, /larger than|limit|too large/);
  });

  it('refuses an unsupported manifest media type', async () => {
    const layout = await variant('mediatype', async (l) => {
      const odd = Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.example.thing+json', layers: [] }),
      );
      const digest = createHash('sha256').update(odd).digest('hex');
      await writeFile(join(l, 'blobs/sha256', digest), odd);
      const index = JSON.parse(await readFile(join(l, 'index.json'), 'utf8'));
      index.manifests[0] = {
        mediaType: 'application/vnd.example.thing+json',
        digest: `sha256:${digest}`,
        size: odd.length,
        annotations: index.manifests[0].annotations,
      };
      await writeFile(join(l, 'index.json'), JSON.stringify(index));
    });
    await expectFailure(`oci:${layout}:v1`, /unsupported.*media type|application\/vnd\.example\.thing/);
  });

  it('refuses a layout path that is a file', async () => {
    const file = box.path('a-file');
    await writeFile(file, 'not a layout');
    await expectFailure(`oci:${file}:v1`, /a-file/);
    const r = await box.img('--insecure-policy', 'copy', '--quiet', `oci:${good}:v1`, `oci:${file}:v1`);
    expect(r.code).not.toBe(0);
    oneLineError(r.stderr);
    expect(await readFile(file, 'utf8')).toBe('not a layout');
  });

  it('keeps the destination directory when the target of dir: is a foreign non-empty directory', async () => {
    const foreign = box.path('foreign');
    await mkdir(foreign);
    await writeFile(join(foreign, 'notes.txt'), 'mine');
    const r = await box.img('--insecure-policy', 'copy', '--quiet', `oci:${good}:v1`, `dir:${foreign}`);
    expect(r.code).not.toBe(0);
    oneLineError(r.stderr);
    expect(await readdir(foreign)).toEqual(['notes.txt']);
    expect((await stat(join(foreign, 'notes.txt'))).size).toBe(4);
  });

  it('refuses an image the policy rejects before touching the destination', async () => {
    const policy = box.path('reject.json');
    await writeFile(policy, JSON.stringify({ default: [{ type: 'reject' }] }));
    const target = box.path('never-created');
    const r = await box.img('--policy', policy, 'copy', '--quiet', `oci:${good}:v1`, `dir:${target}`);
    expect(r.code).not.toBe(0);
    expect(oneLineError(r.stderr)).toMatch(/reject/);
    await expect(stat(target)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
