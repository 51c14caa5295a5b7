import { createHash } from 'node:crypto';

/** One challenge of a WWW-Authenticate header (RFC 7235 section 4.1): the scheme, lower-cased, and its parameters. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

const tokenChar = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/**
 * Parses WWW-Authenticate header values into challenges (RFC 7235 section 2.1): several challenges
 * may share one header, separated by commas, and quoted parameter values may hold commas and
 * backslash escapes. Parameter names are lower-cased; token68 forms are kept under `""`.
 */
export function parseChallenges(values: string | string[] | undefined): Challenge[] {
  if (values === undefined) return [];
  const out: Challenge[] = [];
  for (const value of Array.isArray(values) ? values : [values]) out.push(...parseOne(value));
  return out;
}

function parseOne(text: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = text.length;
  const skipSpace = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && tokenChar.test(text[i]!)) i++;
    return text.slice(start, i);
  };
  let current: Challenge | undefined;
  while (i < n) {
    skipSpace();
    if (text[i] === ',') {
      i++;
      continue;
    }
    const token = readToken();
    if (token === '') {
      i++; // a stray character: skip it rather than loop forever
      continue;
    }
    skipSpace();
    if (text[i] === '=' && current !== undefined) {
      // An auth-param: `name=value`, the value a token or a quoted-string (RFC 7235 section 2.1).
      i++;
      skipSpace();
      let value: string;
      if (text[i] === '"') {
        i++;
        let v = '';
        while (i < n && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < n) i++;
          v += text[i];
          i++;
        }
        i++; // the closing quote
        value = v;
      } else {
        const vs = i;
        while (i < n && text[i] !== ',' && text[i] !== ' ' && text[i] !== '\t') i++;
        value = text.slice(vs, i);
      }
      current.params[token.toLowerCase()] = value;
      continue;
    }
    // A new challenge: the scheme, then maybe a token68 (`Negotiate abc==`): a token, any `=`
    // padding, then a comma or the end; anything else after the scheme is a parameter.
    current = { scheme: token.toLowerCase(), params: {} };
    out.push(current);
    skipSpace();
    const rest = i;
    if (readToken() !== '') {
      while (i < n && text[i] === '=') i++;
      const end = i;
      skipSpace();
      if (i >= n || text[i] === ',') current.params[''] = text.slice(rest, end);
      else i = rest;
    } else {
      i = rest;
    }
  }
  return out;
}

/** A bearer token and when it stops being usable (epoch ms). */
export interface CachedToken {
  token: string;
  expiresAt: number;
  /** A refresh token the token server handed out, to use instead of the password next time. */
  refreshToken?: string | undefined;
}

/** docker/distribution "Token Authentication Specification": tokens without expires_in last 60 s. */
export const defaultTokenLifetimeSeconds = 60;

/** A token response body (token or access_token, expires_in, issued_at, refresh_token). */
export function parseTokenResponse(body: Buffer, now: number): CachedToken | undefined {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null) return undefined;
  const r = json as Record<string, unknown>;
  const token =
    typeof r.token === 'string' && r.token !== ''
      ? r.token
      : typeof r.access_token === 'string' && r.access_token !== ''
        ? r.access_token
        : undefined;
  if (token === undefined) return undefined;
  let lifetime =
    typeof r.expires_in === 'number' && r.expires_in > 0 ? r.expires_in : defaultTokenLifetimeSeconds;
  if (lifetime < defaultTokenLifetimeSeconds) lifetime = defaultTokenLifetimeSeconds;
  let issued = now;
  if (typeof r.issued_at === 'string') {
    const t = Date.parse(r.issued_at);
    // A server clock far from ours would make the token look expired or eternal: trust ours then.
    if (Number.isFinite(t) && Math.abs(t - now) < 60_000) issued = t;
  }
  // Renew a little early so that a token never expires between the check and the request.
  const expiresAt = issued + lifetime * 1000 - 5_000;
  const refreshToken =
    typeof r.refresh_token === 'string' && r.refresh_token !== '' ? r.refresh_token : undefined;
  return { token, expiresAt, refreshToken };
}

/**
 * Tokens by (realm, service, scopes, whose credentials), shared by every client of the process so
 * that a source and a destination on one registry, or two copies, ask once.
 */
const tokenCache = new Map<string, CachedToken>();

/** The cache key; credentials enter only as a hash, so the key itself holds no secret. */
export function tokenCacheKey(
  realm: string,
  service: string | undefined,
  scopes: readonly string[],
  credentialIdentity: string,
): string {
  const who = createHash('sha256').update(credentialIdentity).digest('hex').slice(0, 32);
  return JSON.stringify([realm, service ?? '', [...scopes].sort(), who]);
}

/** The cached token under `key`, when it has not expired. */
export function cachedToken(key: string, now = Date.now()): CachedToken | undefined {
  const t = tokenCache.get(key);
  if (t === undefined) return undefined;
  if (t.expiresAt <= now) {
    tokenCache.delete(key);
    return undefined;
  }
  return t;
}

/** Stores a token; the cache is bounded so that a long-running process does not grow without end. */
export function storeToken(key: string, token: CachedToken): void {
  if (tokenCache.size >= 256) {
    const now = Date.now();
    for (const [k, v] of tokenCache) if (v.expiresAt <= now) tokenCache.delete(k);
    if (tokenCache.size >= 256) tokenCache.delete(tokenCache.keys().next().value as string);
  }
  tokenCache.set(key, token);
}

/** Forgets a token the registry refused. */
export function dropToken(key: string): void {
  tokenCache.delete(key);
}

/** `repository:NAME:ACTIONS` (distribution "Token Scope Documentation"). */
export function repositoryScope(repository: string, actions: 'pull' | 'pull,push' | 'delete' | '*'): string {
  return `repository:${repository}:${actions}`;
}
