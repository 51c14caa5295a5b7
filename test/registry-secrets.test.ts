import { mkdir, readFile } from 'node:fs/promises';
import { DEFAULT_REGISTRY_USER, type RegistryServer, startRegistry } from '@img/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunResult, Sandbox } from './helpers/cli.js';
import { writeOciImage } from './helpers/images.js';

const { username, password } = DEFAULT_REGISTRY_USER;
const basic = Buffer.from(`${username}:${password}`).toString('base64');
// A JSON Web Token as the issuer hands them out: three base64url parts, the first a JSON header.
const jwt = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/;

/** Every byte a run printed, with the command line it came from (for the failure message only). */
function everything(label: string, r: RunResult): string {
  return `--- ${label} (exit ${r.code})\n${r.stdout}\n${r.stderr}`;
}

function expectNoSecret(output: string): void {
  expect(output).not.toContain(password);
  expect(output).not.toContain(basic);
  expect(output).not.toMatch(jwt);
  expect(output).not.toMatch(/authorization:\s*(basic|bearer)\s+\S/i);
}

describe('credentials never reach the output', () => {
  let box: Sandbox;
  let tokenRegistry: RegistryServer;
  let basicRegistry: RegistryServer;
  let src: string;

  beforeAll(async () => {
    box = await Sandbox.create();
    await mkdir(box.path('run'), { recursive: true });
    [tokenRegistry, basicRegistry] = await Promise.all([
      startRegistry({ auth: 'token' }),
      startRegistry({ auth: 'htpasswd', tls: true }),
    ]);
    src = box.path('src');
    await writeOciImage(src, 'v1', { seed: 77, layers: 2, layerSize: 40_000 });
  });

  afterAll(async () => {
    await Promise.all([tokenRegistry?.stop(), basicRegistry?.stop()]);
    await box?.cleanup();
  });

  it('in every command of an authenticated session, with --debug, token and basic auth alike', async () => {
    const token = tokenRegistry.host;
    const tls = basicRegistry.host;
    const certDir = basicRegistry.certDir as string;
    const runs: Array<[string, RunResult]> = [];
    const img = async (...args: string[]) => {
      const r = await box.img('--debug', '--insecure-policy', ...args);
      runs.push([args[0] ?? '', r]);
      return r;
    };

    // Token auth: credentials on the command line, then from auth.json after a login.
    expect(
      (
        await img(
          'copy',
          '--dest-tls-verify=false',
          '--dest-creds',
          `${username}:${password}`,
          `oci:${src}:v1`,
          `docker://${token}/team/app:v1`,
        )
      ).code,
    ).toBe(0);
    expect((await img('login', '--tls-verify=false', '-u', username, '-p', password, token)).code).toBe(0);
    expect((await img('inspect', '--tls-verify=false', `docker://${token}/team/app:v1`)).code).toBe(0);
    expect((await img('list-tags', '--tls-verify=false', `docker://${token}/team/app`)).code).toBe(0);
    expect(
      (
        await img(
          'copy',
          '--src-tls-verify=false',
          `docker://${token}/team/app:v1`,
          `oci:${box.path('back')}:v1`,
        )
      ).code,
    ).toBe(0);
    // Failures print their causes with --debug: the wrong password must not show up either.
    const wrong = await img(
      'copy',
      '--dest-tls-verify=false',
      '--dest-creds',
      `${username}:${password}-wrong`,
      `oci:${src}:v1`,
      `docker://${token}/team/other:v1`,
    );
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/unauthorized/);
    expect(wrong.stderr).not.toContain(`${password}-wrong`);

    // Basic auth over TLS with the registry's CA.
    expect(
      (
        await img(
          'copy',
          '--dest-cert-dir',
          certDir,
          '--dest-creds',
          `${username}:${password}`,
          `oci:${src}:v1`,
          `docker://${tls}/secure/app:v1`,
        )
      ).code,
    ).toBe(0);
    expect((await img('login', '--cert-dir', certDir, '-u', username, '-p', password, tls)).code).toBe(0);
    expect((await img('inspect', '--cert-dir', certDir, `docker://${tls}/secure/app:v1`)).code).toBe(0);
    const bad = await img(
      'inspect',
      '--cert-dir',
      certDir,
      '--creds',
      `${username}:${password}-wrong`,
      `docker://${tls}/secure/app:v1`,
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).not.toContain(`${password}-wrong`);

    // The issuer really handed out tokens in this session, so the check below had something to find.
    expect(tokenRegistry.tokenIssuer?.requests.some((r) => r.granted)).toBe(true);
    expectNoSecret(runs.map(([label, r]) => everything(label, r)).join('\n'));
    // The credentials are where they belong: in the auth file, and nowhere else.
    expect(await readFile(box.path('run/containers/auth.json'), 'utf8')).toContain(basic);
  });
});
