import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DockerdServer, startDockerd } from '@img/testing';
import { describeTransportConformance } from '@img/testing/conformance';
import { afterAll, beforeAll } from 'vitest';
import { newDockerArchiveReference, newDockerDaemonReference } from './index.js';

let daemon: DockerdServer;
beforeAll(async () => {
  daemon = await startDockerd();
  process.env.DOCKER_HOST = daemon.host;
}, 90_000);
afterAll(async () => {
  delete process.env.DOCKER_HOST;
  await daemon?.stop();
}, 60_000);

describeTransportConformance(
  'docker-archive',
  async () => {
    const root = await mkdtemp(join(tmpdir(), 'img-docker-archive-conformance-'));
    let n = 0;
    return {
      newReference: () =>
        newDockerArchiveReference(join(root, `archive-${n++}.tar`), 'img-test/conformance:v1'),
      cleanup: () => rm(root, { recursive: true, force: true }),
    };
  },
  { signatures: false, alreadyContainsManifest: true, formats: ['docker'] },
);

// The daemon keeps configs and layer contents (uncompressed), not manifests; a tarball is loaded
// whole, so a destination reuses only what the daemon has as a complete image.
let image = 0;
describeTransportConformance(
  'docker-daemon',
  async () => ({ newReference: () => newDockerDaemonReference(`img-test/conformance-${image++}:v1`) }),
  {
    signatures: false,
    alreadyContainsManifest: true,
    blobReuse: false,
    formats: ['docker'],
    rebuildsManifest: true,
  },
);
