import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';

/** Processes started by these helpers and not yet stopped, killed if the test process exits first. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A test that forgets stop() must not leave a registry behind: kill exactly our pids.
  process.on('exit', () => {
    for (const child of live) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });
}

/** A free TCP port on 127.0.0.1, found by listening on port 0 and closing. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (port === 0) throw new Error('could not find a free port on 127.0.0.1');
  return port;
}

/** A started child process with captured output. */
export interface Spawned {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Captured stdout and stderr, the last `maxLogBytes` of them. */
  logs(): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
  hasExited(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** Spawns `command` with a scrubbed environment and keeps the tail of its output. */
export function spawnLogged(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; maxLogBytes?: number } = {},
): Spawned {
  installExitHook();
  const maxLogBytes = options.maxLogBytes ?? 1024 * 1024;
  const child = spawn(command, args, {
    env: options.env ?? process.env,
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const chunks: Buffer[] = [];
  let size = 0;
  const collect = (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    while (size > maxLogBytes && chunks.length > 1) size -= chunks.shift()!.length;
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let done = false;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      done = true;
      live.delete(child);
      resolve();
    });
    child.once('error', (err) => {
      collect(Buffer.from(`spawn ${command} failed: ${err.message}\n`));
      done = true;
      live.delete(child);
      resolve();
    });
  });
  live.add(child);
  const pid = child.pid ?? -1;
  return {
    child,
    pid,
    logs: () => Buffer.concat(chunks).toString('utf8'),
    exited,
    hasExited: () => done,
    async stop(graceMs = 3000) {
      if (done || pid < 0) return;
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          if (!done) child.kill('SIGKILL');
          resolve();
        }, graceMs);
      });
      await Promise.race([exited, killed]);
      clearTimeout(timer);
      await exited;
    },
  };
}
