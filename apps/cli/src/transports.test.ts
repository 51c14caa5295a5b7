import { type ImageReference, type Transport, transports, unregisterTransport } from '@img/core';
import type { Hook } from '@oclif/core';
import { afterEach, describe, expect, it } from 'vitest';
import { registerPluginTransports } from './transports.js';

function fakeTransport(name: string): Transport {
  return {
    name,
    parseReference: () => ({}) as ImageReference,
    validatePolicyConfigurationScope: () => {},
  };
}

function plugin(name: string, apiVersion?: unknown) {
  return {
    name,
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
  it('registers the transports a plugin hook returns', () => {
    const s3 = fakeTransport('test-s3');
    registered.push('test-s3');
    expect(run({ successes: [[plugin('img-transport-s3', 1), [s3]]] })).toEqual([]);
    expect(transports.get('test-s3')).toBe(s3);
  });

  it('warns about a taken name and keeps the transport already registered', () => {
    const first = fakeTransport('test-taken');
    registered.push('test-taken');
    run({ successes: [[plugin('img-transport-a', 1), [first]]] });
    const warnings = run({
      successes: [[plugin('img-transport-b', 1), [fakeTransport('test-taken'), fakeTransport('test-other')]]],
    });
    registered.push('test-other');
    expect(warnings).toEqual([
      'plugin img-transport-b: transport "test-taken" is already registered; the plugin\'s is not used',
    ]);
    expect(transports.get('test-taken')).toBe(first);
    expect(transports.get('test-other')).toBeDefined();
  });

  it('skips a plugin built for another transport API version, with one warning naming it', () => {
    const warnings = run({
      successes: [
        [plugin('img-transport-new', 2), [fakeTransport('test-new')]],
        [plugin('img-transport-none'), [fakeTransport('test-none')]],
      ],
    });
    expect(warnings).toEqual([
      'plugin img-transport-new: transport API version 2 is not supported (this img supports 1); its transports are not loaded',
      'plugin img-transport-none: package.json declares no "img": {"apiVersion": …}; its transports are not loaded',
    ]);
    expect(transports.get('test-new')).toBeUndefined();
    expect(transports.get('test-none')).toBeUndefined();
  });

  it('reports a failed hook and still registers the other plugins', () => {
    registered.push('test-ok');
    const warnings = run({
      failures: [
        [plugin('img-transport-broken', 1), new Error('cannot find module "aws-sdk"\n    at stack')],
      ],
      successes: [[plugin('img-transport-ok', 1), [fakeTransport('test-ok')]]],
    });
    expect(warnings).toEqual([
      'plugin img-transport-broken: its img:transports hook failed: cannot find module "aws-sdk"',
    ]);
    expect(transports.get('test-ok')).toBeDefined();
  });

  it('refuses results that are not transports', () => {
    const warnings = run({
      successes: [
        [plugin('img-transport-odd', 1), [{ name: 'x' }]],
        [plugin('img-transport-odd2', 1), 'nope'],
      ],
    });
    expect(warnings).toEqual([
      'plugin img-transport-odd: its img:transports hook returned something that is not a transport',
      'plugin img-transport-odd2: its img:transports hook returned string, not a list of transports',
    ]);
  });
});
