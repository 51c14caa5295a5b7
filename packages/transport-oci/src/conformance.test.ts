import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeTransportConformance } from '@img/testing/conformance';
import { newOciArchiveReference, newOciReference } from './index.js';

for (const [name, make, blobReuse] of [
  ['oci', (root: string, n: number) => newOciReference(join(root, `layout-${n}`), 'v1'), true],
  // An archive is rewritten whole at commit; a blob it already holds is reused by copying it across.
  [
    'oci-archive',
    (root: string, n: number) => newOciArchiveReference(join(root, `archive-${n}.tar`), 'v1'),
    true,
  ],
] as const) {
  describeTransportConformance(
    name,
    async () => {
      const root = await mkdtemp(join(tmpdir(), `img-${name}-conformance-`));
      let n = 0;
      return {
        newReference: () => make(root, n++),
        cleanup: () => rm(root, { recursive: true, force: true }),
      };
    },
    { signatures: false, alreadyContainsManifest: true, blobReuse, formats: ['oci'] },
  );
}
