import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeTransportConformance } from '../../testing/src/conformance.js';
import { newOciArchiveReference, newOciReference } from './index.js';

let n = 0;
describeTransportConformance(
  'oci',
  async () => {
    const base = await mkdtemp(join(tmpdir(), 'img-oci-conf-'));
    return {
      newReference: () => newOciReference(join(base, `l${n++}`), 'tag'),
      cleanup: () => rm(base, { recursive: true, force: true }),
    };
  },
  { signatures: false, alreadyContainsManifest: true, formats: ['oci'] },
);
describeTransportConformance(
  'oci-shared',
  async () => {
    const base = await mkdtemp(join(tmpdir(), 'img-oci-conf-'));
    return {
      newReference: () => newOciReference(base, `t${n++}`),
      cleanup: () => rm(base, { recursive: true, force: true }),
    };
  },
  { signatures: false, alreadyContainsManifest: true, formats: ['oci'] },
);
describeTransportConformance(
  'oci-archive',
  async () => {
    const base = await mkdtemp(join(tmpdir(), 'img-oci-conf-'));
    return {
      newReference: () => newOciArchiveReference(join(base, `a${n++}.tar`), 'tag'),
      cleanup: () => rm(base, { recursive: true, force: true }),
    };
  },
  { signatures: false, alreadyContainsManifest: true, formats: ['oci'] },
);
describeTransportConformance(
  'oci-docker',
  async () => {
    const base = await mkdtemp(join(tmpdir(), 'img-oci-conf-'));
    return {
      newReference: () => newOciReference(join(base, `l${n++}`), 'tag'),
      cleanup: () => rm(base, { recursive: true, force: true }),
    };
  },
  { signatures: false, alreadyContainsManifest: true, formats: ['docker'] },
);
