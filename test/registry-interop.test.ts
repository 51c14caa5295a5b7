import { existsSync } from 'node:fs';
import {
  BLOB_UPLOAD,
  type FaultProxy,
  type RegistryServer,
  startFaultProxy,
  startRegistry,
} from '@img/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sandbox, skopeo } from './helpers/cli.js';
import { writeOciImage } from './helpers/images.js';

const hasSkopeo = existsSync('/usr/bin/skopeo');

async function skopeoInspect(image: string): Promise<{ Digest: string; Layers: string[] }> {
  const r = await skopeo('inspect', '--tls-verify=false', image);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe.runIf(hasSkopeo)('img and skopeo share a registry', () => {
  let box: Sandbox;
  let registry: RegistryServer;
  let proxy: FaultProxy;
  let src: string;
  beforeAll(async () => {
    box = await Sandbox.create();
    registry = await startRegistry();
    proxy = await startFaultProxy({ target: registry.url });
    src = box.path('src');
    await writeOciImage(src, 'v1', { seed: 41, layers: 3, layerSize: 60_000 });
  });
  afterAll(async () => {
    await proxy?.close();
    await registry?.stop();
    await box?.cleanup();
  });

  it('img pushes, skopeo reads it, img pulls it back unchanged', async () => {
    const pushed = await box.img(
      '--insecure-policy',
      'copy',
      '--quiet',
      '--dest-tls-verify=false',
      `oci:${src}:v1`,
      `docker://${registry.host}/app:v1`,
    );
    expect(pushed.code, pushed.stderr).toBe(0);
    const bySkopeo = await skopeoInspect(`docker://${registry.host}/app:v1`);
    const original = await skopeoInspect(`oci:${src}:v1`);
    expect(bySkopeo.Digest).toBe(original.Digest);
    expect(bySkopeo.Layers).toEqual(original.Layers);

    const pulled = await box.img(
      '--insecure-policy',
      'copy',
      '--quiet',
      '--src-tls-verify=false',
      `docker://${registry.host}/app:v1`,
      `oci:${box.path('back')}:v1`,
    );
    expect(pulled.code, pulled.stderr).toBe(0);
    expect((await skopeoInspect(`oci:${box.path('back')}:v1`)).Digest).toBe(original.Digest);
  });

  it('img reads what skopeo pushed', async () => {
    const pushed = await skopeo(
      'copy',
      '--dest-tls-verify=false',
      '--format',
      'v2s2',
      `oci:${src}:v1`,
      `docker://${registry.host}/by-skopeo:v2`,
    );
    expect(pushed.code, pushed.stderr).toBe(0);
    const digest = (await skopeoInspect(`docker://${registry.host}/by-skopeo:v2`)).Digest;
    const inspected = await box.img(
      'inspect',
      '--tls-verify=false',
      '--format',
      '{{.Digest}}',
      `docker://${registry.host}/by-skopeo:v2`,
    );
    expect(inspected.code, inspected.stderr).toBe(0);
    expect(inspected.stdout.trim()).toBe(digest);
    const pulled = await box.img(
      '--insecure-policy',
      'copy',
      '--quiet',
      '--src-tls-verify=false',
      `docker://${registry.host}/by-skopeo:v2`,
      `dir:${box.path('by-skopeo-dir')}`,
    );
    expect(pulled.code, pulled.stderr).toBe(0);
    expect((await skopeoInspect(`dir:${box.path('by-skopeo-dir')}`)).Digest).toBe(digest);
  });

  it('copies a present image again with one manifest HEAD and no blob request', async () => {
    const dest = `docker://${proxy.host}/again:v1`;
    const args = ['--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false', `oci:${src}:v1`, dest];
    expect((await box.img(...args)).code).toBe(0);
    await proxy.settled();
    proxy.reset();
    const second = await box.img(...args);
    expect(second.code, second.stderr).toBe(0);
    await proxy.settled();
    expect(proxy.count({ method: 'HEAD' })).toBe(1);
    expect(proxy.count({ path: '/blobs/' })).toBe(0);
    expect(proxy.count(BLOB_UPLOAD)).toBe(0);
  });

  it('lists tags as skopeo prints them, and deletes by digest', async () => {
    for (const tag of ['v2', 'v3']) {
      const r = await box.img(
        '--insecure-policy',
        'copy',
        '--quiet',
        '--dest-tls-verify=false',
        `oci:${src}:v1`,
        `docker://${registry.host}/listed:${tag}`,
      );
      expect(r.code, r.stderr).toBe(0);
    }
    const listed = await box.img('list-tags', '--tls-verify=false', `docker://${registry.host}/listed`);
    expect(listed.code, listed.stderr).toBe(0);
    const ours = JSON.parse(listed.stdout);
    const theirs = await skopeo('list-tags', '--tls-verify=false', `docker://${registry.host}/listed`);
    expect({ ...ours, Tags: ours.Tags.sort() }).toEqual({
      ...JSON.parse(theirs.stdout),
      Tags: JSON.parse(theirs.stdout).Tags.sort(),
    });
    expect(ours).toMatchObject({ Repository: `${registry.host}/listed` });
    const withTag = await box.img('list-tags', '--tls-verify=false', `docker://${registry.host}/listed:v2`);
    expect(withTag.code).toBe(1);

    // inspect reports the repository's tags as skopeo does, and none with --no-tags.
    const inspectTags = async (...flags: string[]) => {
      const r = await box.img(
        'inspect',
        '--tls-verify=false',
        ...flags,
        `docker://${registry.host}/listed:v2`,
      );
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { RepoTags: string[] }).RepoTags;
    };
    const skopeoTags = await skopeo('inspect', '--tls-verify=false', `docker://${registry.host}/listed:v2`);
    expect((await inspectTags()).sort()).toEqual(JSON.parse(skopeoTags.stdout).RepoTags.sort());
    expect((await inspectTags()).sort()).toEqual(['v2', 'v3']);
    expect(await inspectTags('--no-tags')).toEqual([]);

    const deleted = await box.img('delete', '--tls-verify=false', `docker://${registry.host}/listed:v2`);
    expect(deleted.code, deleted.stderr).toBe(0);
    // The manifest is gone, and with it every tag that pointed at it (skopeo's behaviour).
    const gone = await skopeo('inspect', '--tls-verify=false', `docker://${registry.host}/listed:v3`);
    expect(gone.code).not.toBe(0);
  });

  it('says clearly when the registry does not allow deletes, and keeps the image', async () => {
    const locked = await startRegistry({ deleteEnabled: false });
    try {
      const pushed = await box.img(
        '--insecure-policy',
        'copy',
        '--quiet',
        '--dest-tls-verify=false',
        `oci:${src}:v1`,
        `docker://${locked.host}/kept:v1`,
      );
      expect(pushed.code, pushed.stderr).toBe(0);
      const r = await box.img('delete', '--tls-verify=false', `docker://${locked.host}/kept:v1`);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `Error: docker://${locked.host}/kept:v1: the registry ${locked.host} does not allow deleting images (HTTP 405)\n`,
      );
      expect((await box.img('inspect', '--tls-verify=false', `docker://${locked.host}/kept:v1`)).code).toBe(
        0,
      );
    } finally {
      await locked.stop();
    }
  });
});
