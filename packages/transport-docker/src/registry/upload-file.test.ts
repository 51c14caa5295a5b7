import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Digest, workerHashThreshold } from '@img/core';
import { type FaultProxy, type RegistryServer, startFaultProxy, startRegistry } from '@img/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dockerConfig } from '../context.js';
import { dockerTransport } from '../index.js';
import { useTestConfig } from '../test-helpers.js';
import { RegistryClient } from './client.js';
import { fileChunkSize, uploadBlobFile } from './upload.js';

const digestOf = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;

describe('uploads from a file', () => {
  let registry: RegistryServer;
  let proxy: FaultProxy;
  let dir: string;
  const fast = { retryDelayMs: 10 };

  beforeAll(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy({ target: registry.url });
    useTestConfig({ insecureHosts: [proxy.host, registry.host] });
    dir = await mkdtemp(join(tmpdir(), 'img-upload-file-'));
  });
  afterAll(async () => {
    await proxy?.close();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    proxy.clearFaults();
    proxy.reset();
  });

  async function blobFile(
    name: string,
    size: number,
  ): Promise<{ path: string; data: Buffer; digest: Digest }> {
    const data = randomBytes(size);
    const path = join(dir, name);
    await writeFile(path, data);
    return { path, data, digest: digestOf(data) };
  }

  function client(repository: string): RegistryClient {
    return new RegistryClient({
      host: proxy.host,
      repository,
      actions: 'pull,push',
      options: fast,
      config: dockerConfig(),
    });
  }

  it('puts a large blob file through the destination, none of it held in memory', async () => {
    const { path, data, digest } = await blobFile('large', workerHashThreshold + 4321);
    const dest = await dockerTransport
      .parseReference(`//${proxy.host}/file-large:v1`)
      .newImageDestination({});
    try {
      let progress = 0;
      const stored = await dest.putBlobFromFile!(
        path,
        { digest, size: data.length },
        {
          onProgress: (n) => {
            progress = n;
          },
        },
      );
      expect(stored).toEqual({ digest, size: data.length });
      expect(progress).toBe(data.length);
      await proxy.settled();
      expect(proxy.count({ method: 'PATCH' })).toBe(Math.ceil(data.length / fileChunkSize));
      expect(proxy.blobBytesUp).toBe(data.length);
      expect((await dest.tryReusingBlob({ digest, size: data.length }))?.how).toBe('present');
    } finally {
      await dest.close();
    }
  });

  it('sends chunks read from the file, and a refused one again', async () => {
    const { path, data, digest } = await blobFile('chunks', 2.5 * 1024 * 1024);
    proxy.addFault({
      match: { method: 'PATCH' },
      action: { kind: 'status', status: 503 },
      times: 1,
      every: 2,
    });
    const stored = await uploadBlobFile(
      client('file-chunks'),
      path,
      { repository: 'file-chunks', digest, size: data.length, signal: undefined },
      { times: 3, baseDelayMs: 10 },
      1024 * 1024,
    );
    expect(stored).toEqual({ digest, size: data.length });
    await proxy.settled();
    expect(proxy.requests.filter((r) => r.method === 'PATCH').map((r) => r.status)).toEqual([
      202, 503, 202, 202,
    ]);
    const dest = await dockerTransport
      .parseReference(`//${proxy.host}/file-chunks:v1`)
      .newImageDestination({});
    try {
      expect((await dest.tryReusingBlob({ digest, size: data.length }))?.how).toBe('present');
    } finally {
      await dest.close();
    }
  });

  it('refuses a file whose digest does not match and cancels the upload', async () => {
    const { path, data } = await blobFile('mismatch', 1.5 * 1024 * 1024);
    const claimed = digestOf(Buffer.from('something else'));
    await expect(
      uploadBlobFile(
        client('file-mismatch'),
        path,
        { repository: 'file-mismatch', digest: claimed, size: data.length, signal: undefined },
        { times: 0, baseDelayMs: 10 },
        1024 * 1024,
      ),
    ).rejects.toMatchObject({ code: 'IMG_DIGEST_MISMATCH' });
    await proxy.settled();
    expect(proxy.count({ method: 'DELETE', path: '/blobs/uploads/' })).toBe(1);
    expect(proxy.count({ method: 'PUT' })).toBe(0);
  });

  it('refuses a file of another size than expected before sending anything', async () => {
    const { path, data, digest } = await blobFile('short', 1000);
    await expect(
      uploadBlobFile(
        client('file-short'),
        path,
        { repository: 'file-short', digest, size: data.length + 1, signal: undefined },
        { times: 0, baseDelayMs: 10 },
      ),
    ).rejects.toMatchObject({ code: 'IMG_SIZE_MISMATCH' });
    await proxy.settled();
    expect(proxy.count()).toBe(0);
  });
});
