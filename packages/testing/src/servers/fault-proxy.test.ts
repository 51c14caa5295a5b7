import { createHash, randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BLOB_GET, BLOB_UPLOAD, type FaultProxy, startFaultProxy } from './fault-proxy.js';
import { DEFAULT_REGISTRY_USER, type RegistryServer, startRegistry } from './registry.js';

const blob = randomBytes(256 * 1024);
const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;

/** Reads a whole response body, resolving with what arrived and the error that ended it, if any. */
async function readAll(body: AsyncIterable<Buffer>): Promise<{ bytes: number; error?: unknown }> {
  let bytes = 0;
  try {
    for await (const chunk of body) bytes += chunk.length;
    return { bytes };
  } catch (error) {
    return { bytes, error };
  }
}

describe('startFaultProxy', () => {
  let registry: RegistryServer;
  let proxy: FaultProxy;

  /** Pushes `data` through the proxy in one PATCH and a closing PUT; returns the PATCH status. */
  async function pushBlob(repo: string, data: Buffer): Promise<{ location: string; put: number }> {
    const start = await request(`${proxy.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    await start.body.dump();
    expect(start.statusCode).toBe(202);
    const location = String(start.headers.location);
    const patch = await request(new URL(location, proxy.url), {
      method: 'PATCH',
      body: data,
      headers: { 'content-type': 'application/octet-stream' },
    });
    await patch.body.dump();
    const next = new URL(String(patch.headers.location), proxy.url);
    next.searchParams.set('digest', digest);
    const put = await request(next, { method: 'PUT' });
    await put.body.dump();
    return { location, put: put.statusCode };
  }

  beforeAll(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy({ target: registry.url });
    const { put } = await pushBlob('app', blob);
    expect(put).toBe(201);
  });
  afterAll(async () => {
    await proxy.close();
    await registry.stop();
  });
  beforeEach(() => {
    proxy.clearFaults();
    proxy.reset();
  });

  it('keeps upload URLs pointing at the proxy and counts the bytes pushed', async () => {
    const { location, put } = await pushBlob('other', blob);
    expect(put).toBe(201);
    expect(new URL(location, 'http://unused').host).toBe(proxy.host);
    await proxy.settled();
    expect(proxy.count(BLOB_UPLOAD)).toBe(3);
    expect(proxy.count({ method: 'PATCH' })).toBe(1);
    expect(proxy.blobBytesUp).toBe(blob.length);
    expect(proxy.requests.map((r) => [r.method, r.status])).toEqual([
      ['POST', 202],
      ['PATCH', 202],
      ['PUT', 201],
    ]);
  });

  it('counts requests and downloaded bytes', async () => {
    const res = await request(`${proxy.url}/v2/app/blobs/${digest}`);
    expect((await readAll(res.body)).bytes).toBe(blob.length);
    await proxy.settled();
    expect(proxy.count(BLOB_GET)).toBe(1);
    expect(proxy.count({ method: 'GET', path: '/v2/app/' })).toBe(1);
    expect(proxy.blobBytesDown).toBe(blob.length);
    expect(proxy.requests[0]).toMatchObject({ status: 200, responseBytes: blob.length, done: true });
  });

  it('cuts a blob body mid-way once, then serves it whole', async () => {
    const fault = proxy.addFault({
      match: BLOB_GET,
      action: { kind: 'reset-response', afterBytes: 1000 },
      times: 1,
    });
    const first = await request(`${proxy.url}/v2/app/blobs/${digest}`);
    expect(first.statusCode).toBe(200);
    expect(first.headers['content-length']).toBe(String(blob.length));
    const cut = await readAll(first.body);
    expect(cut.error).toBeDefined();
    expect(cut.bytes).toBe(1000);
    const second = await request(`${proxy.url}/v2/app/blobs/${digest}`);
    expect((await readAll(second.body)).bytes).toBe(blob.length);
    await proxy.settled();
    expect(fault.applied).toBe(1);
    expect(proxy.blobBytesDown).toBe(1000 + blob.length);
    expect(proxy.requests.map((r) => r.faults)).toEqual([['reset-response'], []]);
  });

  it('applies a rule to every k-th matching request', async () => {
    proxy.addFault({
      match: { method: 'GET', path: '/v2/' },
      action: { kind: 'status', status: 503 },
      every: 2,
    });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await request(`${proxy.url}/v2/`);
      await res.body.dump();
      statuses.push(res.statusCode);
    }
    expect(statuses).toEqual([200, 503, 200, 503]);
  });

  it('answers 429 with Retry-After without reaching the registry', async () => {
    proxy.addFault({ match: BLOB_GET, action: { kind: 'too-many-requests', retryAfter: 2 }, times: 1 });
    const res = await request(`${proxy.url}/v2/app/blobs/${digest}`);
    const body = (await res.body.json()) as { errors: Array<{ code: string }> };
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBe('2');
    expect(body.errors[0]?.code).toBe('TOOMANYREQUESTS');
  });

  it('cuts an upload mid-way so the registry holds only part of it', async () => {
    const start = await request(`${proxy.url}/v2/cut/blobs/uploads/`, { method: 'POST' });
    await start.body.dump();
    const location = new URL(String(start.headers.location), proxy.url);
    proxy.addFault({
      match: { method: 'PATCH' },
      action: { kind: 'reset-request', afterBytes: 64 * 1024 },
      times: 1,
    });
    await expect(
      request(location, {
        method: 'PATCH',
        body: blob,
        headers: { 'content-type': 'application/octet-stream' },
      }),
    ).rejects.toThrow();
    await proxy.settled();
    expect(proxy.requests.at(-1)).toMatchObject({
      method: 'PATCH',
      requestBytes: 64 * 1024,
      faults: ['reset-request'],
    });
    // The registry got exactly the forwarded part and never completed the PATCH; distribution
    // then refuses the stale upload URL (its state says offset 0, the upload holds 64 KiB).
    const logged = /client disconnected during blob PATCH.*copied=65536/;
    for (let i = 0; i < 100 && !logged.test(registry.logs()); i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(registry.logs()).toMatch(logged);
    const status = await request(location);
    const body = (await status.body.json()) as { errors: Array<{ code: string }> };
    expect(status.statusCode).toBe(404);
    expect(body.errors[0]?.code).toBe('BLOB_UPLOAD_INVALID');
  });

  it('loses the response to a completed PUT with afterBytes 0', async () => {
    const start = await request(`${proxy.url}/v2/lost/blobs/uploads/`, { method: 'POST' });
    await start.body.dump();
    const location = new URL(String(start.headers.location), proxy.url);
    location.searchParams.set('digest', digest);
    proxy.addFault({ match: { method: 'PUT' }, action: { kind: 'reset-response', afterBytes: 0 }, times: 1 });
    await expect(request(location, { method: 'PUT', body: blob })).rejects.toThrow();
    const head = await request(`${proxy.url}/v2/lost/blobs/${digest}`, { method: 'HEAD' });
    await head.body.dump();
    expect(head.statusCode).toBe(200);
  });

  it('delays matching requests and resets with RST on request', async () => {
    proxy.addFault({ match: { pathMatch: /^\/v2\/$/ }, action: { kind: 'delay', ms: 150 }, times: 1 });
    const started = Date.now();
    const res = await request(`${proxy.url}/v2/`);
    await res.body.dump();
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    proxy.addFault({
      match: BLOB_GET,
      action: { kind: 'reset-response', afterBytes: 10, rst: true },
      times: 1,
    });
    const cut = await request(`${proxy.url}/v2/app/blobs/${digest}`).then(
      (r) => readAll(r.body),
      (error: unknown) => ({ bytes: 0, error }),
    );
    expect(cut.error).toBeDefined();
    expect(cut.bytes).toBeLessThan(blob.length);
  });

  it('throttles a download', async () => {
    proxy.addFault({ match: BLOB_GET, action: { kind: 'throttle', bytesPerSecond: 1024 * 1024 } });
    const started = Date.now();
    const res = await request(`${proxy.url}/v2/app/blobs/${digest}`);
    expect((await readAll(res.body)).bytes).toBe(blob.length);
    // 256 KiB at 1 MiB/s takes about 250 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
  });
});

describe('startFaultProxy, in front of a TLS registry with htpasswd', () => {
  it('serves TLS from the same CA, forwards credentials and keeps upload URLs on the proxy', async () => {
    const registry = await startRegistry({ auth: 'htpasswd', tls: true });
    const proxy = await startFaultProxy({
      target: registry.url,
      ca: registry.caPem!,
      tls: registry.serverTls!,
    });
    const agent = new Agent({ connect: { ca: registry.caPem! } });
    try {
      const { username, password } = DEFAULT_REGISTRY_USER;
      const authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
      expect(proxy.url).toBe(`https://${proxy.host}`);
      const anon = await request(`${proxy.url}/v2/`, { dispatcher: agent });
      await anon.body.dump();
      expect(anon.statusCode).toBe(401);
      const start = await request(`${proxy.url}/v2/app/blobs/uploads/`, {
        method: 'POST',
        dispatcher: agent,
        headers: { authorization },
      });
      await start.body.dump();
      expect(start.statusCode).toBe(202);
      const location = new URL(String(start.headers.location), proxy.url);
      expect(location.origin).toBe(proxy.url);
      location.searchParams.set('digest', digest);
      const put = await request(location, {
        method: 'PUT',
        body: blob,
        dispatcher: agent,
        headers: { authorization },
      });
      await put.body.dump();
      expect(put.statusCode).toBe(201);
      expect(proxy.blobBytesUp).toBe(blob.length);
    } finally {
      await agent.close();
      await proxy.close();
      await registry.stop();
    }
  });
});
