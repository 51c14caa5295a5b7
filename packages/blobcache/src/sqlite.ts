import { renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import type {
  BlobCandidate,
  BlobCandidateOptions,
  BlobInfoCache,
  BlobLocation,
  BlobReuseCandidate,
  CompressionName,
  Digest,
} from '@img/core';
import type Database from 'better-sqlite3';
import { type CandidateStore, gatherCandidates, type LocationRow } from './candidates.js';
import { MemoryBlobInfoCache } from './memory.js';

let databaseClass: typeof Database | undefined;

/**
 * better-sqlite3, loaded when the first cache opens its file rather than when this module is
 * imported: loading its native addon costs more than a command that never opens a cache takes.
 * It is resolved from this package (found by its own name), not from this file, so that a bundle
 * that inlines this module elsewhere (img's fast path) still finds it.
 */
function loadDatabase(): typeof Database {
  if (!databaseClass) {
    const packageJson = createRequire(import.meta.url).resolve('@img/blobcache/package.json');
    databaseClass = createRequire(packageJson)('better-sqlite3') as typeof Database;
  }
  return databaseClass;
}

/** The schema this code reads and writes, kept in the file's `user_version`. */
export const sqliteSchemaVersion = 1;

/** Options of {@link SqliteBlobInfoCache}. */
export interface SqliteBlobInfoCacheOptions {
  /**
   * Called (at most once per cache) when the file cannot be used as it is: it was moved aside and
   * rebuilt, or the cache fell back to memory. The cache never throws for this.
   */
  onWarning?: ((message: string) => void) | undefined;
  /** How long a statement waits for another process's write lock; default 5000 ms. */
  busyTimeoutMs?: number | undefined;
  /** The clock for `lastSeen`, in epoch milliseconds; injectable for tests. */
  now?: (() => number) | undefined;
  /**
   * Open the file on the first call that needs it instead of in the constructor, so that a process
   * that never asks the cache (a copy of an image the destination already holds) neither loads
   * SQLite nor touches the file. Recovery and warnings are the same, only later. Default false.
   */
  lazy?: boolean | undefined;
}

// Digests are stored as their text form; a location row is keyed by everything but its time, and
// looked up either within one scope (the primary key) or across scopes (the second index).
const schema = `
CREATE TABLE IF NOT EXISTS uncompressed_pairs (
  digest TEXT PRIMARY KEY NOT NULL,
  uncompressed TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uncompressed_pairs_by_uncompressed ON uncompressed_pairs (uncompressed);
CREATE TABLE IF NOT EXISTS digest_compressions (
  digest TEXT PRIMARY KEY NOT NULL,
  compression TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS known_locations (
  transport TEXT NOT NULL,
  scope TEXT NOT NULL,
  digest TEXT NOT NULL,
  location TEXT NOT NULL,
  last_seen INTEGER NOT NULL,
  PRIMARY KEY (transport, scope, digest, location)
);
CREATE INDEX IF NOT EXISTS known_locations_by_digest ON known_locations (transport, digest);
`;

class NewerSchemaError extends Error {}

function prepare(db: Database.Database) {
  return {
    uncompressedOf: db.prepare<[string], { uncompressed: string }>(
      'SELECT uncompressed FROM uncompressed_pairs WHERE digest = ?',
    ),
    isUncompressedSide: db.prepare<[string], { one: number }>(
      'SELECT 1 AS one FROM uncompressed_pairs WHERE uncompressed = ? LIMIT 1',
    ),
    digestsWithUncompressed: db.prepare<[string], { digest: string }>(
      'SELECT digest FROM uncompressed_pairs WHERE uncompressed = ?',
    ),
    putPair: db.prepare<[string, string]>(
      'INSERT INTO uncompressed_pairs (digest, uncompressed) VALUES (?, ?) ' +
        'ON CONFLICT (digest) DO UPDATE SET uncompressed = excluded.uncompressed',
    ),
    compressionOf: db.prepare<[string], { compression: string }>(
      'SELECT compression FROM digest_compressions WHERE digest = ?',
    ),
    putCompression: db.prepare<[string, string]>(
      'INSERT INTO digest_compressions (digest, compression) VALUES (?, ?) ' +
        'ON CONFLICT (digest) DO UPDATE SET compression = excluded.compression',
    ),
    forgetCompression: db.prepare<[string]>('DELETE FROM digest_compressions WHERE digest = ?'),
    putLocation: db.prepare<[string, string, string, string, number]>(
      'INSERT INTO known_locations (transport, scope, digest, location, last_seen) VALUES (?, ?, ?, ?, ?) ' +
        'ON CONFLICT (transport, scope, digest, location) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)',
    ),
    locationsInScope: db.prepare<[string, string, string], LocationRow>(
      'SELECT scope, location, last_seen AS lastSeen FROM known_locations WHERE transport = ? AND scope = ? AND digest = ?',
    ),
    locationsAnywhere: db.prepare<[string, string], LocationRow>(
      'SELECT scope, location, last_seen AS lastSeen FROM known_locations WHERE transport = ? AND digest = ?',
    ),
  };
}

type Statements = ReturnType<typeof prepare>;

const compressionNames: readonly string[] = ['gzip', 'zstd', 'none', 'unknown'];

/**
 * A BlobInfoCache in an SQLite file (better-sqlite3), shared by every img process of the user:
 * WAL journal and a busy timeout so that several processes read and write at once, each record one
 * small autocommitted statement, the schema versioned with `user_version`.
 *
 * A file that is corrupt or unreadable is renamed aside (`<file>.corrupt-<time>`) and rebuilt, at
 * open (in the constructor, or on first use with `lazy`) or on the first statement that finds it so;
 * when even that fails, or the file was written by a newer img, the cache goes on in memory. Each of these gives one warning through `onWarning`;
 * no method ever throws because of the file.
 *
 * better-sqlite3 is synchronous: every statement here is a single-row lookup or write on an index.
 */
export class SqliteBlobInfoCache implements BlobInfoCache {
  private db: Database.Database | undefined;
  private statements: Statements | undefined;
  private readCandidates:
    | ((
        transport: string,
        scope: string | undefined,
        digest: Digest,
        options: BlobCandidateOptions,
      ) => BlobCandidate[])
    | undefined;
  /** The file opened (device and inode), so that a file another process already rebuilt is not moved aside. */
  private identity: { dev: number; ino: number } | undefined;
  private fallback: MemoryBlobInfoCache | undefined;
  private rebuilt = false;
  private warned = false;
  private closed = false;
  /** A lazy cache that has not opened its file yet. */
  private unopened: boolean;
  private readonly now: () => number;
  private readonly busyTimeoutMs: number;
  private readonly onWarning: (message: string) => void;

  constructor(
    readonly path: string,
    options: SqliteBlobInfoCacheOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    this.onWarning = options.onWarning ?? (() => {});
    this.unopened = options.lazy === true;
    if (!this.unopened) this.openOrRecover();
  }

  /**
   * Whether the cache is still backed by its file (false once it fell back to memory or was closed).
   * A lazy cache opens its file to answer.
   */
  get persistent(): boolean {
    this.openIfUnopened();
    return this.db !== undefined;
  }

  uncompressedDigest(digest: Digest): Digest | undefined {
    return this.run(
      (s) => uncompressedFrom(s, digest),
      (m) => m.uncompressedDigest(digest),
      undefined,
    );
  }

  recordDigestUncompressedPair(compressed: Digest, uncompressed: Digest): void {
    this.run(
      (s) => void s.putPair.run(compressed, uncompressed),
      (m) => m.recordDigestUncompressedPair(compressed, uncompressed),
      undefined,
    );
  }

  recordDigestCompression(digest: Digest, compression: CompressionName): void {
    this.run(
      (s) =>
        void (compression === 'unknown'
          ? s.forgetCompression.run(digest)
          : s.putCompression.run(digest, compression)),
      (m) => m.recordDigestCompression(digest, compression),
      undefined,
    );
  }

  digestCompression(digest: Digest): CompressionName {
    return this.run(
      (s) => compressionFrom(s, digest),
      (m) => m.digestCompression(digest),
      'unknown',
    );
  }

  recordKnownLocation(where: Omit<BlobLocation, 'location'>, digest: Digest, location: string): void {
    this.run(
      (s) => void s.putLocation.run(where.transport, where.scope, digest, location, this.now()),
      (m) => m.recordKnownLocation(where, digest, location),
      undefined,
    );
  }

  candidateLocations(
    transport: string,
    scope: string | undefined,
    digest: Digest,
    canSubstitute: boolean,
  ): BlobReuseCandidate[] {
    return this.reuseCandidates(transport, scope, digest, { canSubstitute }) as BlobReuseCandidate[];
  }

  reuseCandidates(
    transport: string,
    scope: string | undefined,
    digest: Digest,
    options: BlobCandidateOptions,
  ): BlobCandidate[] {
    return this.run(
      () => this.readCandidates!(transport, scope, digest, options),
      (m) => m.reuseCandidates(transport, scope, digest, options),
      [],
    );
  }

  /** Closes the file; later calls record nothing and find nothing. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.closeDb();
    this.fallback?.close();
    this.fallback = undefined;
  }

  private openOrRecover(): void {
    try {
      this.open();
    } catch (error) {
      this.recover(error);
    }
  }

  private openIfUnopened(): void {
    if (!this.unopened || this.closed) return;
    this.unopened = false;
    this.openOrRecover();
  }

  private open(): void {
    const Sqlite = loadDatabase();
    const db = new Sqlite(this.path, { timeout: this.busyTimeoutMs });
    try {
      // The first read of the header: a file that is not a database fails here (SQLITE_NOTADB).
      let version = db.pragma('user_version', { simple: true }) as number;
      if (version > sqliteSchemaVersion) throw new NewerSchemaError(`schema version ${version}`);
      db.pragma('journal_mode = WAL');
      // In WAL mode, NORMAL syncs at checkpoints only: a crash may lose the last records, never corrupt the file.
      db.pragma('synchronous = NORMAL');
      if (version < sqliteSchemaVersion) {
        // IMMEDIATE takes the write lock first, so two processes creating the schema at once queue.
        db.transaction(() => {
          version = db.pragma('user_version', { simple: true }) as number;
          if (version > sqliteSchemaVersion) throw new NewerSchemaError(`schema version ${version}`);
          if (version < sqliteSchemaVersion) {
            db.exec(schema);
            db.pragma(`user_version = ${sqliteSchemaVersion}`);
          }
        }).immediate();
      }
      const statements = prepare(db);
      const store = sqliteStore(statements);
      this.readCandidates = db.transaction(
        (transport: string, scope: string | undefined, digest: Digest, options: BlobCandidateOptions) =>
          gatherCandidates(store, transport, scope, digest, options),
      );
      const stat = statSync(this.path);
      this.identity = { dev: stat.dev, ino: stat.ino };
      this.statements = statements;
      this.db = db;
    } catch (error) {
      db.close();
      throw error;
    }
  }

  private closeDb(): void {
    const db = this.db;
    this.db = undefined;
    this.statements = undefined;
    this.readCandidates = undefined;
    try {
      db?.close();
    } catch {
      // A file that failed is closed as far as it can be; nothing is left to release.
    }
  }

  /**
   * Runs a statement; on failure, rebuilds or falls back, then (if the file is usable again) tries
   * once more. `otherwise` is what a dropped operation returns.
   */
  private run<T>(sqlite: (s: Statements) => T, memory: (m: MemoryBlobInfoCache) => T, otherwise: T): T {
    this.openIfUnopened();
    for (let attempt = 0; attempt < 2; attempt++) {
      if (this.closed) return otherwise;
      if (this.fallback) return memory(this.fallback);
      if (!this.statements) return otherwise;
      try {
        return sqlite(this.statements);
      } catch (error) {
        if (isBusy(error)) {
          // Another process held the write lock past the timeout: this record is dropped, the file kept.
          this.warn(`blob-info cache "${this.path}" is busy; some records were not saved`);
          return otherwise;
        }
        this.closeDb();
        this.recover(error);
      }
    }
    return otherwise;
  }

  /** After a failure to open or to use the file: move a bad file aside and rebuild it once, else go on in memory. */
  private recover(error: unknown): void {
    const reason = describe(error);
    if (error instanceof NewerSchemaError) {
      this.degrade(
        `blob-info cache "${this.path}" was written by a newer img (${reason}); using a cache in memory`,
      );
      return;
    }
    if (!this.rebuilt && isBadFile(error)) {
      this.rebuilt = true;
      let aside: string | undefined;
      try {
        aside = this.moveAside();
        this.open();
        this.warn(
          aside
            ? `blob-info cache "${this.path}" was unreadable (${reason}); moved it to "${aside}" and started a new one`
            : `blob-info cache "${this.path}" was unreadable (${reason}); started a new one`,
        );
        return;
      } catch (second) {
        this.closeDb();
        this.degrade(
          `blob-info cache "${this.path}" is unusable (${reason}; then ${describe(second)}); using a cache in memory`,
        );
        return;
      }
    }
    this.degrade(`blob-info cache "${this.path}" is unusable (${reason}); using a cache in memory`);
  }

  /**
   * Renames the file aside (and drops its WAL and shared-memory files), unless the file at the path
   * is no longer the one this cache opened: another process has already rebuilt it. Returns the new
   * name, or undefined when nothing was moved.
   */
  private moveAside(): string | undefined {
    let stat: { dev: number; ino: number };
    try {
      stat = statSync(this.path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    if (this.identity && (stat.dev !== this.identity.dev || stat.ino !== this.identity.ino)) return undefined;
    const aside = `${this.path}.corrupt-${new Date(this.now()).toISOString().replace(/[:.]/g, '-')}`;
    renameSync(this.path, aside);
    for (const suffix of ['-wal', '-shm']) rmSync(`${this.path}${suffix}`, { force: true });
    return aside;
  }

  private degrade(message: string): void {
    this.fallback ??= new MemoryBlobInfoCache({ now: this.now });
    this.warn(message);
  }

  private warn(message: string): void {
    if (this.warned) return;
    this.warned = true;
    try {
      this.onWarning(message);
    } catch {
      // A throwing listener must not make the cache throw.
    }
  }
}

function uncompressedFrom(s: Statements, digest: Digest): Digest | undefined {
  const pair = s.uncompressedOf.get(digest);
  if (pair) return pair.uncompressed as Digest;
  if (s.isUncompressedSide.get(digest)) return digest;
  return compressionFrom(s, digest) === 'none' ? digest : undefined;
}

function compressionFrom(s: Statements, digest: Digest): CompressionName {
  const value = s.compressionOf.get(digest)?.compression;
  return value !== undefined && compressionNames.includes(value) ? (value as CompressionName) : 'unknown';
}

function sqliteStore(s: Statements): CandidateStore {
  return {
    uncompressedDigest: (digest) => uncompressedFrom(s, digest),
    digestsWithUncompressed: (uncompressed) =>
      s.digestsWithUncompressed.all(uncompressed).map((r) => r.digest as Digest),
    digestCompression: (digest) => compressionFrom(s, digest),
    locations: (transport, scope, digest) =>
      scope === undefined
        ? s.locationsAnywhere.all(transport, digest)
        : s.locationsInScope.all(transport, scope, digest),
  };
}

function sqliteCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

function isBusy(error: unknown): boolean {
  const code = sqliteCode(error);
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED');
}

/** Errors that say the file itself is bad or cannot be opened as it is: worth moving aside. */
function isBadFile(error: unknown): boolean {
  const code = sqliteCode(error);
  return (
    code.startsWith('SQLITE_CORRUPT') ||
    code.startsWith('SQLITE_NOTADB') ||
    code.startsWith('SQLITE_CANTOPEN') ||
    code.startsWith('SQLITE_READONLY') ||
    code.startsWith('SQLITE_IOERR') ||
    code.startsWith('SQLITE_PERM') ||
    code === 'EACCES' ||
    code === 'EPERM'
  );
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = sqliteCode(error);
    return code && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}
