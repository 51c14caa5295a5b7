import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_REGISTRY_USER, type RegistryServer, startRegistry } from './registry.js';

const basic = (username: string, password: string) =>
  `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;

describe('startRegistry, htpasswd over TLS', () => {
  let registry: RegistryServer;
  let agent: Agent;
  beforeAll(async () => {
    registry = await startRegistry({ auth: 'htpasswd', tls: true });
    agent = new Agent({ connect: { ca: registry.caPem! } });
  });
  afterAll(async () => {
    await agent.close();
    await registry.stop();
  });

  it('serves https with a certificate only the generated CA trusts', async () => {
    expect(registry.url).toBe(`https://${registry.host}`);
    await expect(request(`${registry.url}/v2/`, { dispatcher: new Agent() })).rejects.toThrow(
      /self[- ]signed|unable to verify|certificate/i,
    );
  });

  it('refuses a request without credentials with a basic challenge', async () => {
    const res = await request(`${registry.url}/v2/`, { dispatcher: agent });
    await res.body.dump();
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Basic realm=/);
  });

  it('refuses a wrong password', async () => {
    const res = await request(`${registry.url}/v2/`, {
      dispatcher: agent,
      headers: { authorization: basic(DEFAULT_REGISTRY_USER.username, 'wrong') },
    });
    await res.body.dump();
    expect(res.statusCode).toBe(401);
  });

  it('accepts the user', async () => {
    const { username, password } = DEFAULT_REGISTRY_USER;
    const res = await request(`${registry.url}/v2/`, {
      dispatcher: agent,
      headers: { authorization: basic(username, password) },
    });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
  });

  it('lays out the CA for certs.d and --cert-dir', async () => {
    expect(await readFile(join(registry.certsDir!, registry.host, 'ca.crt'), 'utf8')).toBe(registry.caPem);
    expect(await readFile(join(registry.certDir!, 'ca.crt'), 'utf8')).toBe(registry.caPem);
    expect(await readFile(registry.caFile!, 'utf8')).toBe(registry.caPem);
  });
});

describe('startRegistry, other auth and TLS combinations', () => {
  it('serves TLS without auth', async () => {
    const registry = await startRegistry({ tls: true });
    const agent = new Agent({ connect: { ca: registry.caPem! } });
    try {
      const res = await request(`${registry.url}/v2/`, { dispatcher: agent });
      await res.body.dump();
      expect(res.statusCode).toBe(200);
    } finally {
      await agent.close();
      await registry.stop();
    }
  });

  it('serves htpasswd over plain HTTP with custom users', async () => {
    const registry = await startRegistry({ auth: 'htpasswd', users: [{ username: 'a', password: 'b' }] });
    try {
      const anon = await request(`${registry.url}/v2/`);
      await anon.body.dump();
      expect(anon.statusCode).toBe(401);
      const res = await request(`${registry.url}/v2/`, { headers: { authorization: basic('a', 'b') } });
      await res.body.dump();
      expect(res.statusCode).toBe(200);
    } finally {
      await registry.stop();
    }
  });
});
