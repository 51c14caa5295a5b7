import { once } from 'node:events';
import {
  createServer,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';

/** Which requests a fault rule or a count applies to. */
export interface RequestMatch {
  /** One method or several (`['PATCH', 'PUT']`), case-insensitive; any when absent. */
  readonly method?: string | readonly string[];
  /** A substring of, or a pattern tested against, the path with its query; any when absent. */
  readonly path?: string | RegExp;
  /** Same as `path` (both must match when both are given). */
  readonly pathMatch?: string | RegExp;
}

/** Blob downloads: `GET /v2/<name>/blobs/<digest>`. */
export const BLOB_GET: RequestMatch = Object.freeze({ method: 'GET', path: /\/blobs\/[a-z0-9]+:[a-f0-9]+/ });
/** Blob upload traffic: `POST`, `PATCH` and `PUT` on `/v2/<name>/blobs/uploads/…`. */
export const BLOB_UPLOAD: RequestMatch = Object.freeze({
  method: ['POST', 'PATCH', 'PUT'],
  path: /\/blobs\/uploads\//,
});

/** What a fault rule does to a matching request. */
export type FaultAction =
  /**
   * Forwards the request, sends the response headers and the first `afterBytes` bytes of the
   * body, then closes the client connection (with a TCP RST when `rst`). `afterBytes: 0` closes
   * before any header is sent: the registry did the work but the client never hears of it.
   */
  | { readonly kind: 'reset-response'; readonly afterBytes: number; readonly rst?: boolean }
  /**
   * Forwards the first `afterBytes` bytes of the request body, then closes the client
   * connection and aborts the upstream request (an upload cut mid-way).
   */
  | { readonly kind: 'reset-request'; readonly afterBytes: number; readonly rst?: boolean }
  /** Answers `status` without forwarding, with a distribution-style JSON error body. */
  | {
      readonly kind: 'status';
      readonly status: number;
      readonly headers?: Readonly<Record<string, string>>;
      readonly body?: string;
    }
  /** Answers 429 with `Retry-After: retryAfter` (seconds or an HTTP date) without forwarding. */
  | { readonly kind: 'too-many-requests'; readonly retryAfter: number | string }
  /** Waits `ms` before forwarding. */
  | { readonly kind: 'delay'; readonly ms: number }
  /** Limits the body bandwidth, of the response (`down`, default) or the request (`up`). */
  | { readonly kind: 'throttle'; readonly bytesPerSecond: number; readonly direction?: 'up' | 'down' };

/** A fault to inject into matching requests. */
export interface FaultRule {
  readonly match: RequestMatch;
  readonly action: FaultAction;
  /** Apply to at most this many requests (default: no limit; `1` for once). */
  readonly times?: number;
  /** Apply only to every k-th matching request (the k-th, 2k-th, …; default 1: every one). */
  readonly every?: number;
}

/** A rule added to a running proxy. */
export interface ActiveFault {
  readonly rule: FaultRule;
  /** Matching requests seen since the rule was added. */
  readonly matched: number;
  /** Requests the fault was applied to. */
  readonly applied: number;
  remove(): void;
}

/** One request that went through the proxy; updated while it streams. */
export interface ProxyRequestRecord {
  readonly method: string;
  /** The path with its query, as the client sent it. */
  readonly path: string;
  /** The status sent to the client; 0 when none was sent. */
  readonly status: number;
  /** Request body bytes received from the client. */
  readonly requestBytes: number;
  /** Response body bytes sent to the client. */
  readonly responseBytes: number;
  /** Kinds of the faults applied. */
  readonly faults: readonly FaultAction['kind'][];
  /** True once the exchange ended, completely or not. */
  readonly done: boolean;
}

/** Options of {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** The upstream origin, `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`. */
  readonly target: string;
  /** CA certificate (PEM) to trust for an https target. */
  readonly ca?: string;
  /**
   * Serve HTTPS with this certificate and key (PEM), e.g. a TLS registry's `serverTls`; clients
   * then trust the registry's CA. Plain HTTP when absent.
   */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Rules active from the start. */
  readonly faults?: readonly FaultRule[];
}

/** A running fault proxy, started by {@link startFaultProxy}. */
export interface FaultProxy {
  /** `127.0.0.1:PORT`, to use in image references instead of the registry's host. */
  readonly host: string;
  readonly port: number;
  /** `http://127.0.0.1:PORT`, or `https://` with `tls`. */
  readonly url: string;
  readonly scheme: 'http' | 'https';
  /** Every request so far, oldest first. */
  readonly requests: readonly ProxyRequestRecord[];
  /** Number of recorded requests matching `match` (all when absent). */
  count(match?: RequestMatch): number;
  /** Request body bytes of blob uploads ({@link BLOB_UPLOAD}) so far. */
  readonly blobBytesUp: number;
  /** Response body bytes of blob downloads ({@link BLOB_GET}) so far. */
  readonly blobBytesDown: number;
  /** Forgets the recorded requests (rules stay). */
  reset(): void;
  /** Adds a fault rule; it applies to requests that arrive from now on. */
  addFault(rule: FaultRule): ActiveFault;
  /** Removes every fault rule. */
  clearFaults(): void;
  /** Resolves when every request recorded so far is done. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function stripHopByHop(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const listed = String(headers.connection ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase());
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.includes(name)) continue;
    out[name] = value;
  }
  return out;
}

/** True when the request (method, path with query) matches. */
export function matchesRequest(match: RequestMatch | undefined, method: string, path: string): boolean {
  if (!match) return true;
  if (match.method !== undefined) {
    const methods = typeof match.method === 'string' ? [match.method] : match.method;
    if (!methods.some((m) => m.toUpperCase() === method.toUpperCase())) return false;
  }
  for (const pattern of [match.path, match.pathMatch]) {
    if (pattern === undefined) continue;
    if (typeof pattern === 'string' ? !path.includes(pattern) : !pattern.test(path)) return false;
  }
  return true;
}

function closeSocket(socket: Socket, rst: boolean): void {
  if (rst && typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Counts bytes, throttles, and stops after a byte budget. With a budget, `onLimit` runs once the
 * first `limit` bytes have been pushed and flushed downstream; the rest is never pushed.
 */
class Meter extends Transform {
  bytes = 0;
  private limited = false;
  private readonly started = Date.now();
  constructor(
    private readonly onBytes: (n: number) => void,
    private readonly limit: number | undefined,
    private readonly bytesPerSecond: number | undefined,
    private readonly onLimit: () => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.process(chunk).then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    // A cut stream must never end cleanly: that would complete a truncated body or upload.
    if (!this.limited) callback();
  }

  private hitLimit(): void {
    if (this.limited) return;
    this.limited = true;
    this.onLimit();
  }

  private async process(chunk: Buffer): Promise<void> {
    let rest = chunk;
    while (rest.length > 0) {
      if (this.limit !== undefined && this.bytes >= this.limit) {
        this.hitLimit();
        return;
      }
      let size = rest.length;
      if (this.limit !== undefined) size = Math.min(size, this.limit - this.bytes);
      if (this.bytesPerSecond !== undefined)
        size = Math.min(size, Math.max(1, Math.floor(this.bytesPerSecond / 20)));
      const slice = rest.subarray(0, size);
      rest = rest.subarray(size);
      this.bytes += slice.length;
      this.onBytes(slice.length);
      this.push(slice);
      if (this.bytesPerSecond !== undefined) {
        const due = this.started + (this.bytes / this.bytesPerSecond) * 1000;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
      }
      if (this.limit !== undefined && this.bytes >= this.limit) {
        this.hitLimit();
        return;
      }
    }
  }
}

interface MutableRecord {
  method: string;
  path: string;
  status: number;
  requestBytes: number;
  responseBytes: number;
  faults: FaultAction['kind'][];
  done: boolean;
}

interface RuleState {
  rule: FaultRule;
  matched: number;
  applied: number;
}

function errorBody(status: number, message: string): string {
  const code = status === 429 ? 'TOOMANYREQUESTS' : status >= 500 ? 'UNAVAILABLE' : 'UNKNOWN';
  return JSON.stringify({ errors: [{ code, message, detail: null }] });
}

/**
 * Starts an HTTP proxy on 127.0.0.1 in front of a registry: it streams both ways, records every
 * request, and injects faults (cut bodies, 5xx, 429, delays, throttling) chosen at runtime. It
 * forwards the client's `Host` so the registry's absolute URLs name the proxy, and rewrites
 * `Location` and `Link` headers that still name the target.
 *
 * @example
 * ```ts
 * const proxy = await startFaultProxy({ target: registry.url });
 * proxy.addFault({ match: BLOB_GET, action: { kind: 'reset-response', afterBytes: 1000 }, times: 1 });
 * // copy from docker://${proxy.host}/app:v1, then:
 * expect(proxy.count(BLOB_GET)).toBe(2);
 * ```
 */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  const isHttps = target.protocol === 'https:';
  const upstreamAgent = isHttps
    ? new HttpsAgent({ keepAlive: true, ...(options.ca ? { ca: options.ca } : {}) })
    : new HttpAgent({ keepAlive: true });
  const records: MutableRecord[] = [];
  const pending = new Set<Promise<void>>();
  let rules: RuleState[] = [];
  let proxyOrigin = '';

  const rewrite = (value: string): string => value.split(target.origin).join(proxyOrigin);

  const handle = async (req: IncomingMessage, res: ServerResponse, record: MutableRecord) => {
    const method = record.method;
    const applicable: FaultAction[] = [];
    for (const state of rules) {
      if (!matchesRequest(state.rule.match, method, record.path)) continue;
      state.matched++;
      const every = state.rule.every ?? 1;
      if (state.matched % every !== 0) continue;
      if (state.applied >= (state.rule.times ?? Number.POSITIVE_INFINITY)) continue;
      state.applied++;
      applicable.push(state.rule.action);
      record.faults.push(state.rule.action.kind);
    }
    const find = <K extends FaultAction['kind']>(kind: K) =>
      applicable.find((a): a is Extract<FaultAction, { kind: K }> => a.kind === kind);

    for (const a of applicable) if (a.kind === 'delay') await sleep(a.ms);

    const status = find('status');
    const tooMany = find('too-many-requests');
    if (status || tooMany) {
      // Drain the request body so the client can finish sending and read the answer.
      req.on('data', (chunk: Buffer) => {
        record.requestBytes += chunk.length;
      });
      req.resume();
      const code = status?.status ?? 429;
      const body = status?.body ?? errorBody(code, 'fault injected by the test proxy');
      const headers: OutgoingHttpHeaders = {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        ...(tooMany ? { 'retry-after': String(tooMany.retryAfter) } : {}),
        ...status?.headers,
      };
      record.status = code;
      res.writeHead(code, headers);
      res.end(method === 'HEAD' ? undefined : body);
      record.responseBytes += method === 'HEAD' ? 0 : Buffer.byteLength(body);
      await once(res, 'close');
      return;
    }

    const resetRequest = find('reset-request');
    const resetResponse = find('reset-response');
    const throttleUp = applicable.find((a) => a.kind === 'throttle' && a.direction === 'up');
    const throttleDown = applicable.find((a) => a.kind === 'throttle' && a.direction !== 'up');

    const headers = stripHopByHop(req.headers);
    // distribution builds absolute URLs from Host and X-Forwarded-Proto: keep them the proxy's.
    headers.host = req.headers.host ?? `127.0.0.1:${target.port}`;
    headers['x-forwarded-proto'] = scheme;
    const upstream = (isHttps ? httpsRequest : httpRequest)({
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port,
      method,
      path: req.url,
      headers,
      agent: upstreamAgent,
      ...(isHttps ? { servername: '' } : {}),
    });

    let cut = false;
    const cutClient = (rst: boolean) => {
      if (cut) return;
      cut = true;
      closeSocket(req.socket, rst);
    };

    const up = new Meter(
      (n) => {
        record.requestBytes += n;
      },
      resetRequest?.afterBytes,
      throttleUp?.kind === 'throttle' ? throttleUp.bytesPerSecond : undefined,
      () => {
        // Let the forwarded part reach the registry, then abort both sides.
        setImmediate(() => {
          upstream.destroy();
          cutClient(resetRequest?.rst ?? false);
        });
      },
    );
    req.pipe(up).pipe(upstream);
    req.on('error', () => upstream.destroy());
    res.on('error', () => upstream.destroy());
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });

    const done = new Promise<void>((resolve) => {
      res.on('close', resolve);
      upstream.on('error', () => {
        if (!res.headersSent && !cut) {
          const body = errorBody(502, 'test proxy: upstream failed');
          record.status = 502;
          res.writeHead(502, {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          });
          res.end(body);
        } else {
          cutClient(false);
        }
        resolve();
      });
    });

    upstream.on('response', (upRes) => {
      if (cut) {
        upRes.resume();
        return;
      }
      const out = stripHopByHop(upRes.headers);
      for (const name of ['location', 'link', 'content-location']) {
        const v = out[name];
        if (typeof v === 'string') out[name] = rewrite(v);
      }
      if (resetResponse && resetResponse.afterBytes <= 0) {
        upRes.resume();
        cutClient(resetResponse.rst ?? false);
        return;
      }
      record.status = upRes.statusCode ?? 0;
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, out);
      const down = new Meter(
        (n) => {
          record.responseBytes += n;
        },
        resetResponse?.afterBytes,
        throttleDown?.kind === 'throttle' ? throttleDown.bytesPerSecond : undefined,
        () => {
          // Wait until the allowed bytes are handed to the socket, then cut.
          res.write('', () => {
            upRes.destroy();
            cutClient(resetResponse?.rst ?? false);
          });
        },
      );
      upRes.on('error', () => cutClient(false));
      upRes.pipe(down).pipe(res);
    });

    await done;
  };

  const scheme = options.tls ? 'https' : 'http';
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const record: MutableRecord = {
      method: (req.method ?? 'GET').toUpperCase(),
      path: req.url ?? '/',
      status: 0,
      requestBytes: 0,
      responseBytes: 0,
      faults: [],
      done: false,
    };
    records.push(record);
    const p = handle(req, res, record)
      .catch(() => {
        req.socket.destroy();
      })
      .finally(() => {
        record.done = true;
        pending.delete(p);
      });
    pending.add(p);
  };
  const server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, onRequest)
    : createServer(onRequest);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const host = `127.0.0.1:${port}`;
  proxyOrigin = `${scheme}://${host}`;
  for (const rule of options.faults ?? []) rules.push({ rule, matched: 0, applied: 0 });

  const sum = (match: RequestMatch, field: 'requestBytes' | 'responseBytes') =>
    records.reduce((n, r) => (matchesRequest(match, r.method, r.path) ? n + r[field] : n), 0);

  return {
    host,
    port,
    url: proxyOrigin,
    scheme,
    requests: records,
    count: (match) => records.filter((r) => matchesRequest(match, r.method, r.path)).length,
    get blobBytesUp() {
      return sum(BLOB_UPLOAD, 'requestBytes');
    },
    get blobBytesDown() {
      return sum(BLOB_GET, 'responseBytes');
    },
    reset() {
      records.length = 0;
    },
    addFault(rule) {
      const state: RuleState = { rule, matched: 0, applied: 0 };
      rules.push(state);
      return {
        rule,
        get matched() {
          return state.matched;
        },
        get applied() {
          return state.applied;
        },
        remove() {
          rules = rules.filter((s) => s !== state);
        },
      };
    },
    clearFaults() {
      rules = [];
    },
    async settled() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        upstreamAgent.destroy();
      });
    },
  };
}
