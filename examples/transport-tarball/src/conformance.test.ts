import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as core from '@img/core';
import { makeTar } from '@img/testing';
import { describeSourceConformance } from '@img/testing/source-conformance';
import { createTarballTransport } from './transport.js';

// tarball: is read-only, so the shared suite for destinations (describeTransportConformance) does
// not apply; the source suite covers everything it supports, for both kinds of file it reads.
const tarball = createTarballTransport(core);

for (const kind of ['plain', 'gzip'] as const) {
  describeSourceConformance(`tarball (${kind})`, async () => {
    const root = await mkdtemp(join(tmpdir(), `img-tarball-conformance-${kind}-`));
    const tar = await makeTar({ 'etc/os-release': 'ID=test\n', 'bin/hello': Buffer.alloc(3000, 7) });
    const file = join(root, kind === 'gzip' ? 'rootfs.tar.gz' : 'rootfs.tar');
    await writeFile(file, kind === 'gzip' ? gzipSync(tar) : tar);
    return {
      existingReference: () => tarball.parseReference(file),
      missingReference: () => tarball.parseReference(join(root, 'missing.tar')),
      cleanup: () => rm(root, { recursive: true, force: true }),
    };
  });
}
