import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidReferenceError, NotSupportedError, parseImageName } from '@img/core';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveStore } from './config.js';
import './index.js';
import { storageTransport } from './transport.js';

describe('containers-storage references', () => {
  it('parses the store spec, a normalised name and a default tag', () => {
    const ref = storageTransport.parseReference('[vfs@/g+/r:vfs.ignore_chown_errors=true]busybox');
    expect(ref.store).toEqual({
      driver: 'vfs',
      graphRoot: '/g',
      runRoot: '/r',
      options: ['vfs.ignore_chown_errors=true'],
    });
    expect(ref.named?.toString()).toBe('docker.io/library/busybox:latest');
    expect(ref.toString()).toBe(
      'containers-storage:[vfs@/g+/r:vfs.ignore_chown_errors=true]docker.io/library/busybox:latest',
    );
    expect(storageTransport.parseReference(ref.stringWithinTransport()).toString()).toBe(ref.toString());
  });

  it('keeps a digest with the name and peels off an image ID', () => {
    const id = 'a'.repeat(64);
    const digest = `sha256:${'b'.repeat(64)}`;
    const ref = storageTransport.parseReference(`localhost/app:v1@${digest}@${id}`);
    expect(ref.named?.toString()).toBe(`localhost/app:v1@${digest}`);
    expect(ref.id).toBe(id);
    expect(storageTransport.parseReference(id).named).toBeUndefined();
    const short = storageTransport.parseReference('abc123');
    expect([short.id, short.ambiguousId, short.named?.toString()]).toEqual([
      'abc123',
      true,
      'docker.io/library/abc123:latest',
    ]);
  });

  it('refuses malformed references with one line', () => {
    for (const bad of ['[]x', '[vfs@]x', '[rel/path]x', '[/g', 'x@', 'x@zz', 'Upper/Case', '']) {
      expect(() => storageTransport.parseReference(bad)).toThrow(InvalidReferenceError);
    }
  });

  it('is registered on import and gives containers/image policy scopes', () => {
    const ref = parseImageName('containers-storage:[overlay@/var/lib/x]quay.io/a/b:1');
    expect(ref.policyConfigurationIdentity()).toBe('[overlay@/var/lib/x]quay.io/a/b:1');
    expect(ref.policyConfigurationNamespaces()).toEqual([
      '[overlay@/var/lib/x]quay.io/a/b',
      '[overlay@/var/lib/x]quay.io/a',
      '[overlay@/var/lib/x]quay.io',
      '[overlay@/var/lib/x]',
      '[/var/lib/x]',
    ]);
    expect(() => storageTransport.validatePolicyConfigurationScope('quay.io/a')).toThrow();
    storageTransport.validatePolicyConfigurationScope('[overlay@/var/lib/x]quay.io/a');
  });
});

describe('storage.conf', () => {
  const saved = process.env.CONTAINERS_STORAGE_CONF;
  const dirs: string[] = [];
  afterEach(async () => {
    if (saved === undefined) delete process.env.CONTAINERS_STORAGE_CONF;
    else process.env.CONTAINERS_STORAGE_CONF = saved;
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });

  async function conf(text: string): Promise<void> {
    const dir = await mkdtemp('/tmp/isc-');
    dirs.push(dir);
    await writeFile(join(dir, 'storage.conf'), text);
    process.env.CONTAINERS_STORAGE_CONF = join(dir, 'storage.conf');
  }

  it('reads the store from CONTAINERS_STORAGE_CONF, the spec winning over it', async () => {
    await conf('[storage]\ndriver = "vfs"\ngraphroot = "/srv/g"\nrunroot = "/srv/r"\n');
    expect(await resolveStore({})).toMatchObject({ driver: 'vfs', graphRoot: '/srv/g', runRoot: '/srv/r' });
    expect(await resolveStore({ graphRoot: '/other' })).toMatchObject({
      graphRoot: '/other',
      runRoot: '/srv/r',
    });
  });

  it('marks stores img must not write, and the destination refuses them', async () => {
    await conf(
      '[storage]\ndriver = "overlay"\ngraphroot = "/srv/g"\n[storage.options.overlay]\nmount_program = "/usr/bin/fuse-overlayfs"\n',
    );
    expect((await resolveStore({})).unsupported).toMatch(/mount program/);
    await conf('[storage]\ndriver = "btrfs"\n');
    expect((await resolveStore({})).unsupported).toMatch(/btrfs/);
    await conf('[storage]\ndriver = "vfs"\n[storage.options]\nremap-uids = "0:100000:65536"\n');
    const ref = storageTransport.parseReference('[/tmp/never-written]x');
    await expect(ref.newImageDestination({})).rejects.toThrow(NotSupportedError);
    await conf('[storage]\ndriver = "overlay"\n[storage.options.overlay]\nforce_mask = "shared"\n');
    expect((await resolveStore({})).unsupported).toMatch(/force_mask/);
  });

  it('uses the root defaults when the file sets nothing', async () => {
    await conf('[storage]\n');
    expect(await resolveStore({ driver: 'vfs' })).toMatchObject({
      graphRoot: '/var/lib/containers/storage',
      runRoot: '/run/containers/storage',
    });
  });
});
