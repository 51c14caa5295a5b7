import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DockerTransportOptions } from '../options.js';
import { InvalidConfigError } from './errors.js';
import {
  endpointPlan,
  findRegistry,
  loadRegistriesConf,
  parseRegistriesConf,
  refMatchingPrefix,
  registriesConfFiles,
} from './registries-conf.js';

let root: string;
let options: DockerTransportOptions;
let env: Record<string, string | undefined>;

async function testdir(files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    const full = join(root, path);
    await mkdir(dirname(full), { recursive: true });
    await writeFile(full, content);
  }
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'img-regconf-'));
  env = {};
  options = { environment: { env, homeDir: join(root, 'home'), systemConfigDir: join(root, 'etc') } };
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const mirrored = `
unqualified-search-registries = ["docker.io"]

[[registry]]
prefix = "docker.io"
location = "docker.io"

[[registry.mirror]]
location = "mirror.example:5000"
insecure = true

[[registry.mirror]]
location = "digests.example/hub"
pull-from-mirror = "digest-only"

[[registry.mirror]]
location = "tags.example"
pull-from-mirror = "tag-only"

[[registry]]
prefix = "example.com/team"
location = "internal.example/mirror/team"
insecure = true

[[registry]]
location = "blocked.example"
blocked = true

[[registry]]
prefix = "*.wild.example"
insecure = true
`;

describe('endpointPlan', () => {
  it('puts the mirrors for a tag pull before the primary, rewriting the reference', async () => {
    await testdir({ 'etc/containers/registries.conf': mirrored });
    const plan = await endpointPlan('docker.io', 'library/alpine', options);
    expect(plan.blocked).toBe(false);
    expect(plan.pullSources).toEqual([
      { host: 'mirror.example:5000', repository: 'library/alpine', insecure: true, isMirror: true },
      { host: 'tags.example', repository: 'library/alpine', insecure: false, isMirror: true },
      { host: 'docker.io', repository: 'library/alpine', insecure: false, isMirror: false },
    ]);
  });

  it('uses digest-only mirrors, and not tag-only ones, for a pull by digest', async () => {
    await testdir({ 'etc/containers/registries.conf': mirrored });
    const plan = await endpointPlan('docker.io', 'library/alpine', options, 'digest');
    expect(plan.pullSources.map((s) => `${s.host}/${s.repository}`)).toEqual([
      'mirror.example:5000/library/alpine',
      'digests.example/hub/library/alpine',
      'docker.io/library/alpine',
    ]);
  });

  it('keeps mirrors for digests only with mirror-by-digest-only', async () => {
    await testdir({
      'etc/containers/registries.conf':
        '[[registry]]\nlocation = "r.example"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "m.example"\n',
    });
    expect((await endpointPlan('r.example', 'app', options)).pullSources.map((s) => s.host)).toEqual([
      'r.example',
    ]);
    expect(
      (await endpointPlan('r.example', 'app', options, 'digest')).pullSources.map((s) => s.host),
    ).toEqual(['m.example', 'r.example']);
  });

  it('rewrites a namespace prefix to its location and reports insecure', async () => {
    await testdir({ 'etc/containers/registries.conf': mirrored });
    const plan = await endpointPlan('example.com', 'team/app', options);
    expect(plan.primary).toEqual({ host: 'internal.example', repository: 'mirror/team/app', insecure: true });
    // The prefix matches whole path segments only.
    expect((await endpointPlan('example.com', 'teamx/app', options)).primary.host).toBe('example.com');
  });

  it('marks blocked registries and matches *.domain wildcards', async () => {
    await testdir({ 'etc/containers/registries.conf': mirrored });
    expect((await endpointPlan('blocked.example', 'a', options)).blocked).toBe(true);
    expect((await endpointPlan('a.wild.example', 'x', options)).primary).toEqual({
      host: 'a.wild.example',
      repository: 'x',
      insecure: true,
    });
    expect((await endpointPlan('wild.example', 'x', options)).primary.insecure).toBe(false);
  });

  it('lets --tls-verify override insecure', async () => {
    await testdir({ 'etc/containers/registries.conf': mirrored });
    const plan = await endpointPlan('example.com', 'team/app', { ...options, tlsVerify: true });
    expect(plan.primary.insecure).toBe(false);
    expect(plan.pullSources.every((s) => !s.insecure)).toBe(true);
  });

  it('plans the reference as is when no file exists', async () => {
    expect(await endpointPlan('r.example', 'a/b', options)).toEqual({
      blocked: false,
      primary: { host: 'r.example', repository: 'a/b', insecure: false },
      pullSources: [{ host: 'r.example', repository: 'a/b', insecure: false, isMirror: false }],
    });
  });
});

describe('loadRegistriesConf', () => {
  it('reads v1 files', async () => {
    await testdir({
      'etc/containers/registries.conf':
        '[registries.search]\nregistries = ["docker.io"]\n[registries.insecure]\nregistries = ["old.example:5000"]\n[registries.block]\nregistries = ["bad.example"]\n',
    });
    const conf = await loadRegistriesConf(options);
    expect(findRegistry(conf, 'old.example:5000/app')).toMatchObject({ insecure: true, blocked: false });
    expect(findRegistry(conf, 'bad.example/app')).toMatchObject({ blocked: true });
    expect(conf.unqualifiedSearchRegistries).toEqual(['docker.io']);
  });

  it('merges drop-ins in name order, a later entry replacing the one with the same prefix', async () => {
    await testdir({
      'etc/containers/registries.conf': '[[registry]]\nlocation = "r.example"\n',
      'etc/containers/registries.conf.d/20-b.conf': '[[registry]]\nlocation = "r.example"\nblocked = true\n',
      'etc/containers/registries.conf.d/10-a.conf': '[[registry]]\nlocation = "r.example"\ninsecure = true\n',
      'etc/containers/registries.conf.d/ignored.txt': 'not toml [',
    });
    const conf = await loadRegistriesConf(options);
    expect(conf.registries).toHaveLength(1);
    expect(conf.registries[0]).toMatchObject({ blocked: true, insecure: false });
    expect(conf.files.map((f) => f.slice(root.length))).toEqual([
      '/etc/containers/registries.conf',
      '/etc/containers/registries.conf.d/10-a.conf',
      '/etc/containers/registries.conf.d/20-b.conf',
    ]);
  });

  it('picks --registries-conf, then $CONTAINERS_REGISTRIES_CONF, then the user file, then the system file', async () => {
    expect((await registriesConfFiles(options)).main).toBe(join(root, 'etc/containers/registries.conf'));
    await testdir({ 'home/.config/containers/registries.conf': '' });
    expect(await registriesConfFiles(options)).toEqual({
      main: join(root, 'home/.config/containers/registries.conf'),
      mainRequired: false,
      dropInDirs: [join(root, 'home/.config/containers/registries.conf.d')],
    });
    env.CONTAINERS_REGISTRIES_CONF = '/env.conf';
    expect((await registriesConfFiles(options)).main).toBe('/env.conf');
    expect((await registriesConfFiles({ ...options, registriesConfPath: '/flag.conf' })).main).toBe(
      '/flag.conf',
    );
  });

  it('fails on an explicit file that does not exist', async () => {
    await expect(
      loadRegistriesConf({ ...options, registriesConfPath: join(root, 'nope.conf') }),
    ).rejects.toThrow(`invalid configuration "${join(root, 'nope.conf')}": does not exist`);
  });

  it('names the file of a syntax error, and of a v1 drop-in', async () => {
    await testdir({ 'bad.conf': '[[registry]\nlocation = 1' });
    const error = await loadRegistriesConf({ ...options, registriesConfPath: join(root, 'bad.conf') }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as Error).message).toMatch(/^invalid configuration ".*bad.conf": not valid TOML/);
    await testdir({
      'etc/containers/registries.conf.d/a.conf': '[registries.insecure]\nregistries = ["x"]\n',
    });
    await expect(loadRegistriesConf(options)).rejects.toThrow(
      /a\.conf": drop-in files must use the v2 format/,
    );
  });
});

describe('parseRegistriesConf', () => {
  it('refuses what containers/image refuses', () => {
    const bad = (text: string) => () => parseRegistriesConf(text, '/r.conf');
    expect(bad('[[registry]]\nlocation = "https://r.example"')).toThrow(/URI schemes are not supported/);
    expect(bad('[[registry]]\ninsecure = true')).toThrow(/both location and prefix are unset/);
    expect(bad('[[registry]]\nprefix = "*.x.example/ns"')).toThrow(/wildcard prefix/);
    expect(
      bad(
        '[[registry]]\nlocation = "r"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "m"\npull-from-mirror = "all"',
      ),
    ).toThrow(/cannot both be set/);
    expect(
      bad('[[registry]]\nlocation = "r"\n[[registry.mirror]]\nlocation = "m"\npull-from-mirror = "some"'),
    ).toThrow(/unsupported pull-from-mirror value "some"/);
    expect(
      bad('[[registry]]\nlocation = "r"\ninsecure = true\n[[registry]]\nprefix = "p"\nlocation = "r"'),
    ).toThrow(/conflicting "insecure"/);
    expect(bad('[registries.search]\nregistries = []\n[[registry]]\nlocation = "r"')).toThrow(
      /mixing the v1/,
    );
  });
});

describe('refMatchingPrefix', () => {
  it('matches whole segments, tags and digests, and *.domain on the host only', () => {
    expect(refMatchingPrefix('r.example/app', 'r.example')).toBe(9);
    expect(refMatchingPrefix('r.example.org/app', 'r.example')).toBe(-1);
    expect(refMatchingPrefix('r.example/app:v1', 'r.example/app')).toBe(13);
    expect(refMatchingPrefix('a.b.example/x', '*.example')).toBe(11);
    expect(refMatchingPrefix('r/a.example/x', '*.example')).toBe(-1);
  });
});
