// Interoperability with skopeo (containers/image's own dir: implementation): each side reads what
// the other wrote. Skipped where skopeo is not installed; the signature part also needs gpg.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import {
  computeDigest,
  type Digest,
  digestHex,
  type ImageSource,
  MediaTypes,
  type Signature,
} from '@img/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newDirReference } from './index.js';

const run = promisify(execFile);
const available = (command: string) =>
  run(command, ['--version']).then(
    () => true,
    () => false,
  );
const hasSkopeo = await available('skopeo');
const hasGpg = await available('gpg');

interface TestImage {
  manifest: Buffer;
  digest: Digest;
  blobs: Array<{ digest: Digest; size: number; bytes: Buffer }>;
}

/** A small OCI image: gzip layers made here and a config whose diff_ids match them. */
function testImage(seed: string): TestImage {
  const raw = [0, 1].map((i) => Buffer.from(`${seed} layer ${i}\n`.repeat(50)));
  const blob = (bytes: Buffer) => ({ digest: computeDigest(bytes), size: bytes.length, bytes });
  const layers = raw.map((r) => blob(gzipSync(r)));
  const config = blob(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: raw.map((r) => computeDigest(r)) },
      }),
    ),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: MediaTypes.ociLayerGzip, digest: l.digest, size: l.size })),
    }),
  );
  return { manifest, digest: computeDigest(manifest), blobs: [config, ...layers] };
}

async function writeImage(dir: string, image: TestImage, signatures: Signature[] = []): Promise<void> {
  const dest = await newDirReference(dir).newImageDestination({});
  try {
    for (const b of image.blobs)
      await dest.putBlob(Readable.from([b.bytes]), { digest: b.digest, size: b.size });
    await dest.putManifest(image.manifest);
    await dest.putSignatures(signatures);
    await dest.commit();
  } finally {
    await dest.close();
  }
}

/** Checks, through img's source, that `dir` holds `image` byte for byte; returns its signatures. */
async function readBack(dir: string, image: TestImage): Promise<Signature[]> {
  const source: ImageSource = await newDirReference(dir).newImageSource({});
  try {
    expect(computeDigest((await source.getManifest()).bytes)).toBe(image.digest);
    for (const b of image.blobs) {
      const { stream } = await source.getBlob({ digest: b.digest, size: b.size });
      expect(Buffer.concat(await stream.toArray()).equals(b.bytes)).toBe(true);
    }
    return await source.getSignatures();
  } finally {
    await source.close();
  }
}

const skopeoCopy = (from: string, to: string) =>
  run('skopeo', ['--insecure-policy', 'copy', '-q', `dir:${from}`, `dir:${to}`]);

const sigstoreSignature: Signature = {
  format: 'sigstore',
  bytes: new TextEncoder().encode('{"critical":{"identity":{"docker-reference":"example.com/app"}}}'),
  mimeType: 'application/vnd.dev.cosign.simplesigning.v1+json',
  annotations: {
    'dev.cosignproject.cosign/signature': 'MEUCIQDx',
    'dev.sigstore.cosign/bundle': '{"a":"<&>"}',
  },
};

describe.skipIf(!hasSkopeo)('interoperability with skopeo', () => {
  let tmp: string;
  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'img-dir-skopeo-'));
  });
  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('skopeo copies a dir img wrote, and img reads the copy with the same manifest digest, blobs and signatures', async () => {
    const image = testImage('interop');
    const simple: Signature = { format: 'simple-signing', bytes: Uint8Array.from([0xa3, 0x01, 0x02, 0x03]) };
    const [a, b] = [join(tmp, 'a'), join(tmp, 'b')];
    await writeImage(a, image, [simple, sigstoreSignature]);
    await skopeoCopy(a, b);
    expect(await readBack(b, image)).toEqual([simple, sigstoreSignature]);
    expect((await readdir(b)).sort()).toEqual((await readdir(a)).sort());
    // skopeo re-encodes the sigstore signature with Go's encoding/json: the bytes are the same.
    expect((await readFile(join(b, 'signature-2'))).equals(await readFile(join(a, 'signature-2')))).toBe(
      true,
    );
  }, 60_000);

  it("skopeo overwrites a dir img wrote: it accepts img's version file", async () => {
    const [a, b] = [join(tmp, 'a'), join(tmp, 'b')];
    await writeImage(b, testImage('first'));
    const image = testImage('second');
    await writeImage(a, image);
    await skopeoCopy(a, b);
    expect(await readBack(b, image)).toEqual([]);
  }, 60_000);

  it('img overwrites a dir skopeo wrote, removing the blobs of the old image', async () => {
    const [a, b] = [join(tmp, 'a'), join(tmp, 'b')];
    await writeImage(a, testImage('from-skopeo'));
    await skopeoCopy(a, b);
    const image = testImage('from-img');
    await writeImage(b, image);
    expect(await readBack(b, image)).toEqual([]);
    expect((await readdir(b)).sort()).toEqual(
      ['manifest.json', 'version', ...image.blobs.map((blob) => digestHex(blob.digest))].sort(),
    );
  }, 60_000);

  describe.skipIf(!hasGpg)('with a signature from skopeo standalone-sign', () => {
    let gnupgHome: string;
    let fingerprint: string;
    const env = () => ({ ...process.env, GNUPGHOME: gnupgHome });

    beforeEach(async () => {
      gnupgHome = await mkdtemp(join(tmpdir(), 'img-gpg-'));
      await run(
        'gpg',
        [
          '--batch',
          '--passphrase',
          '',
          '--quick-gen-key',
          'img test <img@test.invalid>',
          'default',
          'default',
          'never',
        ],
        {
          env: env(),
        },
      );
      const { stdout } = await run('gpg', ['--batch', '--list-keys', '--with-colons'], { env: env() });
      fingerprint = /^fpr:+([0-9A-F]+):/m.exec(stdout)![1]!;
    }, 60_000);

    afterEach(async () => {
      // Stops the agent gpg started for this GNUPGHOME, through gpg's own control tool.
      await run('gpgconf', ['--kill', 'gpg-agent'], { env: env() }).catch(() => undefined);
      await rm(gnupgHome, { recursive: true, force: true });
    });

    it('img reads a dir skopeo wrote, with a signature skopeo standalone-verify accepts', async () => {
      const image = testImage('signed');
      const [a, c] = [join(tmp, 'a'), join(tmp, 'c')];
      await writeImage(a, image);
      const identity = 'example.com/img/signed:latest';
      const signatureFile = join(tmp, 'signature');
      await run(
        'skopeo',
        ['standalone-sign', '-o', signatureFile, join(a, 'manifest.json'), identity, fingerprint],
        {
          env: env(),
        },
      );
      const signed = new Uint8Array(await readFile(signatureFile));

      // Added to the present image out of order: only the signature file is written.
      const dest = await newDirReference(a).newImageDestination({});
      expect(await dest.alreadyContainsManifest!(image.digest, image.manifest)).toEqual({
        present: true,
        signatures: [],
      });
      await dest.putSignatures([{ format: 'simple-signing', bytes: signed }]);
      await dest.commit();
      await dest.close();

      await skopeoCopy(a, c);
      const signatures = await readBack(c, image);
      expect(signatures).toEqual([{ format: 'simple-signing', bytes: signed }]);

      const readSignature = join(tmp, 'read-signature');
      await writeFile(readSignature, signatures[0]!.bytes);
      const { stdout } = await run(
        'skopeo',
        ['standalone-verify', join(c, 'manifest.json'), identity, fingerprint, readSignature],
        { env: env() },
      );
      expect(stdout).toContain(image.digest);
    }, 60_000);
  });
});
