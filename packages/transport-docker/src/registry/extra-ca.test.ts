import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { type RegistryServer, startRegistry } from '@img/testing';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { agentFor } from './client.js';
import { deferredExtraCaKey, extraCaCertificates, extraCaFileFor } from './extra-ca.js';

const globals = globalThis as Record<symbol, unknown>;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'img-extra-ca-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));
afterEach(() => {
  delete globals[deferredExtraCaKey];
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

describe('extraCaCertificates', () => {
  it('reads every certificate of a bundle, with text around them, once per process', async () => {
    const file = join(dir, 'bundle.pem');
    await writeFile(file, `# a bundle\n${rootCertificates[0]}\nsome text\n${rootCertificates[1]}\n`);
    const certs = extraCaCertificates(file);
    expect(certs).toEqual([rootCertificates[0], rootCertificates[1]]);
    await writeFile(file, '');
    expect(extraCaCertificates(file)).toBe(certs);
  });

  it('adds none from a missing file or one with a broken certificate, with one warning each, as Node does', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const missing = join(dir, 'missing.pem');
    expect(extraCaCertificates(missing)).toEqual([]);
    const broken = join(dir, 'broken.pem');
    const body = (rootCertificates[2] as string).replace(/\n[A-Za-z0-9+/]{10}/, '\nAAAAAAAAAA');
    await writeFile(broken, `${rootCertificates[0]}\n${body}\n`);
    expect(extraCaCertificates(broken)).toEqual([]);
    expect(warn.mock.calls.map((c) => c[0])).toEqual([
      `Ignoring extra certs from \`${missing}\`, load failed: ENOENT`,
      expect.stringMatching(/^Ignoring extra certs from `.*broken\.pem`, load failed: /),
    ]);
  });
});

describe('extraCaFileFor', () => {
  it("is none when Node loaded NODE_EXTRA_CA_CERTS and the host has no CA (Node's store has them)", () => {
    vi.stubEnv('NODE_EXTRA_CA_CERTS', '/x/env.pem');
    expect(extraCaFileFor([])).toBeUndefined();
    expect(extraCaFileFor([Buffer.from('host ca')])).toBe('/x/env.pem');
  });

  it('is the deferred file when the launcher kept it from Node', () => {
    vi.stubEnv('NODE_EXTRA_CA_CERTS', undefined);
    globals[deferredExtraCaKey] = '/x/deferred.pem';
    expect(extraCaFileFor([])).toBe('/x/deferred.pem');
  });
});

describe('agentFor and NODE_EXTRA_CA_CERTS, against the registry over TLS', () => {
  let registry: RegistryServer;
  beforeAll(async () => {
    registry = await startRegistry({ tls: true });
  });
  afterAll(() => registry?.stop());

  const status = async (tls: Parameters<typeof agentFor>[0]) => {
    try {
      const res = await request(`${registry.url}/v2/`, { dispatcher: agentFor(tls) });
      await res.body.dump();
      return res.statusCode;
    } catch (error) {
      return (error as { code?: string }).code;
    }
  };

  it("trusts a deferred file's CA from the first connection, and not without it", async () => {
    expect(await status({ verify: true, ca: [] })).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    globals[deferredExtraCaKey] = registry.caFile;
    expect(await status({ verify: true, ca: [] })).toBe(200);
  });

  it('without verification, connects over TLS and reads no CA file at all', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    globals[deferredExtraCaKey] = join(dir, 'never-read.pem');
    expect(await status({ verify: false, ca: [] })).toBe(200);
    expect(await status({ verify: false, ca: [Buffer.from('not even a certificate')] })).toBe(200);
    expect(warn).not.toHaveBeenCalled();
  });

  it("keeps NODE_EXTRA_CA_CERTS's CAs beside a host's own CA (a `ca` list replaces Node's store)", async () => {
    vi.stubEnv('NODE_EXTRA_CA_CERTS', registry.caFile);
    const unrelated = Buffer.from(rootCertificates[5] as string);
    expect(await status({ verify: true, ca: [unrelated] })).toBe(200);
  });
});
