import { Agent, request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_REGISTRY_USER, type RegistryServer, startRegistry } from './registry.js';
import { parseScope } from './token-issuer.js';

const { username, password } = DEFAULT_REGISTRY_USER;
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

/** Parses `Bearer realm="…",service="…",scope="…"` (values never contain quotes here). */
function challenge(header: string | string[] | undefined): Record<string, string> {
  const text = String(header);
  expect(text).toMatch(/^Bearer /);
  return Object.fromEntries([...text.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
}

describe('startRegistry, token auth', () => {
  let registry: RegistryServer;
  beforeAll(async () => {
    registry = await startRegistry({ auth: 'token' });
  });
  afterAll(() => registry.stop());
  beforeEach(() => {
    registry.tokenIssuer!.reset();
    registry.tokenIssuer!.configure({ expiresIn: 300, anonymousPull: false });
  });

  /** GETs `path` on the registry, answers its challenge with basic credentials, retries. */
  async function getWithToken(
    path: string,
    method: 'GET' | 'POST' = 'GET',
    creds = basic(username, password),
  ) {
    const first = await request(`${registry.url}${path}`, { method });
    await first.body.dump();
    expect(first.statusCode).toBe(401);
    const c = challenge(first.headers['www-authenticate']);
    const tokenUrl = new URL(c.realm!);
    tokenUrl.searchParams.set('service', c.service!);
    if (c.scope) tokenUrl.searchParams.set('scope', c.scope);
    const tokenRes = await request(tokenUrl, { headers: { authorization: creds } });
    if (tokenRes.statusCode !== 200) return { tokenStatus: tokenRes.statusCode, challenge: c };
    const { token } = (await tokenRes.body.json()) as { token: string };
    const second = await request(`${registry.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}` },
    });
    await second.body.dump();
    return { tokenStatus: 200, status: second.statusCode, challenge: c, token };
  }

  it('runs challenge, token, retry to 200 for the catalog', async () => {
    const r = await getWithToken('/v2/_catalog');
    expect(r.challenge.realm).toBe(registry.tokenIssuer!.realm);
    expect(r.challenge.scope).toBe('registry:catalog:*');
    expect(r.status).toBe(200);
    expect(registry.tokenIssuer!.requests).toEqual([
      expect.objectContaining({
        method: 'GET',
        authForm: 'basic',
        username,
        granted: true,
        scopes: ['registry:catalog:*'],
        access: [{ type: 'registry', name: 'catalog', actions: ['*'] }],
      }),
    ]);
  });

  it('grants push to the user', async () => {
    const r = await getWithToken('/v2/app/blobs/uploads/', 'POST');
    expect(r.challenge.scope).toMatch(/^repository:app:(pull,push|push,pull)$/);
    expect(r.status).toBe(202);
  });

  it('refuses a wrong password at the issuer', async () => {
    const r = await getWithToken('/v2/_catalog', 'GET', basic(username, 'wrong'));
    expect(r.tokenStatus).toBe(401);
    expect(registry.tokenIssuer!.requests).toEqual([
      expect.objectContaining({ authForm: 'basic', username, granted: false, status: 401 }),
    ]);
    expect(JSON.stringify(registry.tokenIssuer!.requests)).not.toContain('wrong');
  });

  it('gives anonymous a token with no access, refused by the registry', async () => {
    const first = await request(`${registry.url}/v2/_catalog`);
    await first.body.dump();
    const c = challenge(first.headers['www-authenticate']);
    const tokenRes = await request(`${c.realm}?service=${c.service}&scope=${c.scope}`);
    const { token } = (await tokenRes.body.json()) as { token: string };
    const second = await request(`${registry.url}/v2/_catalog`, {
      headers: { authorization: `Bearer ${token}` },
    });
    await second.body.dump();
    expect(second.statusCode).toBe(401);
    expect(challenge(second.headers['www-authenticate']).error).toBe('insufficient_scope');
    expect(registry.tokenIssuer!.requests[0]).toMatchObject({
      authForm: 'anonymous',
      granted: true,
      access: [],
    });
  });

  it('grants anonymous pull when configured, never push', async () => {
    registry.tokenIssuer!.configure({ anonymousPull: true });
    const res = await request(
      `${registry.tokenIssuer!.realm}?service=img-test-registry&scope=repository:app:pull,push`,
    );
    await res.body.dump();
    expect(registry.tokenIssuer!.requests[0]!.access).toEqual([
      { type: 'repository', name: 'app', actions: ['pull'] },
    ]);
  });

  it('serves the OAuth2 POST flow with refresh tokens', async () => {
    const post = (form: Record<string, string>) =>
      request(registry.tokenIssuer!.realm, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(form).toString(),
      });
    const common = { service: registry.tokenIssuer!.service, scope: 'registry:catalog:*', client_id: 'img' };
    const first = await post({ ...common, grant_type: 'password', username, password });
    expect(first.statusCode).toBe(200);
    const body = (await first.body.json()) as { access_token: string; refresh_token: string };
    expect(body.refresh_token).toBeTruthy();
    const second = await post({ ...common, grant_type: 'refresh_token', refresh_token: body.refresh_token });
    expect(second.statusCode).toBe(200);
    const { access_token } = (await second.body.json()) as { access_token: string };
    const res = await request(`${registry.url}/v2/_catalog`, {
      headers: { authorization: `Bearer ${access_token}` },
    });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    const bad = await post({ ...common, grant_type: 'password', username, password: 'nope' });
    await bad.body.dump();
    expect(bad.statusCode).toBe(401);
    expect(registry.tokenIssuer!.requests.map((r) => [r.authForm, r.granted])).toEqual([
      ['password', true],
      ['refresh_token', true],
      ['password', false],
    ]);
  });

  it('adds a refresh token to GET with offline_token=true', async () => {
    const url = `${registry.tokenIssuer!.realm}?service=img-test-registry&offline_token=true&client_id=img`;
    const res = await request(url, { headers: { authorization: basic(username, password) } });
    const body = (await res.body.json()) as { refresh_token?: string };
    expect(body.refresh_token).toBeTruthy();
    expect(registry.tokenIssuer!.requests[0]!.refreshTokenIssued).toBe(true);
  });

  it('issues tokens the registry refuses right after expires_in', async () => {
    registry.tokenIssuer!.configure({ expiresIn: 1 });
    const r = await getWithToken('/v2/_catalog');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const again = await request(`${registry.url}/v2/_catalog`, {
      headers: { authorization: `Bearer ${r.token}` },
    });
    await again.body.dump();
    expect(again.statusCode).toBe(401);
    expect(challenge(again.headers['www-authenticate']).error).toBe('invalid_token');
  });
});

describe('startRegistry, token auth over TLS', () => {
  it('serves the issuer over https with the same CA', async () => {
    const registry = await startRegistry({
      auth: 'token',
      tls: true,
      users: [{ username: 'u', password: 'p' }],
    });
    const agent = new Agent({ connect: { ca: registry.caPem! } });
    try {
      expect(registry.tokenIssuer!.realm).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/token$/);
      const tokenRes = await request(`${registry.tokenIssuer!.realm}?service=img-test-registry`, {
        dispatcher: agent,
        headers: { authorization: basic('u', 'p') },
      });
      const { token } = (await tokenRes.body.json()) as { token: string };
      const res = await request(`${registry.url}/v2/`, {
        dispatcher: agent,
        headers: { authorization: `Bearer ${token}` },
      });
      await res.body.dump();
      expect(res.statusCode).toBe(200);
    } finally {
      await agent.close();
      await registry.stop();
    }
  });
});

describe('parseScope', () => {
  it('splits type, name and actions, keeping colons in the name', () => {
    expect(parseScope('repository:app:pull,push')).toEqual({
      type: 'repository',
      name: 'app',
      actions: ['pull', 'push'],
    });
    expect(parseScope('repository(plugin):a/b:pull')).toEqual({
      type: 'repository',
      name: 'a/b',
      actions: ['pull'],
    });
    expect(parseScope('repository:localhost:5000/app:pull')?.name).toBe('localhost:5000/app');
    expect(parseScope('nonsense')).toBeUndefined();
  });
});
