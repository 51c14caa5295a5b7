import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryBlobInfoCache } from './memory.js';
import { blobCacheFileName, defaultBlobCachePath, openBlobInfoCache } from './open.js';
import { SqliteBlobInfoCache } from './sqlite.js';

describe('defaultBlobCachePath', () => {
  it('uses /var/lib/containers/cache for root, as skopeo', () => {
    expect(defaultBlobCachePath({ env: { XDG_DATA_HOME: '/x' }, uid: 0, homeDir: '/root' })).toBe(
      `/var/lib/containers/cache/${blobCacheFileName}`,
    );
  });

  it('uses $XDG_DATA_HOME/containers/cache for other users', () => {
    expect(defaultBlobCachePath({ env: { XDG_DATA_HOME: '/data' }, uid: 1000, homeDir: '/home/u' })).toBe(
      `/data/containers/cache/${blobCacheFileName}`,
    );
  });

  it('falls back to ~/.local/share/containers/cache, ignoring a relative XDG_DATA_HOME', () => {
    expect(defaultBlobCachePath({ env: {}, uid: 1000, homeDir: '/home/u' })).toBe(
      `/home/u/.local/share/containers/cache/${blobCacheFileName}`,
    );
    expect(defaultBlobCachePath({ env: { XDG_DATA_HOME: 'rel' }, uid: 1000, homeDir: '/home/u' })).toBe(
      `/home/u/.local/share/containers/cache/${blobCacheFileName}`,
    );
  });

  it('is overridden by IMG_BLOB_CACHE_DIR, for root too', () => {
    expect(defaultBlobCachePath({ env: { IMG_BLOB_CACHE_DIR: '/c' }, uid: 0, homeDir: '/root' })).toBe(
      `/c/${blobCacheFileName}`,
    );
  });

  it('never names skopeo’s own cache file', () => {
    expect(blobCacheFileName).not.toMatch(/^blob-info-cache-v1\./);
  });
});

describe('openBlobInfoCache', () => {
  it('creates the directory and the SQLite file there', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'img-bic-')), 'a', 'b');
    const cache = await openBlobInfoCache({ dir });
    expect(cache).toBeInstanceOf(SqliteBlobInfoCache);
    expect((cache as SqliteBlobInfoCache).path).toBe(join(dir, blobCacheFileName));
    cache.close();
  });

  it('works in memory with one warning when the directory cannot be made', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'img-bic-')), 'file');
    writeFileSync(file, '');
    const warnings: string[] = [];
    const cache = await openBlobInfoCache({ dir: join(file, 'sub'), onWarning: (m) => warnings.push(m) });
    expect(cache).toBeInstanceOf(MemoryBlobInfoCache);
    expect(warnings).toHaveLength(1);
    cache.close();
  });
});
