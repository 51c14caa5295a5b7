import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { indexLockName, withIndexLock } from './index-lock.js';
import { useTempDirs } from './test-helpers.js';

const tempDir = useTempDirs();

/** The pid of a process that has exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '']).pid!;
}

describe('index.json lock', () => {
  it('holds a lock file with this pid while the action runs and removes it after', async () => {
    const dir = await tempDir();
    const seen = await withIndexLock(dir, () => readFile(join(dir, indexLockName), 'utf8'));
    expect(seen).toBe(`${process.pid}\n`);
    expect(await readdir(dir)).toEqual([]);
  });

  it('removes the lock file when the action fails', async () => {
    const dir = await tempDir();
    await expect(withIndexLock(dir, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await readdir(dir)).toEqual([]);
  });

  it('runs the actions of concurrent holders one at a time', async () => {
    const dir = await tempDir();
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 5 }, () =>
        withIndexLock(dir, async () => {
          most = Math.max(most, ++inside);
          await new Promise((resolve) => setTimeout(resolve, 10));
          inside--;
        }),
      ),
    );
    expect(most).toBe(1);
  });

  it('waits while another live process holds the lock, then takes it', async () => {
    const dir = await tempDir();
    const lock = join(dir, indexLockName);
    // The holder takes the lock as withIndexLock does, says so, and releases it 300 ms later.
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('node:fs');
         fs.writeFileSync(process.argv[1], process.pid + '\\n', { flag: 'wx' });
         process.stdout.write('held');
         setTimeout(() => { fs.rmSync(process.argv[1]); process.stdout.write(' released'); }, 300);`,
        lock,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = once(holder, 'exit');
    let said = '';
    holder.stdout.on('data', (chunk) => {
      said += chunk;
    });
    await once(holder.stdout, 'data');
    const order: string[] = [];
    await withIndexLock(dir, async () => {
      order.push(said);
    });
    await exited;
    expect(order).toEqual(['held released']);
  });

  it('takes over a lock whose process is gone', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, indexLockName), `${deadPid()}\n`);
    expect(await withIndexLock(dir, async () => 'ran', { timeout: 60_000 })).toBe('ran');
    expect(await readdir(dir)).toEqual([]);
  });

  it('takes over a lock naming this pid that no holder in this process owns', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, indexLockName), `${process.pid}\n`);
    expect(await withIndexLock(dir, async () => 'ran', { timeout: 60_000 })).toBe('ran');
  });

  it('waits for a live holder and gives up after the timeout, naming it', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, indexLockName), `${process.ppid}\n`);
    await expect(withIndexLock(dir, async () => 'ran', { timeout: 100 })).rejects.toThrow(
      `cannot lock OCI layout "${dir}": index.json.lock is held by process ${process.ppid}`,
    );
    expect(await readFile(join(dir, indexLockName), 'utf8')).toBe(`${process.ppid}\n`);
  });

  it('stops waiting when the signal fires', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, indexLockName), `${process.ppid}\n`);
    const stop = new AbortController();
    const waiting = withIndexLock(dir, async () => 'ran', { signal: stop.signal });
    stop.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
  });
});
