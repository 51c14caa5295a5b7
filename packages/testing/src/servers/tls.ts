import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A certificate and its private key, as PEM files on disk and in memory. */
export interface PemPair {
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
  readonly keyPem: string;
}

/** What {@link makeTestPki} generates: a throw-away CA and a server certificate it signed. */
export interface TestPki {
  readonly ca: PemPair;
  /** Server certificate for `IP:127.0.0.1` and `DNS:localhost`, signed by {@link TestPki.ca}. */
  readonly server: PemPair;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim() || String(err)}`, { cause: err });
  }
}

const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function pair(dir: string, name: string): Promise<PemPair> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const [certPem, keyPem] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  return { certFile, keyFile, certPem, keyPem };
}

/**
 * Generates a self-signed P-256 certificate (a root: `CA:TRUE`) with the `openssl` CLI, into
 * `<dir>/<name>.crt` and `<dir>/<name>.key`.
 */
export async function makeSelfSigned(dir: string, name: string, commonName: string): Promise<PemPair> {
  await mkdir(dir, { recursive: true });
  await openssl(
    [
      'req',
      '-x509',
      ...ecKey,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      '7',
      '-subj',
      `/CN=${commonName}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    ],
    dir,
  );
  return pair(dir, name);
}

/**
 * Generates a throw-away CA and a server certificate for 127.0.0.1 and localhost in `dir`
 * (files `ca.crt`, `ca.key`, `server.crt`, `server.key`), with the `openssl` CLI.
 */
export async function makeTestPki(dir: string): Promise<TestPki> {
  const ca = await makeSelfSigned(dir, 'ca', 'img-test-ca');
  await writeFile(
    join(dir, 'server.ext'),
    [
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      'extendedKeyUsage=serverAuth',
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      '',
    ].join('\n'),
  );
  await openssl(
    ['req', ...ecKey, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'],
    dir,
  );
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-set_serial',
      `0x${Date.now().toString(16)}`,
      '-out',
      'server.crt',
      '-days',
      '7',
      '-extfile',
      'server.ext',
    ],
    dir,
  );
  return { ca, server: await pair(dir, 'server') };
}
