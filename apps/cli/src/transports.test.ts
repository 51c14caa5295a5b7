import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as core from '@img/core';
import { type ImageReference, type Transport, transports, unregisterTransport } from '@img/core';
import type { Config, Hook } from '@oclif/core';
import { afterEach, describe, expect, it } from 'vitest';
import { localPluginPath } from './commands/plugins/install.js';
import { describeCapabilities, describeOrigin, listTransports } from './commands/transports.js';
import {
  loadTransports,
  registerPluginTransports,
  resetLoadedTransports,
  supportedApiVersions,
  transportOrigin,
} from './transports.js';

function fakeTransport(name: string, capabilities?: Transport['capabilities']): Transport {
  return {
    name,
    parseReference: () => ({}) as ImageReference,
    validatePolicyConfigurationScope: () => {},
    ...(capabilities ? { capabilities } : {}),
  };
}

function plugin(name: string, apiVersion?: unknown, version = '1.0.0', type = 'user') {
  return {
    name,
    version,
    type,
    pjson: apiVersion === undefined ? {} : { img: { apiVersion } },
  } as unknown as Hook.Result<never>['successes'][number]['plugin'];
}

function run(result: {
  successes?: Array<[ReturnType<typeof plugin>, unknown]>;
  failures?: Array<[ReturnType<typeof plugin>, Error]>;
}) {
  const warnings: string[] = [];
  registerPluginTransports(
    {
      successes: (result.successes ?? []).map(([p, r]) => ({ plugin: p, result: r as readonly Transport[] })),
      failures: (result.failures ?? []).map(([p, error]) => ({ plugin: p, error })),
    },
    (w) => warnings.push(w),
  );
  return warnings;
}

const registered: string[] = [];
afterEach(() => {
  for (const name of registered.splice(0)) unregisterTransport(name);
});

describe('registerPluginTransports', () => {
  it('registers the transports a plugin hook returns, and remembers the plugin as their origin', () => {
    const s3 = fakeTransport('test-s3');
    registered.push('test-s3');
    expect(run({ successes: [[plugin('img-transport-s3', 1, '0.3.1'), [s3]]] })).toEqual([]);
    expect(transports.get('test-s3')).toBe(s3);
    expect(transportOrigin('test-s3')).toEqual({
      kind: 'plugin',
      package: 'img-transport-s3',
      version: '0.3.1',
      pluginType: 'user',
    });
  });

  it('warns once about a taken name, keeps the transport already registered and the plugin’s others', () => {
    const first = fakeTransport('test-taken');
    registered.push('test-taken', 'test-other');
    run({ successes: [[plugin('img-transport-a', 1), [first]]] });
    const warnings = run({
      successes: [[plugin('img-transport-b', 1), [fakeTransport('test-taken'), fakeTransport('test-other')]]],
    });
    expect(warnings).toEqual([
      'plugin img-transport-b@1.0.0: transport "test-taken" is already registered by img-transport-a; the plugin\'s is not used',
    ]);
    expect(transports.get('test-taken')).toBe(first);
    expect(transports.get('test-other')).toBeDefined();
  });

  it('skips a plugin built for another transport API version, with one warning naming it', () => {
    const warnings = run({
      successes: [
        [plugin('img-transport-new', 2), [fakeTransport('test-new')]],
        [plugin('img-transport-none'), [fakeTransport('test-none')]],
        [plugin('img-transport-str', '1'), [fakeTransport('test-str')]],
      ],
    });
    expect(warnings).toEqual([
      'plugin img-transport-new@1.0.0: transport API version 2 is not supported (this img supports 1); its transports are not loaded',
      'plugin img-transport-none@1.0.0: package.json declares no "img": {"apiVersion": …}; its transports are not loaded',
      'plugin img-transport-str@1.0.0: transport API version "1" is not supported (this img supports 1); its transports are not loaded',
    ]);
    expect(transports.get('test-new')).toBeUndefined();
    expect(transports.get('test-none')).toBeUndefined();
    expect(transports.get('test-str')).toBeUndefined();
  });

  it('reports a failed hook on one line and still registers the other plugins', () => {
    registered.push('test-ok');
    const warnings = run({
      failures: [
        [plugin('img-transport-broken', 1), new Error('cannot find module "aws-sdk"\n    at stack')],
      ],
      successes: [[plugin('img-transport-ok', 1), [fakeTransport('test-ok')]]],
    });
    expect(warnings).toEqual([
      'plugin img-transport-broken@1.0.0: its img:transports hook failed: cannot find module "aws-sdk"',
    ]);
    expect(transports.get('test-ok')).toBeDefined();
  });

  it('refuses results that are not transports, and names that are not transport names', () => {
    const warnings = run({
      successes: [
        [plugin('img-transport-odd', 1), [{ name: 'x' }, fakeTransport('Bad Name')]],
        [plugin('img-transport-odd2', 1), 'nope'],
      ],
    });
    expect(warnings).toEqual([
      'plugin img-transport-odd@1.0.0: something that is not a transport was returned; transport "Bad Name" cannot be registered: invalid reference "Bad Name": a transport name is lower-case letters, digits and dashes',
      'plugin img-transport-odd2@1.0.0: its img:transports hook returned string, not a list of transports',
    ]);
    expect(transports.get('Bad Name')).toBeUndefined();
  });

  it('supports the transport API version of @img/core', () => {
    expect(supportedApiVersions).toContain(core.transportApiVersion);
  });
});

describe('loadTransports', () => {
  afterEach(() => resetLoadedTransports());

  it('imports only the package of a named built-in transport, and runs no plugin hook for it', async () => {
    let hooks = 0;
    const config = {
      async runHook() {
        hooks++;
        return { successes: [], failures: [] };
      },
    } as unknown as Pick<Config, 'runHook'>;
    await loadTransports(config, () => {}, 'oci-archive');
    expect(hooks).toBe(0);
    expect(transportOrigin('oci-archive')?.package).toBe('@img/transport-oci');
    // A name no built-in has (a plugin's, or a typo) loads everything, plugins included.
    await loadTransports(config, () => {}, 'test-unknown');
    expect(hooks).toBe(1);
    expect(transportOrigin('dir')?.package).toBe('@img/transport-dir');
  });

  it('loads the built-ins first, then hands the plugins the API version and this @img/core', async () => {
    registered.push('test-hooked');
    let received: Record<string, unknown> | undefined;
    const seenAtHookTime: string[] = [];
    const config = {
      async runHook(event: string, options: Record<string, unknown>, timeout?: number, capture?: boolean) {
        expect([event, timeout, capture]).toEqual(['img:transports', 10_000, true]);
        received = options;
        seenAtHookTime.push(...transports.names());
        const hostCore = options.core as typeof core;
        return {
          successes: [{ plugin: plugin('img-transport-hooked', 1), result: [fakeTransport('test-hooked')] }],
          failures: [
            { plugin: plugin('img-transport-fails', 1), error: new hostCore.NotSupportedError('no') },
          ],
        };
      },
    } as unknown as Pick<Config, 'runHook'>;
    const warnings: string[] = [];
    await loadTransports(config, (w) => warnings.push(w));
    expect(received?.apiVersion).toBe(core.transportApiVersion);
    expect(received?.core).toBe(core);
    expect(seenAtHookTime).toEqual(expect.arrayContaining(['dir', 'oci', 'oci-archive']));
    expect(warnings).toEqual(['plugin img-transport-fails@1.0.0: its img:transports hook failed: no']);
    expect(transportOrigin('dir')).toEqual({
      kind: 'built-in',
      package: '@img/transport-dir',
      version: '0.0.0',
    });
    expect(transportOrigin('test-hooked')?.package).toBe('img-transport-hooked');
    // Once per process.
    await loadTransports(config, (w) => warnings.push(w));
    expect(warnings).toHaveLength(1);
  });
});

describe('img transports output', () => {
  it('describes capabilities: read/write first, then the optional ones declared', () => {
    expect(describeCapabilities(undefined)).toBe('(not declared)');
    expect(describeCapabilities({ destination: false })).toBe('read-only');
    expect(
      describeCapabilities({
        deleteImage: true,
        alreadyContainsManifest: true,
        supportsOutOfOrderPuts: false,
      }),
    ).toBe('read-write, deleteImage, alreadyContainsManifest');
  });

  it('describes origins', () => {
    expect(describeOrigin({ kind: 'built-in', package: '@img/transport-dir', version: '1.2.0' })).toBe(
      'built-in @img/transport-dir 1.2.0',
    );
    expect(
      describeOrigin({ kind: 'plugin', package: 'img-transport-s3', version: '0.1.0', pluginType: 'link' }),
    ).toBe('plugin img-transport-s3 0.1.0 (linked)');
    expect(describeOrigin(undefined)).toBe('unknown (registered by code outside img)');
  });

  it('lists each transport with its origin and declared capabilities', () => {
    registered.push('test-listed');
    run({
      successes: [
        [plugin('img-transport-listed', 1, '2.0.0'), [fakeTransport('test-listed', { destination: false })]],
      ],
    });
    const rows = listTransports([transports.get('test-listed')!]);
    expect(rows).toEqual([
      {
        name: 'test-listed',
        origin: { kind: 'plugin', package: 'img-transport-listed', version: '2.0.0', pluginType: 'user' },
        capabilities: { destination: false },
      },
    ]);
  });
});

describe('img plugins install: local paths', () => {
  it('takes existing tarballs and directories as paths, relative to the working directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'img-install-path-'));
    try {
      await writeFile(join(dir, 'img-transport-x-1.0.0.tgz'), '');
      expect(await localPluginPath('./img-transport-x-1.0.0.tgz', dir)).toBe(
        join(dir, 'img-transport-x-1.0.0.tgz'),
      );
      expect(await localPluginPath('img-transport-x-1.0.0.tgz', dir)).toBe(
        join(dir, 'img-transport-x-1.0.0.tgz'),
      );
      expect(await localPluginPath('file:img-transport-x-1.0.0.tgz', dir)).toBe(
        join(dir, 'img-transport-x-1.0.0.tgz'),
      );
      expect(await localPluginPath(dir, '/')).toBe(dir);
      expect(await localPluginPath('.', dir)).toBe(dir);
      // Package names stay names, even when a file of that name exists; missing paths are not paths.
      await writeFile(join(dir, 'img-transport-x'), '');
      expect(await localPluginPath('img-transport-x', dir)).toBeUndefined();
      expect(await localPluginPath('@img/transport-s3', dir)).toBeUndefined();
      expect(await localPluginPath('./missing.tgz', dir)).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
