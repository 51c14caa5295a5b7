import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeTransportConformance } from '../../testing/src/conformance.js';
import { newDirReference } from './index.js';

let root: string;
let n = 0;
describeTransportConformance(
  'dir',
  async () => {
    root = await mkdtemp(join(tmpdir(), 'img-dir-conf-'));
    return { newReference: () => newDirReference(join(root, String(n++))), cleanup: () => rm(root, { recursive: true, force: true }) };
  },
  { signatures: true, alreadyContainsManifest: true },
);
