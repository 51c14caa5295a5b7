import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RegistryServer, startRegistry } from './registry.js';

describe('startRegistry, plain HTTP', () => {
  let registry: RegistryServer;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(() => registry.stop());

  it('answers /v2/ anonymously', async () => {
    const res = await request(`${registry.url}/v2/`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['docker-distribution-api-version']).toBe('registry/2.0');
    await res.body.dump();
    expect(registry.host).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(registry.scheme).toBe('http');
  });

  it('stores a pushed blob under storageDir', async () => {
    const body = Buffer.from('hello');
    const digest = 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824';
    const start = await request(`${registry.url}/v2/app/blobs/uploads/`, { method: 'POST' });
    await start.body.dump();
    expect(start.statusCode).toBe(202);
    const location = new URL(String(start.headers.location), registry.url);
    location.searchParams.set('digest', digest);
    const put = await request(location, {
      method: 'PUT',
      body,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(body.length) },
    });
    await put.body.dump();
    expect(put.statusCode).toBe(201);
    const hex = digest.slice('sha256:'.length);
    const onDisk = join(registry.storageDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    expect(await readFile(onDisk, 'utf8')).toBe('hello');
    const get = await request(`${registry.url}/v2/app/blobs/${digest}`);
    expect(await get.body.text()).toBe('hello');
  });
});

describe('startRegistry, stop', () => {
  it('kills its process and removes its temp dir', async () => {
    const registry = await startRegistry();
    const { access } = await import('node:fs/promises');
    await registry.stop();
    expect(() => process.kill(registry.pid, 0)).toThrow();
    await expect(access(registry.dir)).rejects.toThrow();
    await registry.stop();
  });
});
