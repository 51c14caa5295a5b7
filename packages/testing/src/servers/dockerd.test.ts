import { access } from 'node:fs/promises';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { startCountingProxy, startDockerd } from './dockerd.js';

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

describe('startDockerd', () => {
  it('starts a daemon that answers, counts requests through a proxy, and stops it with its containerd', async () => {
    const daemon = await startDockerd();
    const proxy = await startCountingProxy(daemon.socket);
    try {
      expect(daemon.socket.length).toBeLessThan(100);
      const version = JSON.parse(await daemon.docker(['version', '--format', '{{json .Server}}']));
      expect(version.ApiVersion).toMatch(/^1\.\d+$/);
      const res = await request('http://localhost/_ping', {
        dispatcher: new (await import('undici')).Agent({ connect: { socketPath: proxy.socket } }),
      });
      expect(await res.body.text()).toBe('OK');
      expect(proxy.requests).toEqual([
        { method: 'GET', path: '/_ping', requestBytes: 0, responseBytes: 2, status: 200 },
      ]);
    } finally {
      await proxy.close();
      await daemon.stop();
    }
    expect(await exists(`/proc/${daemon.pid}`)).toBe(false);
    expect(await exists(daemon.dir)).toBe(false);
  }, 120_000);
});
