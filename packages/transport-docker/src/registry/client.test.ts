import { copyImage, insecureAcceptAnythingPolicy, PolicyContext, UnauthorizedError } from '@img/core';
import {
  MemoryStore,
  type RegistryServer,
  randomImage,
  readImage,
  startRegistry,
  type TestImage,
} from '@img/testing';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRegistryLogin, dockerTransport } from '../index.js';
import { useTestConfig } from '../test-helpers.js';

const policy = new PolicyContext(insecureAcceptAnythingPolicy);
const user = { username: 'testuser', password: 'testpassword' };

function withCreds(credentials: { username: string; password: string }) {
  return { transportOptions: { docker: { credentials, retryDelayMs: 10 } } };
}

describe('basic auth over TLS', () => {
  let registry: RegistryServer;
  let image: TestImage;
  beforeAll(async () => {
    registry = await startRegistry({ auth: 'htpasswd', tls: true });
    useTestConfig({ tls: { [registry.host]: { ca: [Buffer.from(registry.caPem as string)] } } });
    image = await randomImage({ seed: 31, layers: 2, layerSize: 2000 });
  });
  afterAll(() => registry?.stop());

  it('pushes and pulls with the credentials, over https with the registry CA', async () => {
    const ref = dockerTransport.parseReference(`//${registry.host}/secure/app:v1`);
    await copyImage(ref, new MemoryStore('basic').add('x', image), {
      policy,
      destinationCtx: withCreds(user),
    });
    const source = await ref.newImageSource(withCreds(user));
    expect(Buffer.from((await source.getManifest()).bytes).equals(image.manifest)).toBe(true);
  });

  it('fails with one clear UnauthorizedError line that holds no secret', async () => {
    const ref = dockerTransport.parseReference(`//${registry.host}/secure/app:v1`);
    const error = await ref
      .newImageSource(withCreds({ username: 'testuser', password: 'wrong-secret' }))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(UnauthorizedError);
    expect((error as Error).message).toBe(
      `unauthorized: ${registry.host} rejected the credentials for secure/app (HTTP 401)`,
    );
    expect((error as Error).message).not.toContain('wrong-secret');
    const anonymous = await ref.newImageSource({}).catch((e: unknown) => e);
    expect(anonymous).toMatchObject({ code: 'IMG_UNAUTHORIZED', hadCredentials: false });
  });

  it('checks a login with GET /v2/', async () => {
    await expect(checkRegistryLogin(registry.host, { kind: 'basic', ...user }, {})).resolves.toBeUndefined();
    await expect(
      checkRegistryLogin(registry.host, { kind: 'basic', username: 'testuser', password: 'nope' }, {}),
    ).rejects.toBeInstanceOf(UnauthorizedError);
  });
});

describe('token auth', () => {
  let registry: RegistryServer;
  let image: TestImage;
  beforeAll(async () => {
    registry = await startRegistry({ auth: 'token' });
    useTestConfig({ insecureHosts: [registry.host] });
    image = await randomImage({ seed: 32, layers: 2, layerSize: 2000 });
  });
  afterAll(() => registry?.stop());

  it('asks a token per repository and action, once, and mounts with pull on the source', async () => {
    const issuer = registry.tokenIssuer!;
    issuer.reset();
    const a = dockerTransport.parseReference(`//${registry.host}/team/a:v1`);
    const b = dockerTransport.parseReference(`//${registry.host}/team/b:v1`);
    await copyImage(a, new MemoryStore('tok').add('x', image), { policy, destinationCtx: withCreds(user) });
    expect(issuer.requests.map((r) => [r.method, r.authForm, r.scopes])).toEqual([
      ['GET', 'basic', ['repository:team/a:pull,push']],
    ]);
    issuer.reset();
    const result = await copyImage(b, a, {
      policy,
      sourceCtx: withCreds(user),
      destinationCtx: withCreds(user),
    });
    expect(result.blobsReused).toBe(3);
    const scopes = issuer.requests.map((r) => r.scopes.join(' '));
    expect(scopes).toContain('repository:team/a:pull');
    expect(scopes).toContain('repository:team/b:pull,push');
    expect(scopes).toContain('repository:team/b:pull,push repository:team/a:pull');
    const back = await readImage(b, withCreds(user));
    expect(back.manifestDigest).toBe(image.manifestDigest);
  });

  it('exchanges an identity token with POST grant_type=refresh_token', async () => {
    const issuer = registry.tokenIssuer!;
    const form = new URLSearchParams({
      grant_type: 'password',
      username: user.username,
      password: user.password,
      service: issuer.service,
      client_id: 'test',
    });
    const res = await request(issuer.realm, {
      method: 'POST',
      body: form.toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    const { refresh_token: identityToken } = (await res.body.json()) as { refresh_token: string };
    issuer.reset();
    useTestConfig({
      insecureHosts: [registry.host],
      credentials: async () => ({ kind: 'identity-token', identityToken }),
    });
    try {
      const ref = dockerTransport.parseReference(`//${registry.host}/team/a:v1`);
      const source = await ref.newImageSource({});
      expect(Buffer.from((await source.getManifest()).bytes).equals(image.manifest)).toBe(true);
      expect(issuer.requests.map((r) => [r.method, r.authForm, r.granted])).toEqual([
        ['POST', 'refresh_token', true],
      ]);
      expect(identityToken).not.toBe('');
    } finally {
      useTestConfig({ insecureHosts: [registry.host] });
    }
  });

  it('checks a login against the token server', async () => {
    await expect(
      checkRegistryLogin(registry.host, { kind: 'basic', ...user }, { tlsVerify: false }),
    ).resolves.toBeUndefined();
    await expect(
      checkRegistryLogin(
        registry.host,
        { kind: 'basic', username: 'testuser', password: 'bad' },
        { tlsVerify: false },
      ),
    ).rejects.toBeInstanceOf(UnauthorizedError);
  });
});

describe('unreachable registries', () => {
  it('fails with ConnectionError naming the host, without credentials in the message', async () => {
    // A port that was just free: listen on 0, note it, close.
    const { createServer } = await import('node:net');
    const server = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as { port: number }).port;
    await new Promise((r) => server.close(r));
    const host = `127.0.0.1:${port}`;
    useTestConfig({ insecureHosts: [host] });
    const error = await dockerTransport
      .parseReference(`//${host}/app:v1`)
      .newImageSource({
        transportOptions: {
          docker: { retryTimes: 1, retryDelayMs: 10, credentials: { username: 'u', password: 'hunter2' } },
        },
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'IMG_CONNECTION', host });
    expect((error as Error).message).toMatch(new RegExp(`^cannot reach ${host}: `));
    expect((error as Error).message).not.toContain('hunter2');
  });
});
