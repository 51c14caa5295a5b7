import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NativeError, spawnWait } from './native.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'img-spawn-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Minor page faults taken while writing every page of `buffer` once. */
function faultsWriting(buffer: Buffer, value: number): number {
  const before = process.resourceUsage().minorPageFault;
  buffer.fill(value);
  return process.resourceUsage().minorPageFault - before;
}

describe('spawnWait', () => {
  it('runs a program from PATH to its end: exit code, and stderr in the file, stdout and stdin nowhere', async () => {
    const err = join(dir, 'one.err');
    const r = await spawnWait('sh', ['-c', 'echo out; echo "to stderr" >&2; read x; exit 3'], err);
    expect(r).toEqual({ code: 3, signal: null });
    expect(await readFile(err, 'utf8')).toBe('to stderr\n');
  });

  it('leaves the memory Node has written as it was, where a fork write-protects every page', async () => {
    const hot = Buffer.alloc(64 << 20, 1);
    const pages = hot.length / 4096;
    expect(faultsWriting(hot, 2)).toBeLessThan(pages / 100);

    expect(await spawnWait('true', [], join(dir, 'true.err'))).toEqual({ code: 0, signal: null });
    expect(faultsWriting(hot, 3)).toBeLessThan(pages / 100);

    // The contrast, where pages are 4 KiB (with transparent huge pages always on, a 2 MiB page faults once).
    const thp = await readFile('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').catch(() => '');
    if (!thp.includes('[always]')) {
      const forked = spawn('true');
      await once(forked, 'close');
      expect(faultsWriting(hot, 4)).toBeGreaterThan(pages * 0.9);
    }
  });

  it('gives the program the default SIGPIPE (Node ignores it), as child_process does', async () => {
    const err = join(dir, 'pipe.err');
    // `yes` dies of SIGPIPE (status 141) when `head` has gone; with SIGPIPE ignored it would get EPIPE.
    await spawnWait('sh', ['-c', '(yes; echo "yes: $?" >&2) | head -c1 >/dev/null'], err);
    expect(await readFile(err, 'utf8')).toBe('yes: 141\n');
  });

  it('ends the program with SIGTERM when the signal fires, and settles when it has ended', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const running = spawnWait('sleep', ['30'], join(dir, 'sleep.err'), controller.signal);
    setTimeout(() => controller.abort(), 50);
    expect(await running).toEqual({ code: null, signal: 15 });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('waits for many programs at once with one SIGCHLD listener, each getting its own status', async () => {
    const before = process.listenerCount('SIGCHLD');
    const runs = Array.from({ length: 15 }, (_, i) =>
      spawnWait('sh', ['-c', `sleep 0.0${i % 5}; exit ${i}`], join(dir, `many-${i}.err`)),
    );
    expect(process.listenerCount('SIGCHLD')).toBe(before + 1);
    expect((await Promise.all(runs)).map((r) => r.code)).toEqual(Array.from({ length: 15 }, (_, i) => i));
    expect(process.listenerCount('SIGCHLD')).toBe(before);
  });

  it('fails with ENOENT for a program not on PATH', async () => {
    const error = await spawnWait('img-no-such-program', [], join(dir, 'none.err')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NativeError);
    expect(error).toMatchObject({ errno: 2 });
  });
});
