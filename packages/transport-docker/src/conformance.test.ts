import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RegistryServer, startRegistry } from '@img/testing';
import { describeTransportConformance } from '@img/testing/conformance';
import { afterAll, beforeAll } from 'vitest';
import { dockerTransport } from './index.js';
import { setDefaultLookasideDir } from './lookaside.js';
import { useTestConfig } from './test-helpers.js';

let registry: RegistryServer;
let lookaside: string;
beforeAll(async () => {
  registry = await startRegistry();
  useTestConfig({ insecureHosts: [registry.host] });
  // Signatures go to a lookaside directory, as skopeo's do: a temp one here, not /var/lib/containers/sigstore.
  lookaside = await mkdtemp(join(tmpdir(), 'img-lookaside-'));
  setDefaultLookasideDir(lookaside);
});
afterAll(async () => {
  setDefaultLookasideDir(undefined);
  await registry?.stop();
  await rm(lookaside, { recursive: true, force: true });
});

let n = 0;
describeTransportConformance(
  'docker',
  async () => ({
    newReference: () => dockerTransport.parseReference(`//${registry.host}/conformance-${n++}:v1`),
  }),
  { signatures: true, alreadyContainsManifest: true, formats: ['oci', 'docker'] },
);
