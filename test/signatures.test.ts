import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, Sandbox } from './helpers/cli.js';
import { writeOciImage } from './helpers/images.js';

const ready = existsSync('/usr/bin/skopeo') && existsSync('/usr/bin/gpg');

describe.runIf(ready)('adding signatures to an image a dir: destination already has', () => {
  let box: Sandbox;
  let gnupg: NodeJS.ProcessEnv;
  let fingerprint: string;
  const identity = 'registry.example/app:v1';

  beforeAll(async () => {
    box = await Sandbox.create();
    gnupg = { ...process.env, GNUPGHOME: box.path('gnupg') };
    const { mkdir } = await import('node:fs/promises');
    await mkdir(box.path('gnupg'), { mode: 0o700 });
    const made = await run(
      'gpg',
      [
        '--batch',
        '--passphrase',
        '',
        '--quick-gen-key',
        'img test <img@example.invalid>',
        'default',
        'default',
        'never',
      ],
      { env: gnupg },
    );
    expect(made.code, made.stderr).toBe(0);
    const listed = await run('gpg', ['--batch', '--with-colons', '--list-secret-keys'], { env: gnupg });
    fingerprint = listed.stdout
      .split('\n')
      .find((l) => l.startsWith('fpr:'))!
      .split(':')[9]!;
  });
  afterAll(async () => {
    // gpg started an agent for this GNUPGHOME: stop exactly that one before its home goes away.
    await run('gpgconf', ['--kill', 'gpg-agent'], { env: gnupg });
    await box.cleanup();
  });

  it('writes only the signature file, moves no blob, and skopeo verifies the result', async () => {
    await writeOciImage(box.path('src'), 'v1', { seed: 61, layers: 3, layerSize: 100_000 });
    const dest = box.path('dest');
    const first = await box.img(
      '--insecure-policy',
      'copy',
      '--quiet',
      `oci:${box.path('src')}:v1`,
      `dir:${dest}`,
    );
    expect(first.code, first.stderr).toBe(0);

    // A signed source: the same image in a dir: with a signature made by skopeo standalone-sign.
    const signed = box.path('signed');
    expect((await box.img('--insecure-policy', 'copy', '--quiet', `dir:${dest}`, `dir:${signed}`)).code).toBe(
      0,
    );
    const sign = await run(
      'skopeo',
      [
        'standalone-sign',
        '-o',
        join(signed, 'signature-1'),
        join(signed, 'manifest.json'),
        identity,
        fingerprint,
      ],
      { env: gnupg },
    );
    expect(sign.code, sign.stderr).toBe(0);

    const before = new Map<string, { ino: number; mtimeMs: number }>();
    for (const name of await readdir(dest)) before.set(name, await stat(join(dest, name)));

    const again = await box.img(
      '--insecure-policy',
      'copy',
      '--progress=json',
      `dir:${signed}`,
      `dir:${dest}`,
    );
    expect(again.code, again.stderr).toBe(0);
    const events = again.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; bytesMoved?: number });
    expect(events.filter((e) => e.type.startsWith('blob-'))).toEqual([]);
    expect(events.find((e) => e.type === 'done')?.bytesMoved).toBe(0);
    expect(events.some((e) => e.type === 'signatures-written')).toBe(true);

    const after = await readdir(dest);
    expect(after.filter((n) => !before.has(n))).toEqual(['signature-1']);
    for (const [name, was] of before) {
      const now = await stat(join(dest, name));
      expect({ name, ino: now.ino, mtimeMs: now.mtimeMs }).toEqual({
        name,
        ino: was.ino,
        mtimeMs: was.mtimeMs,
      });
    }
    expect(
      (await readFile(join(dest, 'signature-1'))).equals(await readFile(join(signed, 'signature-1'))),
    ).toBe(true);

    const verify = await run(
      'skopeo',
      ['standalone-verify', join(dest, 'manifest.json'), identity, fingerprint, join(dest, 'signature-1')],
      { env: gnupg },
    );
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/Signature verified/);
  });
});
