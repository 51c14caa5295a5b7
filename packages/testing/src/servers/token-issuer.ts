import {
  createPrivateKey,
  type KeyObject,
  randomBytes,
  sign,
  timingSafeEqual,
  X509Certificate,
} from 'node:crypto';
import { once } from 'node:events';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { RegistryUser } from './registry.js';
import { makeSelfSigned } from './tls.js';

/** One requested or granted resource, as in the token's `access` claim. */
export interface TokenAccess {
  /** `repository` or `registry`. */
  readonly type: string;
  /** A repository name (`library/app`) or `catalog`. */
  readonly name: string;
  readonly actions: readonly string[];
}

/** What an ACL decides on: who asks for what. */
export interface TokenAclRequest extends TokenAccess {
  /** The authenticated user, or undefined for anonymous requests. */
  readonly username: string | undefined;
}

/** How a token request authenticated itself. */
export type TokenAuthForm = 'anonymous' | 'basic' | 'password' | 'refresh_token';

/** One request the token issuer received, for tests to assert on (never holds a credential). */
export interface TokenRequestRecord {
  readonly method: string;
  readonly path: string;
  /** The `scope` values asked for, each as sent (`repository:app:pull,push`). */
  readonly scopes: readonly string[];
  readonly service: string | undefined;
  readonly authForm: TokenAuthForm;
  /** The user named by the credentials (also when they were refused). */
  readonly username: string | undefined;
  /** True when a token was issued. */
  readonly granted: boolean;
  /** What the issued token allows (empty when refused or nothing allowed). */
  readonly access: readonly TokenAccess[];
  readonly status: number;
  /** True when the response carried a `refresh_token`. */
  readonly refreshTokenIssued: boolean;
}

/** Options of {@link startTokenIssuer}. */
export interface TokenIssuerOptions {
  /** Accepted users (default: none, so only anonymous tokens). */
  readonly users?: readonly RegistryUser[];
  /** Grant `pull` on every repository to anonymous requests (default false: no access). */
  readonly anonymousPull?: boolean;
  /**
   * Decides which of the requested actions to grant. Default: an authenticated user gets every
   * action asked for; anonymous gets `pull` on repositories when `anonymousPull`, else nothing.
   */
  readonly acl?: (request: TokenAclRequest) => readonly string[];
  /**
   * The `expires_in` of issued tokens, in seconds (default 300). The JWT's `exp` is set so that
   * the registry, despite its 60 s leeway, refuses the token right after `expires_in` seconds.
   * Note: docker and containers/image treat an `expires_in` below 60 as 60.
   */
  readonly expiresIn?: number;
  /** The token's audience, matched against the registry's `auth.token.service` (default `img-test-registry`). */
  readonly service?: string;
  /** The token's issuer, matched against `auth.token.issuer` (default `img-test-issuer`). */
  readonly issuer?: string;
  /**
   * Answer `POST /token` (the OAuth2 flow) (default true). With false, POST gets 404, which
   * makes docker and containers/image fall back to GET.
   */
  readonly oauthPost?: boolean;
  /** Serve HTTPS with this certificate and key (PEM) instead of HTTP. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Where to write the signing key and certificate; a registry's `rootcertbundle` is `<dir>/token-signer.crt`. */
  readonly dir: string;
}

/** The parts of {@link TokenIssuerOptions} that {@link TokenIssuer.configure} may change at runtime. */
export type TokenIssuerSettings = Pick<
  TokenIssuerOptions,
  'anonymousPull' | 'acl' | 'expiresIn' | 'oauthPost'
>;

/** A running token issuer (docker's token authentication spec), started by {@link startTokenIssuer}. */
export interface TokenIssuer {
  /** The realm URL to put in the registry config: `http(s)://127.0.0.1:PORT/token`. */
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  /** The certificate (PEM file) of the key that signs tokens: the registry's `rootcertbundle`. */
  readonly rootCertBundle: string;
  /** Every request received so far, oldest first. */
  readonly requests: readonly TokenRequestRecord[];
  /** Forgets the recorded requests. */
  reset(): void;
  /** Changes settings for the following requests. */
  configure(settings: TokenIssuerSettings): void;
  /** Invalidates every refresh token issued so far. */
  revokeRefreshTokens(): void;
  close(): Promise<void>;
}

const DEFAULT_SERVICE = 'img-test-registry';
const DEFAULT_ISSUER = 'img-test-issuer';
/** distribution accepts a token up to 60 s after its `exp` (token.go, `Leeway`). */
const REGISTRY_LEEWAY_SECONDS = 60;

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** Parses `type[(class)]:name:actions`; the name may itself hold colons (host:port in proxies). */
export function parseScope(scope: string): TokenAccess | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const type = scope.slice(0, first).replace(/\(.*\)$/, '');
  return {
    type,
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter((a) => a !== ''),
  };
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function readForm(req: IncomingMessage, limit = 64 * 1024): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error('token request body too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  extra: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...extra,
  });
  res.end(text);
}

/**
 * Starts a token server on 127.0.0.1 for a registry in `auth.token` mode: checks credentials,
 * grants scopes through an ACL and signs JWTs (ES256, `x5c` header) with a key whose
 * self-signed certificate is {@link TokenIssuer.rootCertBundle}. Serves `GET /token` (basic
 * auth, `offline_token=true` adds a refresh token) and `POST /token` (`grant_type=password`
 * or `refresh_token`, always returns a refresh token). Records every request.
 */
export async function startTokenIssuer(options: TokenIssuerOptions): Promise<TokenIssuer> {
  const signer = await makeSelfSigned(options.dir, 'token-signer', 'img-test-token-signer');
  const key: KeyObject = createPrivateKey(signer.keyPem);
  const x5c = [new X509Certificate(signer.certPem).raw.toString('base64')];
  const service = options.service ?? DEFAULT_SERVICE;
  const issuer = options.issuer ?? DEFAULT_ISSUER;
  const users = new Map((options.users ?? []).map((u) => [u.username, u.password]));
  let settings: TokenIssuerSettings = {
    anonymousPull: options.anonymousPull ?? false,
    expiresIn: options.expiresIn ?? 300,
    oauthPost: options.oauthPost ?? true,
    ...(options.acl ? { acl: options.acl } : {}),
  };
  const refreshTokens = new Map<string, string>();
  const requests: TokenRequestRecord[] = [];

  const decide = (request: TokenAclRequest): readonly string[] => {
    if (settings.acl) return settings.acl(request).filter((a) => request.actions.includes(a));
    if (request.username !== undefined) return request.actions;
    if (settings.anonymousPull && request.type === 'repository') {
      return request.actions.filter((a) => a === 'pull');
    }
    return [];
  };

  const issue = (username: string | undefined, scopes: readonly string[]) => {
    const access: TokenAccess[] = [];
    for (const scope of scopes) {
      const asked = parseScope(scope);
      if (!asked) continue;
      const actions = decide({ ...asked, username });
      if (actions.length > 0) access.push({ type: asked.type, name: asked.name, actions: [...actions] });
    }
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = settings.expiresIn ?? 300;
    const header = { typ: 'JWT', alg: 'ES256', x5c };
    const claims = {
      iss: issuer,
      sub: username ?? '',
      aud: service,
      // Compensate the registry's leeway so it refuses the token right after expires_in.
      exp: now + expiresIn - REGISTRY_LEEWAY_SECONDS,
      nbf: now - 1,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access,
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    // JWS ES256 wants r||s, not DER (RFC 7518 section 3.4).
    const signature = sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' });
    return {
      token: `${signingInput}.${b64url(signature)}`,
      access,
      expiresIn,
      issuedAt: new Date(now * 1000).toISOString(),
    };
  };

  const newRefreshToken = (username: string): string => {
    const token = randomBytes(24).toString('base64url');
    refreshTokens.set(token, username);
    return token;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    const record = (r: Omit<TokenRequestRecord, 'method' | 'path'>) =>
      requests.push({ method, path: url.pathname, ...r });
    if (url.pathname !== '/token' || (method !== 'GET' && method !== 'POST')) {
      req.resume();
      record({
        scopes: [],
        service: undefined,
        authForm: 'anonymous',
        username: undefined,
        granted: false,
        access: [],
        status: 404,
        refreshTokenIssued: false,
      });
      sendJson(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'not found' }] });
      return;
    }

    if (method === 'GET') {
      const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ').filter(Boolean));
      const reqService = url.searchParams.get('service') ?? undefined;
      const authorization = req.headers.authorization;
      let username: string | undefined;
      let authForm: TokenAuthForm = 'anonymous';
      if (authorization?.toLowerCase().startsWith('basic ')) {
        authForm = 'basic';
        const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        username = colon < 0 ? decoded : decoded.slice(0, colon);
        const password = colon < 0 ? '' : decoded.slice(colon + 1);
        const expected = users.get(username);
        if (expected === undefined || !sameSecret(expected, password)) {
          record({
            scopes,
            service: reqService,
            authForm,
            username,
            granted: false,
            access: [],
            status: 401,
            refreshTokenIssued: false,
          });
          sendJson(
            res,
            401,
            { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] },
            { 'www-authenticate': 'Basic realm="img-test-token"' },
          );
          return;
        }
      }
      const out = issue(username, scopes);
      const refresh =
        username !== undefined && url.searchParams.get('offline_token') === 'true'
          ? newRefreshToken(username)
          : undefined;
      record({
        scopes,
        service: reqService,
        authForm,
        username,
        granted: true,
        access: out.access,
        status: 200,
        refreshTokenIssued: refresh !== undefined,
      });
      sendJson(res, 200, {
        token: out.token,
        access_token: out.token,
        expires_in: out.expiresIn,
        issued_at: out.issuedAt,
        ...(refresh ? { refresh_token: refresh } : {}),
      });
      return;
    }

    // POST: the OAuth2 flow of the token authentication spec ("oauth.md").
    const form = await readForm(req);
    const scopes = form.getAll('scope').flatMap((s) => s.split(' ').filter(Boolean));
    const reqService = form.get('service') ?? undefined;
    const grantType = form.get('grant_type');
    const fail = (status: number, authForm: TokenAuthForm, username: string | undefined, code: string) => {
      record({
        scopes,
        service: reqService,
        authForm,
        username,
        granted: false,
        access: [],
        status,
        refreshTokenIssued: false,
      });
      sendJson(res, status, { error: code });
    };
    if (!settings.oauthPost) {
      fail(404, grantType === 'refresh_token' ? 'refresh_token' : 'password', undefined, 'not_found');
      return;
    }
    let username: string | undefined;
    let authForm: TokenAuthForm;
    if (grantType === 'password') {
      authForm = 'password';
      username = form.get('username') ?? '';
      const expected = users.get(username);
      if (expected === undefined || !sameSecret(expected, form.get('password') ?? '')) {
        fail(401, authForm, username, 'invalid_grant');
        return;
      }
    } else if (grantType === 'refresh_token') {
      authForm = 'refresh_token';
      username = refreshTokens.get(form.get('refresh_token') ?? '');
      if (username === undefined) {
        fail(401, authForm, undefined, 'invalid_grant');
        return;
      }
    } else {
      fail(400, 'anonymous', undefined, 'unsupported_grant_type');
      return;
    }
    const out = issue(username, scopes);
    const refresh =
      grantType === 'refresh_token' ? (form.get('refresh_token') ?? '') : newRefreshToken(username);
    record({
      scopes,
      service: reqService,
      authForm,
      username,
      granted: true,
      access: out.access,
      status: 200,
      refreshTokenIssued: true,
    });
    sendJson(res, 200, {
      access_token: out.token,
      scope: scopes.join(' '),
      expires_in: out.expiresIn,
      issued_at: out.issuedAt,
      refresh_token: refresh,
    });
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
      else res.destroy();
    });
  };
  const server: Server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, listener)
    : createHttpServer(listener);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  return {
    realm: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}/token`,
    service,
    issuer,
    rootCertBundle: signer.certFile,
    requests,
    reset() {
      requests.length = 0;
    },
    configure(next) {
      settings = { ...settings, ...next };
    },
    revokeRefreshTokens() {
      refreshTokens.clear();
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
