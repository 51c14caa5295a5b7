import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Spawned, spawnLogged } from './process.js';

/** Debian's docker.io daemon. */
export const DOCKERD_BINARY = '/usr/sbin/dockerd';

/** Options of {@link startDockerd}. */
export interface StartDockerdOptions {
  /** Milliseconds to wait for `GET /_ping` to answer (default 60000). */
  readonly startTimeoutMs?: number;
}

/** A running dockerd started by {@link startDockerd}; stop it with {@link DockerdServer.stop}. */
export interface DockerdServer {
  /** The Engine API socket. */
  readonly socket: string;
  /** `unix://<socket>`, for DOCKER_HOST, `docker -H` and skopeo's `--*-daemon-host`. */
  readonly host: string;
  /** The pid of the dockerd process. */
  readonly pid: number;
  /** The temp dir holding data-root, exec-root, pidfile and socket; removed by `stop()`. */
  readonly dir: string;
  /** dockerd's output so far (the last MiB). */
  logs(): string;
  /** Runs the docker CLI against this daemon; resolves with stdout, rejects with stderr on failure. */
  docker(args: readonly string[], input?: Buffer): Promise<string>;
  /** SIGTERM, then SIGKILL; waits for dockerd and its containerd to be gone, then removes `dir`. */
  stop(): Promise<void>;
}

async function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_ping', method: 'GET', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

/** The pids whose parent is `pid` (from /proc), so that dockerd's containerd can be waited for. */
async function childrenOf(pid: number): Promise<number[]> {
  try {
    const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8');
    return text.split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function isAlive(pid: number): Promise<boolean> {
  try {
    await access(`/proc/${pid}`);
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // A zombie is gone for our purposes (its parent reaps it).
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

async function waitGone(pids: number[], ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    const alive = [];
    for (const pid of pids) if (await isAlive(pid)) alive.push(pid);
    if (alive.length === 0) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts a private dockerd as the issue describes: temp data and exec roots, pidfile, a unix socket
 * in a short temp path (socket paths are limited to ~107 bytes), no iptables, no bridge, the vfs
 * storage driver. Resolves once `/_ping` answers. One per test file: it takes a few seconds.
 */
export async function startDockerd(options: StartDockerdOptions = {}): Promise<DockerdServer> {
  // /tmp, not a deep TMPDIR: the socket path must stay short.
  const dir = await mkdtemp(join(tmpdir().length < 40 ? tmpdir() : '/tmp', 'dkd-'));
  const socket = join(dir, 'd.sock');
  const host = `unix://${socket}`;
  let proc: Spawned;
  try {
    proc = spawnLogged(DOCKERD_BINARY, [
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      join(dir, 'exec'),
      '--pidfile',
      join(dir, 'dockerd.pid'),
      '-H',
      host,
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      '--storage-driver=vfs',
    ]);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const stop = async () => {
    const children = await childrenOf(proc.pid);
    await proc.stop(15_000);
    // containerd, started by dockerd, stops with it; make sure before removing its state.
    if (!(await waitGone(children, 10_000))) {
      for (const pid of children) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await waitGone(children, 5_000);
    }
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  };
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  while (!(await ping(socket))) {
    if (proc.hasExited() || Date.now() > deadline) {
      const logs = proc.logs();
      await stop();
      throw new Error(`dockerd did not start: ${logs.split('\n').slice(-5).join(' | ')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    socket,
    host,
    pid: proc.pid,
    dir,
    logs: () => proc.logs(),
    docker: (args, input) =>
      new Promise((resolve, reject) => {
        const child = execFile(
          'docker',
          ['-H', host, ...args],
          { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024, env: { ...process.env, DOCKER_CONFIG: dir } },
          (error, stdout, stderr) => {
            if (error)
              reject(new Error(`docker ${args.join(' ')}: ${stderr.toString().trim() || error.message}`));
            else resolve(stdout.toString());
          },
        );
        if (input) child.stdin?.end(input);
        else child.stdin?.end();
      }),
    stop,
  };
}

/** One request seen by a {@link CountingProxy}. */
export interface ProxiedRequest {
  readonly method: string;
  /** The path with its query, as sent (`/v1.41/images/app:v1/json`). */
  readonly path: string;
  /** Bytes of request body (after any chunked framing is removed). */
  requestBytes: number;
  /** Bytes of response body. */
  responseBytes: number;
  status: number;
}

/** A proxy on a unix socket in front of a daemon's socket, recording every request. */
export interface CountingProxy {
  readonly socket: string;
  /** `unix://<socket>`. */
  readonly host: string;
  /** The requests so far, in the order they arrived. */
  readonly requests: ProxiedRequest[];
  /** Forgets the requests recorded so far. */
  reset(): void;
  close(): Promise<void>;
}

/**
 * Starts an HTTP proxy listening on a new unix socket that forwards every request to `target` (a
 * unix socket) and records its method, path, body sizes and status, so that a test can assert
 * "exactly one Engine API request" or "0 bytes loaded".
 */
export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const dir = await mkdtemp(join(tmpdir().length < 40 ? tmpdir() : '/tmp', 'dkp-'));
  const socket = join(dir, 'p.sock');
  const requests: ProxiedRequest[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const record: ProxiedRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      requestBytes: 0,
      responseBytes: 0,
      status: 0,
    };
    requests.push(record);
    const upstream = request(
      { socketPath: target, path: req.url, method: req.method, headers: req.headers },
      (answer) => {
        record.status = answer.statusCode ?? 0;
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.on('data', (chunk: Buffer) => {
          record.responseBytes += chunk.length;
        });
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.on('data', (chunk: Buffer) => {
      record.requestBytes += chunk.length;
    });
    req.on('aborted', () => upstream.destroy());
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
  server.listen(socket);
  await once(server, 'listening');
  return {
    socket,
    host: `unix://${socket}`,
    requests,
    reset: () => {
      requests.length = 0;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
