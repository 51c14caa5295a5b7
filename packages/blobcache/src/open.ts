import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { BlobInfoCache } from '@img/core';
import { MemoryBlobInfoCache } from './memory.js';
import { SqliteBlobInfoCache } from './sqlite.js';

/**
 * The file name of img's cache, beside skopeo's `blob-info-cache-v1.sqlite` (or `.boltdb`) in the
 * same directory: the two never open each other's file.
 */
export const blobCacheFileName = 'img-blob-info-cache-v1.sqlite';

/** The environment variable that overrides the cache directory (as `--blob-cache-dir` does). */
export const blobCacheDirEnv = 'IMG_BLOB_CACHE_DIR';

/** What decides the default cache location; each defaults to this process's own. */
export interface BlobCachePathOptions {
  env?: Readonly<Record<string, string | undefined>>;
  /** The effective user id; 0 means root. */
  uid?: number;
  homeDir?: string;
}

/**
 * The directory of the cache, as containers/image chooses it: `$IMG_BLOB_CACHE_DIR` when set; for
 * root `/var/lib/containers/cache`; for others `$XDG_DATA_HOME/containers/cache` (an absolute
 * XDG_DATA_HOME only, as the XDG spec says), else `$HOME/.local/share/containers/cache`.
 */
export function defaultBlobCacheDir(options: BlobCachePathOptions = {}): string {
  const env = options.env ?? process.env;
  const override = env[blobCacheDirEnv];
  if (override) return override;
  const uid = options.uid ?? process.geteuid?.() ?? -1;
  if (uid === 0) return '/var/lib/containers/cache';
  const xdg = env.XDG_DATA_HOME;
  const dataHome = xdg && isAbsolute(xdg) ? xdg : join(options.homeDir ?? homedir(), '.local', 'share');
  return join(dataHome, 'containers', 'cache');
}

/** The default path of the cache file: {@link blobCacheFileName} in {@link defaultBlobCacheDir}. */
export function defaultBlobCachePath(options: BlobCachePathOptions = {}): string {
  return join(defaultBlobCacheDir(options), blobCacheFileName);
}

/** Options of {@link openBlobInfoCache}. */
export interface OpenBlobInfoCacheOptions extends BlobCachePathOptions {
  /** The directory of the cache file (the CLI's `--blob-cache-dir`); default {@link defaultBlobCacheDir}. */
  dir?: string | undefined;
  /** Called at most once when the cache cannot use its file as it is (see SqliteBlobInfoCache). */
  onWarning?: ((message: string) => void) | undefined;
  /** How long a statement waits for another process's write lock; default 5000 ms. */
  busyTimeoutMs?: number | undefined;
  /**
   * Open the SQLite file on the cache's first use rather than now (see SqliteBlobInfoCacheOptions):
   * a copy that finds the image already at its destination then never loads SQLite. The directory
   * is still created now. Default false.
   */
  lazy?: boolean | undefined;
}

/**
 * Opens the persistent cache: the SQLite file in `dir` (created, mode 0700, when missing). When the
 * directory cannot be created, the cache lives in memory for this process, with one warning. Close
 * it when the copies are done.
 *
 * @example
 * const cache = await openBlobInfoCache({ onWarning: (m) => console.warn(`Warning: ${m}`) });
 * try {
 *   await copyImage(dest, src, { policy, cache });
 * } finally {
 *   cache.close();
 * }
 */
export async function openBlobInfoCache(options: OpenBlobInfoCacheOptions = {}): Promise<BlobInfoCache> {
  const dir = options.dir ?? defaultBlobCacheDir(options);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    try {
      options.onWarning?.(
        `cannot create the blob-info cache directory "${dir}" (${(error as Error).message}); using a cache in memory`,
      );
    } catch {
      // A throwing listener does not stop the copy.
    }
    return new MemoryBlobInfoCache();
  }
  return new SqliteBlobInfoCache(join(dir, blobCacheFileName), {
    onWarning: options.onWarning,
    busyTimeoutMs: options.busyTimeoutMs,
    lazy: options.lazy,
  });
}
