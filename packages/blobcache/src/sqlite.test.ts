import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { computeDigest } from '@img/core';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteBlobInfoCache, sqliteSchemaVersion } from './sqlite.js';

const gz = computeDigest('blob gzip');
const u = computeDigest('blob uncompressed');
const where = { transport: 'docker', scope: 'r.example' };

function tempFile(): string {
  return join(mkdtempSync(join(tmpdir(), 'img-bic-')), 'cache.sqlite');
}

function warningsOf(path: string) {
  const warnings: string[] = [];
  const cache = new SqliteBlobInfoCache(path, { onWarning: (m) => warnings.push(m) });
  return { cache, warnings };
}

describe('SqliteBlobInfoCache', () => {
  it('keeps what it recorded for the next process to open the file', () => {
    const path = tempFile();
    const first = new SqliteBlobInfoCache(path);
    first.recordDigestUncompressedPair(gz, u);
    first.recordDigestCompression(gz, 'gzip');
    first.recordKnownLocation(where, gz, 'team/app');
    first.close();
    const second = new SqliteBlobInfoCache(path);
    expect(second.uncompressedDigest(gz)).toBe(u);
    expect(second.digestCompression(gz)).toBe('gzip');
    expect(second.candidateLocations('docker', 'r.example', u, true)).toEqual([
      expect.objectContaining({ digest: gz, compression: 'gzip', location: 'team/app' }),
    ]);
    second.close();
  });

  it('writes a WAL-journaled file with its schema version', () => {
    const path = tempFile();
    new SqliteBlobInfoCache(path).close();
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(sqliteSchemaVersion);
    db.close();
  });

  it('moves a file that is not a database aside and starts anew, with one warning', () => {
    const path = tempFile();
    writeFileSync(path, 'this is not an SQLite database, not even close'.repeat(100));
    const { cache, warnings } = warningsOf(path);
    cache.recordKnownLocation(where, gz, 'team/app');
    expect(cache.candidateLocations('docker', 'r.example', gz, false)).toHaveLength(1);
    expect(cache.persistent).toBe(true);
    cache.close();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/was unreadable .*moved it to ".*\.corrupt-/);
    const aside = readdirSync(join(path, '..')).filter((name) => name.includes('.corrupt-'));
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(path, '..', aside[0]!), 'utf8')).toMatch(/^this is not an SQLite/);
  });

  it('rebuilds a file found corrupt in use, never throwing from a record call', () => {
    const path = tempFile();
    const setup = new SqliteBlobInfoCache(path);
    for (let i = 0; i < 500; i++) setup.recordKnownLocation(where, computeDigest(`b${i}`), `team/app${i}`);
    setup.close();
    // Keep the header (page 1) valid, so that the file opens; wreck every page after it.
    const bytes = readFileSync(path);
    expect(bytes.length).toBeGreaterThan(8192);
    bytes.fill(0xa5, 4096);
    writeFileSync(path, bytes);
    const { cache, warnings } = warningsOf(path);
    expect(() => cache.recordKnownLocation(where, gz, 'team/new')).not.toThrow();
    expect(cache.candidateLocations('docker', 'r.example', gz, false).map((c) => c.location)).toEqual([
      'team/new',
    ]);
    cache.close();
    expect(warnings).toHaveLength(1);
    expect(existsSync(path)).toBe(true);
    expect(readdirSync(join(path, '..')).some((name) => name.includes('.corrupt-'))).toBe(true);
  });

  it('moves an unreadable file aside and starts anew', () => {
    if (process.geteuid?.() === 0) return; // root reads any file
    const path = tempFile();
    new SqliteBlobInfoCache(path).close();
    chmodSync(path, 0o000);
    const { cache, warnings } = warningsOf(path);
    cache.recordKnownLocation(where, gz, 'team/app');
    expect(cache.candidateLocations('docker', 'r.example', gz, false)).toHaveLength(1);
    expect(cache.persistent).toBe(true);
    cache.close();
    expect(warnings).toHaveLength(1);
  });

  it('leaves a file of a newer schema alone and works in memory, with one warning', () => {
    const path = tempFile();
    const db = new Database(path);
    db.pragma(`user_version = ${sqliteSchemaVersion + 1}`);
    db.close();
    const { cache, warnings } = warningsOf(path);
    cache.recordKnownLocation(where, gz, 'team/app');
    expect(cache.candidateLocations('docker', 'r.example', gz, false)).toHaveLength(1);
    expect(cache.persistent).toBe(false);
    cache.close();
    expect(warnings).toEqual([expect.stringMatching(/newer img/)]);
    const again = new Database(path, { readonly: true });
    expect(again.pragma('user_version', { simple: true })).toBe(sqliteSchemaVersion + 1);
    again.close();
  });

  it('works in memory when the directory does not exist, with one warning', () => {
    const { cache, warnings } = warningsOf(join(tmpdir(), 'img-bic-missing-dir', 'x', 'cache.sqlite'));
    cache.recordDigestUncompressedPair(gz, u);
    expect(cache.uncompressedDigest(gz)).toBe(u);
    cache.close();
    expect(warnings).toHaveLength(1);
  });

  it('gives every record of several processes writing at once to each of them', async () => {
    const path = tempFile();
    const script = join(path, '..', 'writer.ts');
    const module = fileURLToPath(new URL('./sqlite.ts', import.meta.url));
    writeFileSync(
      script,
      `import { createHash } from 'node:crypto';
import { SqliteBlobInfoCache } from ${JSON.stringify(module)};
const [id] = process.argv.slice(2);
const warnings = [];
const cache = new SqliteBlobInfoCache(${JSON.stringify(path)}, { onWarning: (m) => warnings.push(m) });
for (let i = 0; i < 200; i++) {
  const digest = 'sha256:' + createHash('sha256').update(id + ':' + i).digest('hex');
  cache.recordKnownLocation({ transport: 'docker', scope: 'r.example' }, digest, 'writer' + id);
  cache.recordDigestCompression(digest, 'gzip');
}
cache.close();
process.stdout.write(JSON.stringify(warnings));
`,
    );
    const run = promisify(execFile);
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const outputs = await Promise.all(
      ['1', '2', '3', '4'].map((id) =>
        run(join(root, 'packages', 'blobcache', 'node_modules', '.bin', 'tsx'), [script, id], { cwd: root }),
      ),
    );
    for (const { stdout } of outputs) expect(JSON.parse(stdout)).toEqual([]);
    const db = new Database(path, { readonly: true });
    const count = db.prepare('SELECT count(*) AS n FROM known_locations').get() as { n: number };
    const compressed = db.prepare('SELECT count(*) AS n FROM digest_compressions').get() as { n: number };
    db.close();
    expect(count.n).toBe(800);
    expect(compressed.n).toBe(800);
  }, 60_000);
});
