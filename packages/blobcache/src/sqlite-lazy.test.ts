import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { computeDigest } from '@img/core';
import { describe, expect, it } from 'vitest';
import { openBlobInfoCache } from './open.js';
import { SqliteBlobInfoCache } from './sqlite.js';

const gz = computeDigest('lazy blob gzip');
const where = { transport: 'docker', scope: 'r.example' };

function tempFile(): string {
  return join(mkdtempSync(join(tmpdir(), 'img-bic-lazy-')), 'cache.sqlite');
}

describe('SqliteBlobInfoCache with lazy', () => {
  it('creates no file when it is closed unused', () => {
    const path = tempFile();
    new SqliteBlobInfoCache(path, { lazy: true }).close();
    expect(existsSync(path)).toBe(false);
  });

  it('opens the file on the first call and keeps what it records', () => {
    const path = tempFile();
    const first = new SqliteBlobInfoCache(path, { lazy: true });
    expect(existsSync(path)).toBe(false);
    first.recordKnownLocation(where, gz, 'team/app');
    expect(existsSync(path)).toBe(true);
    first.close();
    const second = new SqliteBlobInfoCache(path);
    expect(second.candidateLocations('docker', 'r.example', gz, false).map((c) => c.location)).toEqual([
      'team/app',
    ]);
    second.close();
  });

  it('recovers from a bad file on first use, with the same single warning', () => {
    const path = tempFile();
    writeFileSync(path, 'not a database at all'.repeat(200));
    const warnings: string[] = [];
    const cache = new SqliteBlobInfoCache(path, { lazy: true, onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual([]);
    cache.recordKnownLocation(where, gz, 'team/app');
    expect(cache.persistent).toBe(true);
    cache.close();
    expect(warnings).toEqual([expect.stringMatching(/was unreadable .*moved it to ".*\.corrupt-/)]);
    expect(readdirSync(join(path, '..')).filter((n) => n.includes('.corrupt-'))).toHaveLength(1);
  });

  it('is what openBlobInfoCache returns with lazy, the directory made at once', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'img-bic-lazy-')), 'a');
    const cache = await openBlobInfoCache({ dir, lazy: true });
    expect(existsSync(dir)).toBe(true);
    expect(readdirSync(dir)).toEqual([]);
    expect(cache.digestCompression(gz)).toBe('unknown');
    expect(readdirSync(dir).length).toBeGreaterThan(0);
    cache.close();
  });
});

describe('importing @img/blobcache', () => {
  it('does not load the SQLite addon until a cache opens its file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'img-bic-lazy-'));
    const script = join(dir, 'probe.mts');
    const module = fileURLToPath(new URL('./sqlite.ts', import.meta.url));
    writeFileSync(
      script,
      `import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const loaded = () => Object.keys(require.cache).some((k) => k.includes('better-sqlite3'));
const { SqliteBlobInfoCache } = await import(${JSON.stringify(module)});
const cache = new SqliteBlobInfoCache(${JSON.stringify(join(dir, 'c.sqlite'))}, { lazy: true });
const beforeUse = loaded();
cache.digestCompression('sha256:${'0'.repeat(64)}');
process.stdout.write(JSON.stringify([beforeUse, loaded()]));
`,
    );
    const tsx = fileURLToPath(new URL('../node_modules/.bin/tsx', import.meta.url));
    expect(JSON.parse(execFileSync(tsx, [script], { encoding: 'utf8' }))).toEqual([false, true]);
  }, 30_000);
});
