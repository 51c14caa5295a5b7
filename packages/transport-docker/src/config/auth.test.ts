import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DockerTransportOptions } from '../options.js';
import {
  authFileForWrite,
  authFilesToRead,
  loginKey,
  normalizeAuthFileKey,
  removeAllCredentials,
  removeCredentials,
  resolveCredentials,
  saveCredentials,
  storedUsername,
} from './auth.js';
import { InvalidConfigError, NotLoggedInError } from './errors.js';

let root: string;
let options: DockerTransportOptions;
let env: Record<string, string | undefined>;

/** Writes files from an object of path (relative to the temp root) → content. */
async function testdir(files: Record<string, string | object>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    const full = join(root, path);
    await mkdir(dirname(full), { recursive: true });
    await writeFile(full, typeof content === 'string' ? content : JSON.stringify(content));
  }
}

const b64 = (text: string) => Buffer.from(text).toString('base64');

/** A docker-credential-test helper that logs what it received and answers from a store in a file. */
async function installHelper(name = 'test'): Promise<{ log: () => Promise<string[]>; store: string }> {
  const bin = join(root, 'bin');
  const store = join(root, `helper-${name}.json`);
  const logFile = join(root, `helper-${name}.log`);
  await mkdir(bin, { recursive: true });
  const script = `#!/bin/sh
input=$(cat)
printf '%s %s\\n' "$1" "$input" >> ${JSON.stringify(logFile)}
case "$1" in
  get)
    if [ -f ${JSON.stringify(store)} ] && grep -q "\\"$input\\"" ${JSON.stringify(store)}; then
      node -e 'const s=require(process.argv[1]); const e=s[process.argv[2]]; process.stdout.write(JSON.stringify({ServerURL:process.argv[2],Username:e.u,Secret:e.s}))' ${JSON.stringify(store)} "$input"
    else
      echo "credentials not found in native keychain"; exit 1
    fi;;
  store)
    node -e 'const fs=require("fs"); const f=process.argv[1]; const s=fs.existsSync(f)?JSON.parse(fs.readFileSync(f)):{}; const c=JSON.parse(process.argv[2]); s[c.ServerURL]={u:c.Username,s:c.Secret}; fs.writeFileSync(f, JSON.stringify(s))' ${JSON.stringify(store)} "$input";;
  erase)
    echo "credentials not found in native keychain"; exit 1;;
esac
`;
  const path = join(bin, `docker-credential-${name}`);
  await writeFile(path, script);
  await chmod(path, 0o755);
  env.PATH = `${bin}:${process.env.PATH}`;
  return {
    store,
    log: async () => {
      try {
        return (await readFile(logFile, 'utf8')).trim().split('\n');
      } catch {
        return [];
      }
    },
  };
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'img-auth-'));
  env = { XDG_RUNTIME_DIR: join(root, 'run'), PATH: process.env.PATH };
  await mkdir(join(root, 'run'), { recursive: true });
  options = { environment: { env, homeDir: join(root, 'home'), systemConfigDir: join(root, 'etc') } };
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('authFilesToRead', () => {
  it('uses --authfile alone when given', () => {
    expect(authFilesToRead({ ...options, authFile: '/x/auth.json' })).toEqual([
      { path: '/x/auth.json', legacy: false },
    ]);
  });

  it("reads skopeo's files in order, $REGISTRY_AUTH_FILE first and ~/.dockercfg last", () => {
    env.REGISTRY_AUTH_FILE = '/r/auth.json';
    expect(authFilesToRead(options)).toEqual([
      { path: '/r/auth.json', legacy: false },
      { path: join(root, 'run/containers/auth.json'), legacy: false },
      { path: join(root, 'home/.config/containers/auth.json'), legacy: false },
      { path: join(root, 'home/.docker/config.json'), legacy: false },
      { path: join(root, 'home/.dockercfg'), legacy: true },
    ]);
  });

  it('honours XDG_CONFIG_HOME and DOCKER_CONFIG', () => {
    env.XDG_CONFIG_HOME = '/cfg';
    env.DOCKER_CONFIG = '/dock';
    const paths = authFilesToRead(options).map((p) => p.path);
    expect(paths).toContain('/cfg/containers/auth.json');
    expect(paths).toContain('/dock/config.json');
  });
});

describe('resolveCredentials', () => {
  it('returns nothing when no file exists', async () => {
    expect(await resolveCredentials('registry.example', 'app', options)).toBeUndefined();
  });

  it('puts --no-creds, --registry-token and --creds before any file', async () => {
    await testdir({ 'run/containers/auth.json': { auths: { 'r.example': { auth: b64('file:pw') } } } });
    expect(await resolveCredentials('r.example', 'a', { ...options, noCredentials: true })).toBeUndefined();
    expect(await resolveCredentials('r.example', 'a', { ...options, registryToken: 'tok' })).toEqual({
      kind: 'bearer',
      token: 'tok',
    });
    expect(
      await resolveCredentials('r.example', 'a', {
        ...options,
        credentials: { username: 'u', password: 'p' },
      }),
    ).toEqual({ kind: 'basic', username: 'u', password: 'p' });
    expect(await resolveCredentials('r.example', 'a', options)).toEqual({
      kind: 'basic',
      username: 'file',
      password: 'pw',
    });
  });

  it('prefers the most specific auths key: host/ns/repo, then host/ns, then host', async () => {
    await testdir({
      'run/containers/auth.json': {
        auths: {
          'r.example': { auth: b64('host:1') },
          'r.example/team': { auth: b64('team:2') },
          'r.example/team/app': { auth: b64('app:3') },
        },
      },
    });
    expect(await resolveCredentials('r.example', 'team/app', options)).toMatchObject({ username: 'app' });
    expect(await resolveCredentials('r.example', 'team/other', options)).toMatchObject({ username: 'team' });
    expect(await resolveCredentials('r.example', 'else/app', options)).toMatchObject({ username: 'host' });
    expect(await resolveCredentials('r.example', undefined, options)).toMatchObject({ username: 'host' });
  });

  it('takes the first file that has credentials, falling back to ~/.docker/config.json and ~/.dockercfg', async () => {
    await testdir({
      'home/.docker/config.json': { auths: { 'a.example': { auth: b64('docker:pw') } } },
      'home/.dockercfg': { 'https://b.example/v1/': { auth: b64('legacy:pw'), email: 'x@y' } },
      'home/.config/containers/auth.json': { auths: { 'c.example': { auth: b64('xdg:pw') } } },
    });
    expect(await resolveCredentials('a.example', 'x', options)).toMatchObject({ username: 'docker' });
    expect(await resolveCredentials('b.example', 'x', options)).toMatchObject({ username: 'legacy' });
    expect(await resolveCredentials('c.example', 'x', options)).toMatchObject({ username: 'xdg' });
  });

  it("finds Docker Hub under docker's key https://index.docker.io/v1/ and URL-form keys", async () => {
    await testdir({
      'home/.docker/config.json': {
        auths: {
          'https://index.docker.io/v1/': { auth: b64('hub:pw') },
          'http://q.example:5000/v2/': { auth: b64('q:pw') },
        },
      },
    });
    expect(await resolveCredentials('docker.io', 'library/alpine', options)).toMatchObject({
      username: 'hub',
    });
    expect(await resolveCredentials('q.example:5000', 'a', options)).toMatchObject({ username: 'q' });
    expect(normalizeAuthFileKey('registry-1.docker.io', false)).toBe('index.docker.io');
  });

  it('returns an identity token, with the username auth holds', async () => {
    await testdir({
      'run/containers/auth.json': { auths: { 'r.example': { auth: b64('me:'), identitytoken: 'refresh' } } },
    });
    expect(await resolveCredentials('r.example', 'a', options)).toEqual({
      kind: 'identity-token',
      username: 'me',
      identityToken: 'refresh',
    });
  });

  it('runs the credHelpers helper for the host with the host on stdin', async () => {
    const helper = await installHelper();
    await writeFile(helper.store, JSON.stringify({ 'r.example': { u: 'helped', s: 'sec' } }));
    await testdir({
      'run/containers/auth.json': {
        credHelpers: { 'r.example': 'test' },
        auths: { 'r.example': { auth: b64('no:no') } },
      },
    });
    expect(await resolveCredentials('r.example', 'team/app', options)).toEqual({
      kind: 'basic',
      username: 'helped',
      password: 'sec',
    });
    expect(await helper.log()).toEqual(['get r.example']);
  });

  it('treats a helper username <token> as an identity token, and "not found" as no credentials', async () => {
    const helper = await installHelper();
    await writeFile(helper.store, JSON.stringify({ 'r.example': { u: '<token>', s: 'idt' } }));
    await testdir({
      'run/containers/auth.json': { credHelpers: { 'r.example': 'test', 'n.example': 'test' } },
    });
    expect(await resolveCredentials('r.example', 'a', options)).toEqual({
      kind: 'identity-token',
      identityToken: 'idt',
    });
    expect(await resolveCredentials('n.example', 'a', options)).toBeUndefined();
  });

  it('asks credsStore after auths, skipping the empty entries docker leaves as markers', async () => {
    const helper = await installHelper();
    await writeFile(
      helper.store,
      JSON.stringify({
        's.example': { u: 'stored', s: 'pw' },
        'https://index.docker.io/v1/': { u: 'hub', s: 'pw' },
      }),
    );
    await testdir({ 'home/.docker/config.json': { credsStore: 'test', auths: { 's.example': {} } } });
    expect(await resolveCredentials('s.example', 'a', options)).toMatchObject({ username: 'stored' });
    expect(await resolveCredentials('docker.io', 'library/a', options)).toMatchObject({ username: 'hub' });
  });

  it('names a malformed file in one line without quoting it', async () => {
    await testdir({ 'run/containers/auth.json': '{"auths": {"r.example": {"auth": "c2VjcmV0OnB3"}' });
    const error = await resolveCredentials('r.example', 'a', options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as Error).message).toBe(
      `invalid configuration "${join(root, 'run/containers/auth.json')}": not valid JSON`,
    );
    expect((error as Error).cause).toBeUndefined();
  });

  it('fails when the helper cannot be found, naming the helper', async () => {
    await testdir({ 'run/containers/auth.json': { credHelpers: { 'r.example': 'absent' } } });
    await expect(resolveCredentials('r.example', 'a', options)).rejects.toThrow(
      'credential helper docker-credential-absent get failed: docker-credential-absent was not found on PATH',
    );
  });
});

describe('saveCredentials / removeCredentials', () => {
  it('writes auths[host] = {auth} to $XDG_RUNTIME_DIR/containers/auth.json, mode 0600 in a 0700 directory', async () => {
    const { file } = await saveCredentials('r.example:5000', { username: 'u', password: 'p:w' }, options);
    expect(file).toBe(join(root, 'run/containers/auth.json'));
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({
      auths: { 'r.example:5000': { auth: b64('u:p:w') } },
    });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(dirname(file))).mode & 0o777).toBe(0o700);
    expect(await resolveCredentials('r.example:5000', 'a', options)).toEqual({
      kind: 'basic',
      username: 'u',
      password: 'p:w',
    });
  });

  it('keeps the other entries and unknown fields of the file', async () => {
    await testdir({
      'a.json': {
        auths: { 'o.example': { auth: b64('o:o') } },
        credHelpers: { 'h.example': 'x' },
        psFormat: 'table',
      },
    });
    const authFile = join(root, 'a.json');
    await saveCredentials('r.example/team', { username: 'u', password: 'p' }, { ...options, authFile });
    expect(JSON.parse(await readFile(authFile, 'utf8'))).toEqual({
      auths: { 'o.example': { auth: b64('o:o') }, 'r.example/team': { auth: b64('u:p') } },
      credHelpers: { 'h.example': 'x' },
      psFormat: 'table',
    });
    expect((await stat(authFile)).mode & 0o777).toBe(0o600);
  });

  it('writes to $REGISTRY_AUTH_FILE when set', async () => {
    env.REGISTRY_AUTH_FILE = join(root, 'env/auth.json');
    expect(await authFileForWrite(options)).toBe(join(root, 'env/auth.json'));
  });

  it('falls back to /run/containers/<uid>/auth.json without XDG_RUNTIME_DIR, as containers/image does', async () => {
    delete env.XDG_RUNTIME_DIR;
    expect(await authFileForWrite(options)).toBe(`/run/containers/${process.getuid?.() ?? 0}/auth.json`);
  });

  it('refuses an XDG_RUNTIME_DIR that does not exist', async () => {
    env.XDG_RUNTIME_DIR = join(root, 'missing');
    await expect(saveCredentials('r.example', { username: 'u', password: 'p' }, options)).rejects.toThrow(
      /XDG_RUNTIME_DIR does not exist/,
    );
  });

  it('stores through the credHelpers helper configured for the host, leaving the file as it was', async () => {
    const helper = await installHelper();
    await testdir({ 'run/containers/auth.json': { credHelpers: { 'r.example': 'test' } } });
    const before = await readFile(join(root, 'run/containers/auth.json'), 'utf8');
    const saved = await saveCredentials('r.example', { username: 'u', password: 'secret' }, options);
    expect(saved.helper).toBe('test');
    expect(await helper.log()).toEqual(['store {"ServerURL":"r.example","Username":"u","Secret":"secret"}']);
    expect(await readFile(join(root, 'run/containers/auth.json'), 'utf8')).toBe(before);
  });

  it('removes one entry, and says when there was none', async () => {
    await saveCredentials('a.example', { username: 'u', password: 'p' }, options);
    await saveCredentials('b.example', { username: 'u', password: 'p' }, options);
    await removeCredentials('a.example', options);
    const file = join(root, 'run/containers/auth.json');
    expect(Object.keys(JSON.parse(await readFile(file, 'utf8')).auths)).toEqual(['b.example']);
    await expect(removeCredentials('a.example', options)).rejects.toBeInstanceOf(NotLoggedInError);
    await expect(removeCredentials('a.example', options)).rejects.toThrow('not logged into a.example');
  });

  it('removes every entry with removeAllCredentials, erasing through helpers too', async () => {
    const helper = await installHelper();
    await testdir({ 'run/containers/auth.json': { credHelpers: { 'h.example': 'test' }, other: 1 } });
    await saveCredentials('a.example', { username: 'u', password: 'p' }, options);
    await removeAllCredentials(options);
    const file = join(root, 'run/containers/auth.json');
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({
      auths: {},
      credHelpers: { 'h.example': 'test' },
      other: 1,
    });
    expect(await helper.log()).toEqual(['erase h.example']);
  });

  it('reports the stored username for --get-login', async () => {
    await saveCredentials('r.example', { username: 'alice', password: 'p' }, options);
    expect(await storedUsername('r.example', options)).toBe('alice');
    expect(await storedUsername('x.example', options)).toBeUndefined();
  });
});

describe('loginKey', () => {
  it('turns URLs into hosts and docker.io names into docker.io', () => {
    expect(loginKey('https://quay.io/v1/')).toBe('quay.io');
    expect(loginKey('localhost:5000/')).toBe('localhost:5000');
    expect(loginKey('index.docker.io')).toBe('docker.io');
    expect(loginKey('r.example/team/app')).toBe('r.example/team/app');
  });
});
