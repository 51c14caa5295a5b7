import { randomInt } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { ConnectionError, type HttpFailure, RegistryError, UnauthorizedError } from '@img/core';
import { Agent, type Dispatcher, request } from 'undici';
import type { Credentials, DockerConfig, HostTls } from '../config/types.js';
import type { DockerTransportOptions } from '../options.js';
import {
  type CachedToken,
  type Challenge,
  cachedToken,
  dropToken,
  parseChallenges,
  parseTokenResponse,
  repositoryScope,
  storeToken,
  tokenCacheKey,
} from './auth.js';
import { errorBodyLimit, errorForFailure, parseErrorBody, readCapped, redactUrl } from './errors.js';
import { extraCaCertificates, extraCaFileFor } from './extra-ca.js';

/** An HTTP response whose body the caller MUST consume or dump. */
export type Response = Dispatcher.ResponseData & { url: URL };

/** The HTTP methods the client sends. */
export type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

/** One request to the registry. */
export interface RequestSpec {
  method: Method;
  /** A path on the registry (`/v2/…`), or an absolute URL (an upload Location). */
  target: string | URL;
  headers?: Record<string, string> | undefined;
  /** A Buffer or string may be sent again on retry; a stream is sent once. */
  body?: Buffer | string | Readable | undefined;
  /** Scopes needed beyond the client's own repository (e.g. pull on a mount source). */
  extraScopes?: readonly string[] | undefined;
  /** Whether a failure may be retried; default: GET, HEAD, DELETE, and PUT with a replayable body. */
  idempotent?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

/** The registry host Docker Hub's API lives on (`docker.io` is the name in references). */
export function registryEndpoint(host: string): string {
  return host === 'docker.io' ? 'registry-1.docker.io' : host;
}

const agents = new Map<string, Agent>();

/**
 * One undici Agent per TLS configuration, shared by every client of the process.
 *
 * Without verification (`--tls-verify=false`, an insecure registry) no CA is given at all: an empty
 * `ca` list keeps Node from building its root store for each connection, which trusts nothing
 * anyway when nothing is checked. With a CA list of img's own (the host's `certs.d` CA,
 * NODE_EXTRA_CA_CERTS's certificates), the agent builds one TLS context for all its connections:
 * given as `ca`, the list would be parsed into a new store at every connection (~50 ms each with a
 * system bundle).
 */
export function agentFor(tls: Pick<HostTls, 'verify' | 'ca' | 'cert' | 'key'>): Agent {
  const extraFile = tls.verify ? extraCaFileFor(tls.ca) : undefined;
  const key = JSON.stringify([
    tls.verify,
    extraFile ?? '',
    tls.ca.map((c) => c.toString('base64')),
    tls.cert?.toString('base64') ?? '',
    tls.key?.toString('base64') ?? '',
  ]);
  let agent = agents.get(key);
  if (agent === undefined) {
    agent = new Agent({
      connect: { rejectUnauthorized: tls.verify, ...trustOptions(tls, extraFile), timeout: 30_000 },
      keepAliveTimeout: 10_000,
    });
    agents.set(key, agent);
  }
  return agent;
}

/** The TLS options that say what an agent's connections trust, and with which client certificate. */
function trustOptions(
  tls: Pick<HostTls, 'verify' | 'ca' | 'cert' | 'key'>,
  extraFile: string | undefined,
): { ca?: string[]; cert?: Buffer; key?: Buffer; secureContext?: SecureContext } {
  const client = { ...(tls.cert ? { cert: tls.cert } : {}), ...(tls.key ? { key: tls.key } : {}) };
  if (!tls.verify) return { ca: [], ...client };
  const own = tls.ca.map((c) => c.toString());
  // Node's default store: its bundled roots, and NODE_EXTRA_CA_CERTS's when it loaded them itself.
  if (own.length === 0 && extraFile === undefined) return client;
  const extra = extraFile === undefined ? [] : extraCaCertificates(extraFile);
  return { secureContext: createSecureContext({ ca: [...rootCertificates, ...extra, ...own], ...client }) };
}

/** Network error codes after which a request may succeed when tried again (containers/common's list). */
const retryableCodes = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETDOWN',
  'ENETUNREACH',
  'ENETRESET',
  'EHOSTDOWN',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** Whether an error (or its cause) is a network failure that may pass. */
export function isRetryableNetworkError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && retryableCodes.has(code)) return true;
    if (e instanceof Error && /other side closed|socket hang up/i.test(e.message)) return true;
  }
  return false;
}

/** Statuses worth another try: too many requests, and the server being (temporarily) unwell. */
export function isRetryableStatus(status: number): boolean {
  return (
    status === 408 || status === 429 || status === 500 || status === 502 || status === 503 || status === 504
  );
}

/** Retry-After (RFC 9110 section 10.2.3): seconds or an HTTP date; undefined when absent or invalid. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, t - now) : undefined;
}

/** The longest Retry-After honoured; a server asking for more is given up on. */
const maxRetryAfterMs = 5 * 60_000;

/** Retry policy: `times` further attempts after the first, `baseDelayMs` doubling with jitter. */
export interface RetryPolicy {
  times: number;
  baseDelayMs: number;
}

export function retryPolicy(options: DockerTransportOptions): RetryPolicy {
  return { times: options.retryTimes ?? 3, baseDelayMs: options.retryDelayMs ?? 1000 };
}

/** The delay before retry number `attempt` (0-based): exponential with ±25% jitter, at most 60 s. */
export function backoffMs(policy: RetryPolicy, attempt: number): number {
  const base = Math.min(policy.baseDelayMs * 2 ** attempt, 60_000);
  const jitter = base / 4;
  return Math.max(0, Math.round(base - jitter + randomInt(0, Math.max(1, Math.round(2 * jitter)))));
}

/** A response header as one string (the first value when repeated). */
export function header(res: Pick<Dispatcher.ResponseData, 'headers'>, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

function basicAuth(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

function credentialIdentity(c: Credentials | undefined): string {
  if (c === undefined) return 'anonymous';
  switch (c.kind) {
    case 'basic':
      return `basic\0${c.username}\0${c.password}`;
    case 'identity-token':
      return `identity\0${c.identityToken}`;
    case 'bearer':
      return `bearer\0${c.token}`;
  }
}

/** The scheme and challenges learnt from `GET /v2/` (distribution spec "API Version Check"). */
interface Probe {
  base: URL;
  challenges: Challenge[];
}

/** Settings of a client: which registry and repository, what access, which configuration. */
export interface ClientSettings {
  /** The registry as references name it (`docker.io`, `127.0.0.1:5000`). */
  host: string;
  /** The repository path the client works on, if any (scopes, errors). */
  repository?: string | undefined;
  /** The access asked for the repository. */
  actions: 'pull' | 'pull,push';
  options: DockerTransportOptions;
  config: DockerConfig;
}

const redirectStatuses = new Set([301, 302, 303, 307, 308]);
const maxRedirects = 10;

/**
 * An HTTP client for one registry and repository (containers/image's dockerClient): detects the
 * scheme (https, falling back to http only when allowed), authenticates (basic, bearer tokens per
 * scope, cached until expiry), follows redirects without forwarding credentials to another origin,
 * and retries what may be retried with exponential backoff.
 */
export class RegistryClient {
  readonly host: string;
  readonly repository: string | undefined;
  private readonly settings: ClientSettings;
  private readonly policy: RetryPolicy;
  private probing: Promise<Probe> | undefined;
  private tls: Promise<HostTls> | undefined;
  private credentials: Promise<Credentials | undefined> | undefined;
  private challenges: Challenge[] = [];
  private readonly userAgent: string;

  constructor(settings: ClientSettings) {
    this.settings = settings;
    this.host = settings.host;
    this.repository = settings.repository;
    this.policy = retryPolicy(settings.options);
    this.userAgent = settings.options.userAgent ?? 'img';
  }

  /** The TLS settings of the registry host. */
  hostTls(): Promise<HostTls> {
    this.tls ??= this.settings.config.hostTls(this.host, this.settings.options);
    return this.tls;
  }

  private getCredentials(): Promise<Credentials | undefined> {
    this.credentials ??= this.settings.config.resolveCredentials(
      this.host,
      this.repository,
      this.settings.options,
    );
    return this.credentials;
  }

  /** The base URL (`https://host/`), probing the registry once. */
  async baseUrl(signal?: AbortSignal): Promise<URL> {
    return (await this.probe(signal)).base;
  }

  private probe(signal?: AbortSignal): Promise<Probe> {
    if (this.probing === undefined) {
      const p = this.doProbe(signal);
      this.probing = p;
      // A failed probe (e.g. aborted) is tried again by the next request.
      p.catch(() => {
        if (this.probing === p) this.probing = undefined;
      });
    }
    return this.probing;
  }

  private async doProbe(signal?: AbortSignal): Promise<Probe> {
    const tls = await this.hostTls();
    const endpoint = registryEndpoint(this.host);
    const schemes = tls.allowHttp ? ['https', 'http'] : ['https'];
    let lastError: unknown;
    for (const scheme of schemes) {
      const base = new URL(`${scheme}://${endpoint}/`);
      const url = new URL('/v2/', base);
      try {
        const res = await this.send('GET', url, {}, undefined, true, signal);
        await res.body.dump();
        if (res.statusCode === 200 || res.statusCode === 401 || res.statusCode === 403) {
          const challenges = parseChallenges(res.headers['www-authenticate']);
          this.challenges = challenges;
          return { base, challenges };
        }
        lastError = new RegistryError(
          { method: 'GET', url: redactUrl(url), status: res.statusCode },
          `${this.host} does not look like a registry: GET ${redactUrl(url)}: HTTP ${res.statusCode}`,
        );
      } catch (error) {
        if (signal?.aborted) throw error;
        lastError = error;
      }
    }
    if (lastError instanceof RegistryError) throw lastError;
    throw new ConnectionError(this.host, reasonOf(lastError), { cause: lastError });
  }

  /**
   * Sends a request to the registry with authentication, redirects (GET and HEAD only) and retries.
   * The caller MUST consume or dump the body of the response it gets.
   */
  async request(spec: RequestSpec): Promise<Response> {
    const { base } = await this.probe(spec.signal);
    const url = typeof spec.target === 'string' ? new URL(spec.target, base) : spec.target;
    const idempotent =
      spec.idempotent ??
      (spec.method === 'GET' ||
        spec.method === 'HEAD' ||
        spec.method === 'DELETE' ||
        (spec.method === 'PUT' && !(spec.body instanceof Readable)));
    const scopes = this.scopes(spec.extraScopes);
    let retriedAuth = false;
    for (;;) {
      const authorization = await this.authorization(scopes, spec.signal);
      const res = await this.sendFollowing(spec, base, url, authorization?.value, idempotent);
      if (res.statusCode !== 401 || retriedAuth || spec.body instanceof Readable) return res;
      // 401: the challenge may have changed (or the token expired): learn it, and try once more.
      const fresh = parseChallenges(res.headers['www-authenticate']);
      if (fresh.length > 0) this.challenges = fresh;
      if (authorization?.tokenKey !== undefined) dropToken(authorization.tokenKey);
      if (authorization === undefined && fresh.length === 0) return res;
      if (authorization !== undefined && authorization.tokenKey === undefined) return res;
      await res.body.dump();
      retriedAuth = true;
    }
  }

  /** Throws the typed error for a response that is not one of `expected`, reading its body with a cap. */
  async expect(res: Response, method: Method, expected: readonly number[]): Promise<void> {
    if (expected.includes(res.statusCode)) return;
    throw await this.failure(res, method);
  }

  /** The typed error for a failed response; reads (at most 64 KiB of) the body. */
  async failure(res: Response, method: Method): Promise<RegistryError> {
    const body = method === 'HEAD' ? Buffer.alloc(0) : await readCapped(res.body, errorBodyLimit);
    if (method === 'HEAD') await res.body.dump();
    const errors = parseErrorBody(body);
    const failure: HttpFailure = { method, url: redactUrl(res.url), status: res.statusCode, errors };
    const credentials = await this.getCredentials();
    return errorForFailure(failure, {
      host: this.host,
      repository: this.repository,
      hadCredentials: credentials !== undefined,
    });
  }

  private scopes(extra: readonly string[] | undefined): string[] {
    const own =
      this.repository === undefined ? [] : [repositoryScope(this.repository, this.settings.actions)];
    return [...own, ...(extra ?? [])];
  }

  /**
   * The Authorization header for a request with these scopes, as the registry's challenge asks:
   * a token for bearer (fetched or cached), the credentials for basic, nothing otherwise.
   */
  private async authorization(
    scopes: readonly string[],
    signal: AbortSignal | undefined,
  ): Promise<{ value: string; tokenKey?: string } | undefined> {
    const credentials = await this.getCredentials();
    if (credentials?.kind === 'bearer') return { value: `Bearer ${credentials.token}` };
    const bearer = this.challenges.find((c) => c.scheme === 'bearer');
    if (bearer?.params.realm) {
      const token = await this.token(bearer, scopes, credentials, signal);
      return { value: `Bearer ${token.token}`, tokenKey: token.key };
    }
    if (this.challenges.some((c) => c.scheme === 'basic') && credentials?.kind === 'basic') {
      return { value: basicAuth(credentials.username, credentials.password) };
    }
    return undefined;
  }

  private async token(
    challenge: Challenge,
    scopes: readonly string[],
    credentials: Credentials | undefined,
    signal: AbortSignal | undefined,
  ): Promise<CachedToken & { key: string }> {
    const realm = challenge.params.realm as string;
    const service = challenge.params.service;
    const key = tokenCacheKey(realm, service, scopes, credentialIdentity(credentials));
    const cached = cachedToken(key);
    if (cached !== undefined) return { ...cached, key };
    const fetched = await this.fetchToken(realm, service, scopes, credentials, signal);
    storeToken(key, fetched);
    return { ...fetched, key };
  }

  /**
   * Asks the token server (distribution "Token Authentication Specification"): an identity token
   * is exchanged by POST with grant_type=refresh_token (OAuth2); a password is sent as basic auth
   * on a GET, as docker does; without credentials, an anonymous GET. The credentials go to the realm
   * only.
   */
  private async fetchToken(
    realm: string,
    service: string | undefined,
    scopes: readonly string[],
    credentials: Credentials | undefined,
    signal: AbortSignal | undefined,
  ): Promise<CachedToken> {
    let url: URL;
    try {
      url = new URL(realm);
    } catch (error) {
      throw new ConnectionError(this.host, 'the registry sent an invalid token realm', { cause: error });
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new ConnectionError(this.host, 'the registry sent a token realm that is not http(s)');
    }
    let res: Dispatcher.ResponseData;
    let method: Method;
    if (credentials?.kind === 'identity-token') {
      method = 'POST';
      const form = new URLSearchParams();
      form.set('grant_type', 'refresh_token');
      form.set('refresh_token', credentials.identityToken);
      if (service) form.set('service', service);
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      form.set('client_id', 'img');
      res = await this.send(
        'POST',
        url,
        { 'content-type': 'application/x-www-form-urlencoded' },
        form.toString(),
        true,
        signal,
      );
    } else {
      method = 'GET';
      if (service) url.searchParams.set('service', service);
      for (const scope of scopes) url.searchParams.append('scope', scope);
      if (credentials?.kind === 'basic') url.searchParams.set('account', credentials.username);
      const headers: Record<string, string> =
        credentials?.kind === 'basic'
          ? { authorization: basicAuth(credentials.username, credentials.password) }
          : {};
      res = await this.send('GET', url, headers, undefined, true, signal);
    }
    if (res.statusCode !== 200) {
      const body = await readCapped(res.body, errorBodyLimit);
      const failure: HttpFailure = {
        method,
        url: redactUrl(url),
        status: res.statusCode,
        errors: parseErrorBody(body),
      };
      if (res.statusCode === 401 || res.statusCode === 403) {
        throw new UnauthorizedError(this.host, this.repository, failure, credentials !== undefined);
      }
      throw new RegistryError(failure);
    }
    const token = parseTokenResponse(await readCapped(res.body, 1 << 20, 'token response'), Date.now());
    if (token === undefined) {
      throw new RegistryError(
        { method, url: redactUrl(url), status: res.statusCode },
        `${method} ${redactUrl(url)}: the token server sent no token`,
      );
    }
    return token;
  }

  /** Sends, following redirects for GET and HEAD; Authorization goes only to the registry's own origin. */
  private async sendFollowing(
    spec: RequestSpec,
    base: URL,
    url: URL,
    authorization: string | undefined,
    idempotent: boolean,
  ): Promise<Response> {
    const origin = base.origin;
    let current = url;
    let method = spec.method;
    for (let hops = 0; ; hops++) {
      const headers: Record<string, string> = { ...spec.headers };
      if (authorization !== undefined && current.origin === origin) headers.authorization = authorization;
      const res = await this.send(
        method,
        current,
        headers,
        hops === 0 ? spec.body : undefined,
        idempotent,
        spec.signal,
      );
      const location = header(res, 'location');
      if (
        (method === 'GET' || method === 'HEAD') &&
        redirectStatuses.has(res.statusCode) &&
        location !== undefined
      ) {
        await res.body.dump();
        if (hops >= maxRedirects) {
          throw new RegistryError(
            { method, url: redactUrl(current), status: res.statusCode },
            `${method} ${redactUrl(url)}: too many redirects`,
          );
        }
        const next = new URL(location, current);
        if (next.protocol !== 'https:' && next.protocol !== 'http:') {
          throw new RegistryError(
            { method, url: redactUrl(current), status: res.statusCode },
            `${method} ${redactUrl(url)}: redirected to a URL that is not http(s)`,
          );
        }
        current = next;
        if (res.statusCode === 303 && method !== 'HEAD') method = 'GET';
        continue;
      }
      return Object.assign(res, { url: current });
    }
  }

  /**
   * One request with retries: network failures and retryable statuses (429, 5xx) are tried again,
   * up to `retryTimes`, after Retry-After or an exponential, jittered delay. A request whose body is
   * a stream is never retried here (the bytes are gone): its caller restarts from what the registry
   * reports.
   */
  async send(
    method: Method,
    url: URL,
    headers: Record<string, string>,
    body: Buffer | string | Readable | undefined,
    idempotent: boolean,
    signal: AbortSignal | undefined,
  ): Promise<Response> {
    const agent = agentFor(await this.hostTls());
    const replayable = !(body instanceof Readable);
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted();
      const mayRetry = idempotent && replayable && attempt < this.policy.times;
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, {
          method,
          headers: { 'user-agent': this.userAgent, ...headers },
          body: body ?? null,
          dispatcher: agent,
          signal: signal ?? null,
          idempotent,
        });
      } catch (error) {
        if (signal?.aborted) throw signal.reason ?? error;
        if (mayRetry && isRetryableNetworkError(error)) {
          await sleep(backoffMs(this.policy, attempt), undefined, signal ? { signal } : {});
          continue;
        }
        if (isRetryableNetworkError(error) || isConnectFailure(error)) {
          throw new ConnectionError(url.host, `${method} ${redactUrl(url)}: ${reasonOf(error)}`, {
            cause: error,
          });
        }
        throw error;
      }
      if (mayRetry && isRetryableStatus(res.statusCode)) {
        const after = retryAfterMs(res.headers['retry-after']);
        if (after === undefined || after <= maxRetryAfterMs) {
          await res.body.dump();
          await sleep(after ?? backoffMs(this.policy, attempt), undefined, signal ? { signal } : {});
          continue;
        }
      }
      return Object.assign(res, { url });
    }
  }
}

function isConnectFailure(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return (
    typeof code === 'string' &&
    (code.startsWith('ERR_SSL') ||
      code.startsWith('ERR_TLS') ||
      code === 'ENOTFOUND' ||
      code === 'EPROTO' ||
      code === 'DEPTH_ZERO_SELF_SIGNED_CERT' ||
      code === 'SELF_SIGNED_CERT_IN_CHAIN' ||
      code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ||
      code === 'CERT_HAS_EXPIRED' ||
      code === 'ERR_TLS_CERT_ALTNAME_INVALID')
  );
}

/** A short reason for a network failure, without anything a URL or header could have carried. */
export function reasonOf(error: unknown): string {
  if (error instanceof ConnectionError) return error.message;
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${error.message} (${code})` : error.message;
  }
  return String(error);
}
