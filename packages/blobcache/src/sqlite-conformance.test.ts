import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeBlobInfoCacheConformance } from '@img/testing/conformance';
import { SqliteBlobInfoCache } from './sqlite.js';

describeBlobInfoCacheConformance(
  'sqlite',
  ({ now }) => new SqliteBlobInfoCache(join(mkdtempSync(join(tmpdir(), 'img-bic-')), 'c.sqlite'), { now }),
);

describeBlobInfoCacheConformance(
  'sqlite (lazy)',
  ({ now }) =>
    new SqliteBlobInfoCache(join(mkdtempSync(join(tmpdir(), 'img-bic-')), 'c.sqlite'), { now, lazy: true }),
);
