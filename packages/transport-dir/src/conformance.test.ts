import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeTransportConformance } from '@img/testing/conformance';
import { newDirReference } from './index.js';

describeTransportConformance(
  'dir',
  async () => {
    const root = await mkdtemp(join(tmpdir(), 'img-dir-conformance-'));
    let n = 0;
    return {
      newReference: () => newDirReference(join(root, `image-${n++}`)),
      cleanup: () => rm(root, { recursive: true, force: true }),
    };
  },
  { signatures: true, alreadyContainsManifest: true },
);
