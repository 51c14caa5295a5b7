import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DockerTransportOptions } from '../options.js';
import { certDirFor, readCertDir } from './certs.js';
import { InvalidConfigError } from './errors.js';
import { hostTls } from './index.js';

let root: string;
let options: DockerTransportOptions;

async function testdir(files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    const full = join(root, path);
    await mkdir(dirname(full), { recursive: true });
    await writeFile(full, content);
  }
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'img-certs-'));
  options = { environment: { env: {}, homeDir: join(root, 'home'), systemConfigDir: join(root, 'etc') } };
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('certDirFor', () => {
  it('uses --cert-dir as given', async () => {
    expect(await certDirFor('r.example', { ...options, certDir: '/c' })).toBe('/c');
  });

  it('takes the first existing of ~/.config/containers/certs.d, /etc/containers/certs.d, /etc/docker/certs.d', async () => {
    await testdir({ 'etc/docker/certs.d/r.example:5000/ca.crt': 'D' });
    expect(await certDirFor('r.example:5000', options)).toBe(join(root, 'etc/docker/certs.d/r.example:5000'));
    await testdir({ 'etc/containers/certs.d/r.example:5000/ca.crt': 'C' });
    expect(await certDirFor('r.example:5000', options)).toBe(
      join(root, 'etc/containers/certs.d/r.example:5000'),
    );
    await testdir({ 'home/.config/containers/certs.d/r.example:5000/ca.crt': 'H' });
    expect(await certDirFor('r.example:5000', options)).toBe(
      join(root, 'home/.config/containers/certs.d/r.example:5000'),
    );
    expect(await certDirFor('other.example', options)).toBeUndefined();
  });
});

describe('readCertDir', () => {
  it('reads *.crt as CAs and a *.cert with its *.key as the client pair', async () => {
    await testdir({
      'd/ca.crt': 'CA1',
      'd/extra.crt': 'CA2',
      'd/client.cert': 'CERT',
      'd/client.key': 'KEY',
      'd/README': 'x',
    });
    const content = await readCertDir(join(root, 'd'));
    expect(content.ca.map(String)).toEqual(['CA1', 'CA2']);
    expect(String(content.cert)).toBe('CERT');
    expect(String(content.key)).toBe('KEY');
  });

  it('refuses a client certificate without its key, naming the file', async () => {
    await testdir({ 'd/client.cert': 'CERT' });
    const error = await readCertDir(join(root, 'd')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as Error).message).toContain(join(root, 'd/client.cert'));
    expect((error as Error).message).toContain('missing key client.key');
  });

  it('refuses a key without its certificate', async () => {
    await testdir({ 'd/client.key': 'KEY' });
    await expect(readCertDir(join(root, 'd'))).rejects.toThrow(/missing client certificate client.cert/);
  });

  it('finds nothing in a directory that does not exist', async () => {
    expect(await readCertDir(join(root, 'none'))).toEqual({ ca: [] });
  });
});

describe('hostTls', () => {
  it('verifies and refuses HTTP by default, with the certs.d content', async () => {
    await testdir({ 'etc/containers/certs.d/r.example/ca.crt': 'CA' });
    const tls = await hostTls('r.example', options);
    expect(tls).toMatchObject({ allowHttp: false, verify: true });
    expect(tls.ca.map(String)).toEqual(['CA']);
  });

  it('allows HTTP and skips verification for --tls-verify=false or an insecure registries.conf entry', async () => {
    expect(await hostTls('r.example', { ...options, tlsVerify: false })).toMatchObject({
      allowHttp: true,
      verify: false,
    });
    await testdir({
      'etc/containers/registries.conf': '[[registry]]\nlocation = "r.example"\ninsecure = true\n',
    });
    expect(await hostTls('r.example', options)).toMatchObject({ allowHttp: true, verify: false });
    expect(await hostTls('r.example', { ...options, tlsVerify: true })).toMatchObject({
      allowHttp: false,
      verify: true,
    });
  });
});
