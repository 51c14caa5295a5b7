// A small Docker Engine API client over undici: one Agent per daemon address for the whole process,
// over a unix socket or TCP (plain or TLS with the docker CLI's ca.pem/cert.pem/key.pem), with the
// API version negotiated without an extra round trip. Internal to the package.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ConnectionError, type Digest, RegistryError } from '@img/core';
import { Agent, type Dispatcher } from 'undici';
import type { ResolvedDaemonOptions } from '../options.js';

/** The newest Engine API version this client was written against (Docker 20.10). */
export const maxApiVersion = '1.41';
/** The oldest it accepts: Docker 1.12, the first whose load and save endpoints have every field used. */
export const minApiVersion = '1.24';

/** What `GET /images/{name}/json` says of an image (the fields used here). */
export interface EngineImage {
  Id: string;
  RepoTags: string[] | null;
}

/** Compares `1.41`-style versions numerically. */
export function compareVersions(a: string, b: string): number {
  const [am = 0, an = 0] = a.split('.').map(Number);
  const [bm = 0, bn = 0] = b.split('.').map(Number);
  return am - bm || an - bn;
}

const errorBodyLimit = 64 * 1024;

async function readCapped(body: Dispatcher.ResponseData['body'], limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = chunk as Buffer;
    if (size + buffer.length > limit) {
      chunks.push(buffer.subarray(0, limit - size));
      body.destroy();
      break;
    }
    chunks.push(buffer);
    size += buffer.length;
  }
  return Buffer.concat(chunks);
}

function daemonMessage(body: Buffer): string {
  const text = body.toString('utf8').trim();
  try {
    const json = JSON.parse(text) as { message?: unknown };
    if (typeof json.message === 'string') return json.message;
  } catch {
    // Not the daemon's JSON error shape: the text is the message.
  }
  return text.split('\n')[0] ?? '';
}

/** A daemon request that failed with an HTTP status: the daemon's message is kept. */
export class DaemonRequestError extends RegistryError {
  static override readonly code: string = 'IMG_DAEMON';
  readonly daemonMessage: string;
  constructor(host: string, method: string, path: string, status: number, message: string) {
    super(
      { method, url: path, status },
      `docker daemon at ${host}: ${method} ${path} failed: ${message || 'no message'} (HTTP ${status})`,
    );
    this.daemonMessage = message;
  }
}

interface Connection {
  agent: Agent;
  origin: string;
  /** The version requests use: fixed by the user, or the best known so far. */
  version: string;
  fixed: boolean;
  /** Whether a response from the daemon has confirmed `version`. */
  confirmed: boolean;
}

/** One connection per daemon address and TLS setting, for the whole process. */
const connections = new Map<string, Promise<Connection>>();

async function connect(options: ResolvedDaemonOptions): Promise<Connection> {
  const { host } = options;
  const version = { version: options.apiVersion ?? maxApiVersion, fixed: options.apiVersion !== undefined };
  if (host.startsWith('unix://')) {
    const socketPath = host.slice('unix://'.length);
    if (socketPath === '') throw new ConnectionError(host, 'the socket path is empty');
    return {
      agent: new Agent({ connect: { socketPath } }),
      origin: 'http://localhost',
      confirmed: false,
      ...version,
    };
  }
  const match = /^(tcp|http|https):\/\/([^/]+)\/?$/.exec(host);
  if (!match) {
    throw new ConnectionError(
      host,
      'expected unix:///path, tcp://host:port, http://host:port or https://host:port',
    );
  }
  const [, scheme, address] = match;
  const tls = scheme === 'https' || (scheme === 'tcp' && options.tlsVerify);
  if (!tls) return { agent: new Agent(), origin: `http://${address}`, confirmed: false, ...version };
  const load = async (name: string) => readFile(join(options.certPath, name)).catch(() => undefined);
  const [ca, cert, key] = await Promise.all([load('ca.pem'), load('cert.pem'), load('key.pem')]);
  if (options.tlsVerify && !ca) {
    throw new ConnectionError(host, `no ca.pem in "${options.certPath}" to verify the daemon's certificate`);
  }
  const agent = new Agent({
    connect: {
      rejectUnauthorized: options.tlsVerify,
      ...(ca ? { ca } : {}),
      ...(cert && key ? { cert, key } : {}),
    },
  });
  return { agent, origin: `https://${address}`, confirmed: false, ...version };
}

/** Options of one request. */
interface RequestOptions {
  query?: Record<string, string>;
  body?: Readable;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
}

/**
 * The Engine API of one daemon. The API version starts at {@link maxApiVersion} (or the one fixed
 * by the user) and follows the daemon down: every response carries the daemon's `API-Version`,
 * and a daemon too old for the version sent says so, after which the request is sent again.
 */
export class EngineClient {
  private constructor(
    /** The daemon's address, for messages. */
    readonly host: string,
    private readonly connection: Connection,
  ) {}

  /** The client for the daemon `options` name (sharing its connection with every other client of it). */
  static async open(options: ResolvedDaemonOptions): Promise<EngineClient> {
    const key = JSON.stringify([options.host, options.certPath, options.tlsVerify, options.apiVersion]);
    let connection = connections.get(key);
    if (!connection) {
      connection = connect(options);
      connections.set(key, connection);
      connection.catch(() => connections.delete(key));
    }
    return new EngineClient(options.host, await connection);
  }

  /** The API version requests use now. */
  get apiVersion(): string {
    return this.connection.version;
  }

  private async send(
    method: Dispatcher.HttpMethod,
    path: string,
    options: RequestOptions,
  ): Promise<Dispatcher.ResponseData> {
    const query = options.query ? `?${new URLSearchParams(options.query)}` : '';
    try {
      return await this.connection.agent.request({
        origin: this.connection.origin,
        path: `/v${this.connection.version}${path}${query}`,
        method,
        headers: options.headers ?? {},
        body: options.body ?? null,
        signal: options.signal ?? null,
      });
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      const { code, message } = error as NodeJS.ErrnoException;
      const reason =
        code === 'ENOENT'
          ? 'no such socket'
          : code === 'ECONNREFUSED'
            ? 'connection refused'
            : code === 'EACCES'
              ? 'permission denied'
              : message;
      throw new ConnectionError(this.host, reason, { cause: error });
    }
  }

  /** Follows the daemon's API-Version header down, never below the minimum. */
  private learn(response: Dispatcher.ResponseData): void {
    const header = response.headers['api-version'];
    const theirs = Array.isArray(header) ? header[0] : header;
    const c = this.connection;
    if (typeof theirs === 'string' && /^\d+\.\d+$/.test(theirs)) {
      if (!c.fixed && compareVersions(theirs, c.version) < 0) c.version = theirs;
      c.confirmed = true;
    }
  }

  /**
   * Sends a request and returns the response when its status is one of `ok`; otherwise reads the
   * daemon's message and throws DaemonRequestError. A streamed body cannot be sent twice, so before
   * one is sent with an unconfirmed version, the version is confirmed with `GET /_ping`.
   */
  async request(
    method: Dispatcher.HttpMethod,
    path: string,
    ok: readonly number[],
    options: RequestOptions = {},
  ): Promise<Dispatcher.ResponseData> {
    if (options.body && !this.connection.confirmed && !this.connection.fixed) {
      const ping = await this.request('GET', '/_ping', [200], { signal: options.signal });
      await ping.body.dump();
    }
    for (let attempt = 0; ; attempt++) {
      const response = await this.send(method, path, options);
      this.learn(response);
      if (ok.includes(response.statusCode)) return response;
      const message = daemonMessage(await readCapped(response.body, errorBodyLimit));
      // "client version 1.41 is too new. Maximum supported API version is 1.40"
      const older = /Maximum supported API version is (\d+\.\d+)/.exec(message)?.[1];
      if (response.statusCode === 400 && older && !this.connection.fixed && attempt === 0 && !options.body) {
        if (compareVersions(older, minApiVersion) < 0) {
          throw new ConnectionError(
            this.host,
            `the daemon speaks Engine API ${older}, older than ${minApiVersion} (Docker 1.12)`,
          );
        }
        this.connection.version = older;
        continue;
      }
      throw new DaemonRequestError(this.host, method, path, response.statusCode, message);
    }
  }

  /** `GET /images/{name}/json`: the image's ID and tags, or undefined when the daemon has no such image. */
  async inspectImage(name: string, signal?: AbortSignal): Promise<EngineImage | undefined> {
    const response = await this.request('GET', `/images/${name}/json`, [200, 404], { signal });
    if (response.statusCode === 404) {
      await response.body.dump();
      return undefined;
    }
    const json = JSON.parse((await readCapped(response.body, 16 * 1024 * 1024)).toString('utf8')) as {
      Id?: unknown;
      RepoTags?: unknown;
    };
    if (typeof json.Id !== 'string')
      throw new Error(`docker daemon at ${this.host}: image "${name}" has no Id`);
    const tags = Array.isArray(json.RepoTags)
      ? json.RepoTags.filter((t): t is string => typeof t === 'string')
      : null;
    return { Id: json.Id, RepoTags: tags };
  }

  /** `GET /images/{name}/get`: the `docker save` tarball as a stream, or undefined when there is no such image. */
  async exportImage(name: string, signal?: AbortSignal): Promise<Readable | undefined> {
    const response = await this.request('GET', `/images/${name}/get`, [200, 404], { signal });
    if (response.statusCode === 404) {
      await response.body.dump();
      return undefined;
    }
    return response.body;
  }

  /**
   * `POST /images/load`: streams a docker-archive tarball into the daemon and returns what it said it
   * loaded (`Loaded image: name:tag`, `Loaded image ID: sha256:…`). The daemon answers 200 and reports
   * failures inside its JSON stream: those are thrown as DaemonRequestError.
   */
  async loadImage(tarball: Readable, signal?: AbortSignal): Promise<string[]> {
    const response = await this.request('POST', '/images/load', [200], {
      query: { quiet: '1' },
      body: tarball,
      headers: { 'content-type': 'application/x-tar' },
      signal,
    });
    const text = (await readCapped(response.body, 1024 * 1024)).toString('utf8');
    const loaded: string[] = [];
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      let message: { stream?: unknown; error?: unknown; errorDetail?: { message?: unknown } };
      try {
        message = JSON.parse(line);
      } catch {
        continue;
      }
      const error = message.errorDetail?.message ?? message.error;
      if (typeof error === 'string') {
        throw new DaemonRequestError(this.host, 'POST', '/images/load', response.statusCode, error);
      }
      if (typeof message.stream === 'string' && message.stream.trim() !== '')
        loaded.push(message.stream.trim());
    }
    return loaded;
  }

  /** `POST /images/{id}/tag`: gives the image `repo:tag` (moving the tag from another image). */
  async tagImage(id: Digest | string, repo: string, tag: string, signal?: AbortSignal): Promise<void> {
    const response = await this.request('POST', `/images/${id}/tag`, [200, 201], {
      query: { repo, tag },
      signal,
    });
    await response.body.dump();
  }
}
