import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Config } from '@oclif/core';
import { afterEach, describe, expect, it } from 'vitest';
import { environmentBlocker, oclifDataDir, scopedEnvKey, userPluginsBlocker } from './eligibility.js';

const appRoot = fileURLToPath(new URL('../..', import.meta.url));
const names = { bin: 'img', dirname: 'img' };
const envKeys = ['IMG_DATA_DIR', 'XDG_DATA_HOME', 'HOME'] as const;
const saved = Object.fromEntries(envKeys.map((k) => [k, process.env[k]]));

afterEach(() => {
  for (const k of envKeys) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'img-fast-'));
}

/** Sets the variables oclif reads for its data directory, in process.env too, and returns them. */
function dataDirEnv(env: Partial<Record<(typeof envKeys)[number], string>>): Record<string, string> {
  for (const k of envKeys) {
    if (env[k] === undefined) delete process.env[k];
    else process.env[k] = env[k];
  }
  return { ...env } as Record<string, string>;
}

describe('oclifDataDir', () => {
  const cases: Array<[string, Partial<Record<(typeof envKeys)[number], string>>]> = [
    ['IMG_DATA_DIR', { IMG_DATA_DIR: '/data/img', XDG_DATA_HOME: '/xdg', HOME: '/home/u' }],
    ['XDG_DATA_HOME, even relative, as oclif takes it', { XDG_DATA_HOME: 'rel/xdg', HOME: '/home/u' }],
    ['HOME', { HOME: '/home/u' }],
  ];
  for (const [name, env] of cases) {
    it(`is the directory oclif reads user plugins from: ${name}`, async () => {
      const vars = dataDirEnv(env);
      const config = await Config.load({ root: appRoot, userPlugins: false });
      expect(oclifDataDir(vars, names)).toBe(config.dataDir);
    });
  }
});

describe('userPluginsBlocker', () => {
  it('finds nothing when the data directory has no package.json', () => {
    expect(userPluginsBlocker(join(tempDir(), 'none'))).toBeUndefined();
  });

  it('finds nothing when the plugin list is empty, as after uninstalling the last one', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ private: true, oclif: { plugins: [] } }));
    expect(userPluginsBlocker(dir)).toBeUndefined();
  });

  it('finds a linked plugin where oclif loads it from', async () => {
    const dir = tempDir();
    const plugin = join(dir, 'img-transport-fake');
    mkdirSync(plugin);
    writeFileSync(
      join(plugin, 'package.json'),
      JSON.stringify({ name: 'img-transport-fake', version: '1.0.0', type: 'module', oclif: {} }),
    );
    const data = join(dir, 'data');
    mkdirSync(data);
    writeFileSync(
      join(data, 'package.json'),
      JSON.stringify({
        private: true,
        oclif: { plugins: [{ name: 'img-transport-fake', type: 'link', root: plugin }] },
      }),
    );
    expect(userPluginsBlocker(data)).toMatch(/plugins are installed or linked/);
    dataDirEnv({ IMG_DATA_DIR: data, HOME: dir });
    const config = await Config.load({ root: appRoot });
    expect(config.getPluginsList().map((p) => p.name)).toContain('img-transport-fake');
  });

  it('blocks on a file oclif would warn about', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'package.json'), '{ not json');
    expect(userPluginsBlocker(dir)).toMatch(/not JSON/);
    const odd = tempDir();
    mkdirSync(join(odd, 'package.json'));
    expect(userPluginsBlocker(odd)).toMatch(/cannot be read/);
  });
});

describe('environmentBlocker', () => {
  it('lets a plain environment through', () => {
    expect(
      environmentBlocker({ PATH: '/bin', HOME: '/home/u', NODE_ENV: 'production' }, 'img'),
    ).toBeUndefined();
  });

  it('blocks on the switch, on oclif’s debug variables and on its development modes', () => {
    for (const env of [
      { IMG_NO_FAST_PATH: '1' },
      { IMG_NO_FAST_PATH: 'yes' },
      { DEBUG: '*' },
      { IMG_DEBUG: '1' },
      { CLI_FLAGS_DEBUG: '1' },
      { NODE_ENV: 'development' },
      { NODE_ENV: 'test' },
    ]) {
      expect(environmentBlocker(env, 'img'), JSON.stringify(env)).toBeDefined();
    }
    expect(environmentBlocker({ IMG_NO_FAST_PATH: '0' }, 'img')).toBeUndefined();
    expect(environmentBlocker({ IMG_NO_FAST_PATH: '' }, 'img')).toBeUndefined();
  });

  it('blocks when the working directory is gone (oclif warns then)', () => {
    const cwd = () => {
      throw Object.assign(new Error('gone'), { code: 'ENOENT' });
    };
    expect(environmentBlocker({}, 'img', { cwd })).toMatch(/working directory/);
  });

  it('names variables as oclif scopes them', () => {
    expect(scopedEnvKey('img', 'DATA_DIR')).toBe('IMG_DATA_DIR');
    expect(scopedEnvKey('@acme/my-cli', 'DEBUG')).toBe('ACME_MY_CLI_DEBUG');
  });
});
