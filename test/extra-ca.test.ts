// NODE_EXTRA_CA_CERTS through the launcher users start (apps/cli/bin/img), which keeps it from
// Node's start-up: a registry whose CA only that file names is trusted all the same, on the fast
// path (copy) and through oclif (inspect), and the programs img runs see the variable as it was
// (and none of the launcher's own settings).
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_REGISTRY_USER, type RegistryServer, startRegistry } from '@img/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, run, Sandbox, skopeo } from './helpers/cli.js';
import { writeOciImage } from './helpers/images.js';

const launcher = join(repoRoot, 'apps/cli/bin/img');

describe('NODE_EXTRA_CA_CERTS through bin/img', () => {
  let box: Sandbox;
  let registry: RegistryServer;
  let digest: string;

  beforeAll(async () => {
    box = await Sandbox.create();
    registry = await startRegistry({ auth: 'htpasswd', tls: true });
    const src = box.path('src');
    digest = await writeOciImage(src, 'v1', { seed: 91, layers: 2, layerSize: 30_000 }).then(
      (i) => i.manifestDigest,
    );
    const { username, password } = DEFAULT_REGISTRY_USER;
    const pushed = await skopeo(
      'copy',
      '--dest-cert-dir',
      registry.certDir as string,
      '--dest-creds',
      `${username}:${password}`,
      `oci:${src}:v1`,
      `docker://${registry.host}/app:v1`,
    );
    expect(pushed.stderr).toBe('');
    // A credential helper that answers with the registry's user and records what it was started with.
    const bin = box.path('bin');
    await mkdir(bin, { recursive: true });
    const helper = join(bin, 'docker-credential-envprobe');
    await writeFile(
      helper,
      `#!/bin/sh\nprintf '%s|%s|%s\\n' "\${NODE_EXTRA_CA_CERTS-unset}" "\${IMG_DEFERRED_NODE_EXTRA_CA_CERTS-unset}" "\${GLIBC_TUNABLES-unset}" >> ${box.path('helper.log')}\n` +
        `cat >/dev/null\nprintf '{"ServerURL":"%s","Username":"${username}","Secret":"${password}"}' "${registry.host}"\n`,
    );
    await chmod(helper, 0o755);
    await mkdir(box.path('home/.docker'), { recursive: true });
    await writeFile(box.path('home/.docker/config.json'), JSON.stringify({ credsStore: 'envprobe' }));
  });

  afterAll(async () => {
    await registry?.stop();
    await box?.cleanup();
  });

  const img = (env: NodeJS.ProcessEnv, ...args: string[]) =>
    run(launcher, args, {
      env: {
        ...box.env(),
        ...env,
        PATH: `${box.path('bin')}:${process.env.PATH}`,
        // Without its own auth.json, img reads $HOME/.docker/config.json.
        REGISTRY_AUTH_FILE: box.path('none.json'),
      },
    });

  it('trusts the CA the file names, from the first connection, and passes the variable on', async () => {
    const ca = registry.caFile as string;
    const copied = await img(
      { NODE_EXTRA_CA_CERTS: ca },
      '--insecure-policy',
      'copy',
      '--quiet',
      `docker://${registry.host}/app:v1`,
      `oci:${box.path('out')}:v1`,
    );
    expect(copied.stderr).toBe('');
    expect(copied.code).toBe(0);
    const index = JSON.parse(await readFile(box.path('out/index.json'), 'utf8'));
    expect(index.manifests[0].digest).toBe(digest);

    const inspected = await img(
      { NODE_EXTRA_CA_CERTS: ca },
      'inspect',
      '--format',
      '{{.Digest}}',
      `docker://${registry.host}/app:v1`,
    );
    expect(inspected.stderr).toBe('');
    expect(inspected.stdout.trim()).toBe(digest);

    const seen = (await readFile(box.path('helper.log'), 'utf8')).trim().split('\n');
    expect(seen.length).toBeGreaterThanOrEqual(2);
    // As the user set it; and neither the launcher's hand-over nor its malloc settings.
    expect(new Set(seen)).toEqual(new Set([`${ca}|unset|unset`]));
  });

  it('without it, the registry is not trusted: one line, exit 1', async () => {
    const r = await img({}, 'inspect', `docker://${registry.host}/app:v1`);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/certificate/i);
  });
});
