export type { MemoryBlobInfoCacheOptions } from './memory.js';
export { MemoryBlobInfoCache } from './memory.js';
export type { BlobCachePathOptions, OpenBlobInfoCacheOptions } from './open.js';
export {
  blobCacheDirEnv,
  blobCacheFileName,
  defaultBlobCacheDir,
  defaultBlobCachePath,
  openBlobInfoCache,
} from './open.js';
export type { SqliteBlobInfoCacheOptions } from './sqlite.js';
export { SqliteBlobInfoCache, sqliteSchemaVersion } from './sqlite.js';
