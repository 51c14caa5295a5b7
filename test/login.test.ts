import { mkdir, readFile, stat } from 'node:fs/promises';
import { DEFAULT_REGISTRY_USER, type RegistryServer, startRegistry } from '@img/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { imgBin, run, Sandbox } from './helpers/cli.js';
import { writeOciImage } from './helpers/images.js';

let registry: RegistryServer;
let sb: Sandbox;
const { username, password } = DEFAULT_REGISTRY_USER;

function img(args: string[], input?: string) {
  return run(process.execPath, [imgBin, ...args], {
    env: sb.env(),
    ...(input === undefined ? {} : { input }),
  });
}

function authFile(): string {
  return sb.path('run/containers/auth.json');
}

async function readAuth(): Promise<{ auths: Record<string, { auth: string }> }> {
  return JSON.parse(await readFile(authFile(), 'utf8'));
}

beforeAll(async () => {
  registry = await startRegistry({ auth: 'htpasswd', tls: true });
});

afterAll(async () => {
  await registry?.stop();
});

beforeEach(async () => {
  await sb?.cleanup();
  sb = await Sandbox.create();
  await mkdir(sb.path('run'), { recursive: true });
});

afterAll(async () => {
  await sb?.cleanup();
});

describe('img login', () => {
  it('checks the credentials, then writes them to $XDG_RUNTIME_DIR/containers/auth.json with mode 0600', async () => {
    const r = await img(
      ['login', '--cert-dir', registry.certDir!, '-u', username, '--password-stdin', registry.host],
      `${password}\n`,
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('Login Succeeded!\n');
    expect(r.code).toBe(0);
    expect(await readAuth()).toEqual({
      auths: { [registry.host]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } },
    });
    expect((await stat(authFile())).mode & 0o777).toBe(0o600);
    expect((await stat(sb.path('run/containers'))).mode & 0o777).toBe(0o700);

    const get = await img(['login', '--get-login', registry.host]);
    expect(get).toMatchObject({ code: 0, stdout: `${username}\n` });
  });

  it('refuses a wrong password with one line, exit 1, and writes nothing', async () => {
    const r = await img([
      'login',
      '--cert-dir',
      registry.certDir!,
      '-u',
      username,
      '-p',
      'wrong-secret',
      registry.host,
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^Error: logging in to 127\.0\.0\.1:\d+: unauthorized/);
    expect(r.stderr).not.toContain('wrong-secret');
    await expect(stat(authFile())).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('fails on an untrusted certificate unless --tls-verify=false', async () => {
    const untrusted = await img(['login', '-u', username, '-p', password, registry.host]);
    expect(untrusted.code).toBe(1);
    await expect(stat(authFile())).rejects.toMatchObject({ code: 'ENOENT' });
    const r = await img(['login', '--tls-verify=false', '-u', username, '-p', password, registry.host]);
    expect(r).toMatchObject({ code: 0, stdout: 'Login Succeeded!\n' });
  });

  it('writes to --authfile and reports it with --verbose', async () => {
    const file = sb.path('custom/auth.json');
    const r = await img([
      'login',
      '--authfile',
      file,
      '--verbose',
      '--cert-dir',
      registry.certDir!,
      '-u',
      username,
      '-p',
      password,
      registry.host,
    ]);
    expect(r).toMatchObject({ code: 0, stdout: `Used: ${file}\nLogin Succeeded!\n` });
    expect(Object.keys(JSON.parse(await readFile(file, 'utf8')).auths)).toEqual([registry.host]);
  });

  it('reads the username and password from stdin lines when no flag gives them', async () => {
    const r = await img(
      ['login', '--cert-dir', registry.certDir!, registry.host],
      `${username}\n${password}\n`,
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Login Succeeded!');
    expect(r.stdout).not.toContain(password);
    // Logged in already: the stored credentials are checked and nothing is asked.
    const again = await img(['login', '--cert-dir', registry.certDir!, registry.host], '');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`Existing credentials are valid. Already logged in to ${registry.host}`);
  });
});

describe('img logout', () => {
  it('removes the entry, and says when there is none', async () => {
    await img(['login', '--cert-dir', registry.certDir!, '-u', username, '-p', password, registry.host]);
    const r = await img(['logout', registry.host]);
    expect(r).toMatchObject({ code: 0, stdout: `Removed login credentials for ${registry.host}\n` });
    expect((await readAuth()).auths).toEqual({});
    const again = await img(['logout', registry.host]);
    expect(again).toMatchObject({ code: 1, stderr: `Error: not logged into ${registry.host}\n` });
  });

  it('removes every entry with --all', async () => {
    await img(['login', '--cert-dir', registry.certDir!, '-u', username, '-p', password, registry.host]);
    await img([
      'login',
      '--cert-dir',
      registry.certDir!,
      '-u',
      username,
      '-p',
      password,
      `${registry.host}/team`,
    ]);
    expect(Object.keys((await readAuth()).auths)).toHaveLength(2);
    const r = await img(['logout', '--all']);
    expect(r).toMatchObject({ code: 0, stdout: 'Removed login credentials for all registries\n' });
    expect((await readAuth()).auths).toEqual({});
  });
});

describe('registry flags and stored credentials', () => {
  it('copy and inspect use what login stored, --dest-cert-dir / --cert-dir, and --no-creds', async () => {
    const image = await writeOciImage(sb.path('layout'), 'v1', { seed: 7, layers: 1 });
    const ref = `docker://${registry.host}/login-e2e/app:v1`;
    const anonymous = await img([
      '--insecure-policy',
      'copy',
      '--dest-cert-dir',
      registry.certDir!,
      `oci:${sb.path('layout')}:v1`,
      ref,
    ]);
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/unauthorized/);

    await img(['login', '--cert-dir', registry.certDir!, '-u', username, '-p', password, registry.host]);
    const copied = await img([
      '--insecure-policy',
      'copy',
      '--dest-cert-dir',
      registry.certDir!,
      '--digestfile',
      sb.path('digest'),
      `oci:${sb.path('layout')}:v1`,
      ref,
    ]);
    expect(copied.stderr).not.toMatch(/Error/);
    expect(copied.code).toBe(0);

    const inspected = await img(['inspect', '--cert-dir', registry.certDir!, '--format', '{{.Digest}}', ref]);
    const digest = await readFile(sb.path('digest'), 'utf8');
    expect(digest).toBe(image.manifestDigest);
    expect(inspected).toMatchObject({ code: 0, stdout: `${digest}\n` });
    const noCreds = await img(['inspect', '--cert-dir', registry.certDir!, '--no-creds', ref]);
    expect(noCreds.code).toBe(1);
    expect(noCreds.stderr).toMatch(/unauthorized/);
  });
});
