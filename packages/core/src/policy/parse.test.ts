import { afterEach, describe, expect, it } from 'vitest';
import { InvalidPolicyError } from '../errors.js';
import { registerTransport, unregisterTransport } from '../transports.js';
import type { ImageReference, Transport } from '../types.js';
import { parsePolicy } from './parse.js';
import { findDuplicateKey, formatJsonPath } from './strict-json.js';

// The default policy containers-common installs on Fedora and RHEL.
const fedoraDefault = `{
    "default": [
        {
            "type": "insecureAcceptAnything"
        }
    ],
    "transports": {
        "docker": {
            "registry.access.redhat.com": [
                {
                    "type": "signedBy",
                    "keyType": "GPGKeys",
                    "keyPaths": ["/etc/pki/rpm-gpg/RPM-GPG-KEY-redhat-release", "/etc/pki/rpm-gpg/RPM-GPG-KEY-redhat-beta"]
                }
            ],
            "registry.redhat.io": [
                {
                    "type": "signedBy",
                    "keyType": "GPGKeys",
                    "keyPaths": ["/etc/pki/rpm-gpg/RPM-GPG-KEY-redhat-release", "/etc/pki/rpm-gpg/RPM-GPG-KEY-redhat-beta"]
                }
            ]
        },
        "docker-daemon": {
            "": [
                {
                    "type": "insecureAcceptAnything"
                }
            ]
        }
    }
}`;

/** Parses `doc` (an object, serialised here) and returns the InvalidPolicyError message. */
function refusal(doc: unknown, source = '/etc/containers/policy.json'): string {
  const text = typeof doc === 'string' ? doc : JSON.stringify(doc);
  try {
    parsePolicy(text, source);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidPolicyError);
    return (err as Error).message;
  }
  throw new Error('parsePolicy accepted the policy');
}

/** A policy whose default list is `[requirement]`. */
const withDefault = (requirement: unknown) => ({ default: [requirement] });

/** A `signedBy` requirement with `signedIdentity` set to `identity`. */
const signedByWith = (identity: unknown) =>
  withDefault({ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/k.gpg', signedIdentity: identity });

describe('parsePolicy of valid files', () => {
  it('reads the Fedora default policy', () => {
    const policy = parsePolicy(fedoraDefault, '/etc/containers/policy.json');
    expect(policy.default).toEqual([{ type: 'insecureAcceptAnything' }]);
    expect([...policy.transports.keys()]).toEqual(['docker', 'docker-daemon']);
    expect(policy.transports.get('docker')?.get('registry.redhat.io')).toEqual([
      {
        type: 'signedBy',
        keyType: 'GPGKeys',
        keyPaths: ['/etc/pki/rpm-gpg/RPM-GPG-KEY-redhat-release', '/etc/pki/rpm-gpg/RPM-GPG-KEY-redhat-beta'],
        signedIdentity: { type: 'matchRepoDigestOrExact' },
      },
    ]);
    expect(policy.transports.get('docker-daemon')?.get('')).toEqual([{ type: 'insecureAcceptAnything' }]);
  });

  it('reads bytes as UTF-8', () => {
    const policy = parsePolicy(new TextEncoder().encode(fedoraDefault));
    expect(policy.transports.get('docker')?.size).toBe(2);
  });

  it('keeps per-transport and per-scope entries apart', () => {
    const policy = parsePolicy(
      JSON.stringify({
        default: [{ type: 'reject' }],
        transports: {
          docker: {
            '': [{ type: 'reject' }],
            'docker.io/library/busybox': [{ type: 'insecureAcceptAnything' }],
            '*.example.com': [{ type: 'insecureAcceptAnything' }, { type: 'reject' }],
          },
          dir: { '': [{ type: 'insecureAcceptAnything' }] },
        },
      }),
    );
    const docker = policy.transports.get('docker');
    expect([...(docker?.keys() ?? [])]).toEqual(['', 'docker.io/library/busybox', '*.example.com']);
    expect(docker?.get('*.example.com')).toEqual([{ type: 'insecureAcceptAnything' }, { type: 'reject' }]);
    expect(policy.transports.get('dir')?.get('')).toEqual([{ type: 'insecureAcceptAnything' }]);
  });

  it('gives a policy without transports an empty transport map', () => {
    expect(parsePolicy('{"default": [{"type": "reject"}]}').transports.size).toBe(0);
  });

  it('keeps scopes of transports that are not registered', () => {
    const policy = parsePolicy(
      JSON.stringify({
        default: [{ type: 'reject' }],
        transports: { s3: { 'any scope at all': [{ type: 'reject' }] } },
      }),
    );
    expect(policy.transports.get('s3')?.has('any scope at all')).toBe(true);
  });

  it('keeps a scope named like an Object.prototype member as a plain scope', () => {
    const policy = parsePolicy(
      '{"default": [{"type": "reject"}], "transports": {"x": {"__proto__": [{"type": "reject"}]}}}',
    );
    expect(policy.transports.get('x')?.get('__proto__')).toEqual([{ type: 'reject' }]);
  });

  it('decodes signedBy keyData from base64', () => {
    const policy = parsePolicy(
      JSON.stringify(
        withDefault({
          type: 'signedBy',
          keyType: 'GPGKeys',
          keyData: Buffer.from('keyring').toString('base64'),
        }),
      ),
    );
    const requirement = policy.default[0];
    expect(requirement?.type === 'signedBy' && Buffer.from(requirement.keyData ?? []).toString()).toBe(
      'keyring',
    );
  });

  it('reads every signedBy key type containers/image knows', () => {
    for (const keyType of ['GPGKeys', 'signedByGPGKeys', 'X509Certificates', 'signedByX509CAs']) {
      const policy = parsePolicy(JSON.stringify(withDefault({ type: 'signedBy', keyType, keyPath: '/k' })));
      expect(policy.default[0]).toMatchObject({ keyType });
    }
  });

  it('accepts an empty signedBy keyPaths, as containers/image does', () => {
    const policy = parsePolicy(
      JSON.stringify(withDefault({ type: 'signedBy', keyType: 'GPGKeys', keyPaths: [] })),
    );
    expect(policy.default[0]).toMatchObject({ keyPaths: [] });
  });

  it('reads the identity matches that need no docker reference', () => {
    for (const type of ['matchExact', 'matchRepoDigestOrExact', 'matchRepository']) {
      expect(parsePolicy(JSON.stringify(signedByWith({ type }))).default[0]).toMatchObject({
        signedIdentity: { type },
      });
    }
  });

  it('reads an exactReference identity with a tag', () => {
    const identity = { type: 'exactReference', dockerReference: 'docker.io/library/busybox:1.36' };
    expect(parsePolicy(JSON.stringify(signedByWith(identity))).default[0]).toMatchObject({
      signedIdentity: identity,
    });
  });

  it('reads an exactRepository identity', () => {
    const identity = { type: 'exactRepository', dockerRepository: 'vendor.example.com/product/repository' };
    expect(parsePolicy(JSON.stringify(signedByWith(identity))).default[0]).toMatchObject({
      signedIdentity: identity,
    });
  });

  it('reads a remapIdentity from a namespace to a host', () => {
    const identity = {
      type: 'remapIdentity',
      prefix: 'private-mirror:5000/vendor-mirror',
      signedPrefix: 'vendor.example.com',
    };
    expect(parsePolicy(JSON.stringify(signedByWith(identity))).default[0]).toMatchObject({
      signedIdentity: identity,
    });
  });

  it('reads sigstoreSigned with a key path and a repository identity', () => {
    const requirement = {
      type: 'sigstoreSigned',
      keyPath: '/path/to/sigstore-pubkey.pub',
      signedIdentity: { type: 'matchRepository' },
    };
    expect(parsePolicy(JSON.stringify(withDefault(requirement))).default).toEqual([requirement]);
  });

  it('reads sigstoreSigned with fulcio and a rekor key', () => {
    const policy = parsePolicy(
      JSON.stringify(
        withDefault({
          type: 'sigstoreSigned',
          fulcio: {
            caPath: '/fulcio.pem',
            oidcIssuer: 'https://github.com/login/oauth',
            subjectEmail: 'a@example.com',
          },
          rekorPublicKeyPath: '/rekor.pub',
        }),
      ),
    );
    expect(policy.default[0]).toEqual({
      type: 'sigstoreSigned',
      fulcio: {
        caPath: '/fulcio.pem',
        oidcIssuer: 'https://github.com/login/oauth',
        subjectEmail: 'a@example.com',
      },
      rekorPublicKeyPath: '/rekor.pub',
      signedIdentity: { type: 'matchRepoDigestOrExact' },
    });
  });

  it('reads sigstoreSigned with a private PKI', () => {
    const pki = {
      caRootsPath: '/roots.pem',
      caIntermediatesPath: '/intermediates.pem',
      subjectHostname: 'ci.example.com',
    };
    const policy = parsePolicy(JSON.stringify(withDefault({ type: 'sigstoreSigned', pki })));
    expect(policy.default[0]).toMatchObject({ pki });
  });

  it('reads sigstoreSigned with several keys as data', () => {
    const keyDatas = [Buffer.from('one').toString('base64'), Buffer.from('two').toString('base64')];
    const policy = parsePolicy(JSON.stringify(withDefault({ type: 'sigstoreSigned', keyDatas })));
    const requirement = policy.default[0];
    expect(
      requirement?.type === 'sigstoreSigned' && requirement.keyDatas?.map((d) => Buffer.from(d).toString()),
    ).toEqual(['one', 'two']);
  });

  it('reads signedBaseLayer', () => {
    const requirement = { type: 'signedBaseLayer', baseLayerIdentity: { type: 'matchRepository' } };
    expect(parsePolicy(JSON.stringify(withDefault(requirement))).default).toEqual([requirement]);
  });
});

describe('parsePolicy refuses invalid files', () => {
  it('names the source and the JSON error for a syntax error', () => {
    expect(refusal('{"default": [')).toMatch(
      /^invalid policy in "\/etc\/containers\/policy\.json": not valid JSON: /,
    );
  });

  it('says "invalid policy" without a source when none is given', () => {
    expect(() => parsePolicy('[]')).toThrow(/^invalid policy: expected an object, got an array$/);
  });

  it('refuses bytes that are not UTF-8', () => {
    expect(() => parsePolicy(Uint8Array.of(0x7b, 0xff, 0x7d), 'p.json')).toThrow(
      'invalid policy in "p.json": not valid UTF-8',
    );
  });

  it('refuses a top level that is not an object', () => {
    expect(refusal('"reject"')).toBe(
      'invalid policy in "/etc/containers/policy.json": expected an object, got a string',
    );
  });

  it('refuses an unknown top-level key', () => {
    expect(refusal({ default: [{ type: 'reject' }], transport: {} })).toBe(
      'invalid policy in "/etc/containers/policy.json": unknown key "transport"',
    );
  });

  it('refuses a policy without default', () => {
    expect(refusal({ transports: {} })).toBe(
      'invalid policy in "/etc/containers/policy.json": missing key "default"',
    );
  });

  it('refuses an empty default', () => {
    expect(refusal({ default: [] })).toBe(
      'invalid policy in "/etc/containers/policy.json": default: a list of requirements must not be empty',
    );
  });

  it('refuses a default that is not an array', () => {
    expect(refusal({ default: { type: 'reject' } })).toBe(
      'invalid policy in "/etc/containers/policy.json": default: expected an array of requirements, got an object',
    );
  });

  it('refuses a duplicated top-level key', () => {
    expect(
      refusal('{"default": [{"type": "reject"}], "default": [{"type": "insecureAcceptAnything"}]}'),
    ).toBe('invalid policy in "/etc/containers/policy.json": duplicate key "default"');
  });

  it('refuses a duplicated scope and says where it is', () => {
    const text =
      '{"default": [{"type": "reject"}], "transports": {"docker": {"a.io": [{"type": "reject"}], "a.io": []}}}';
    expect(refusal(text)).toBe(
      'invalid policy in "/etc/containers/policy.json": transports.docker: duplicate key "a.io"',
    );
  });

  it('refuses transports that is not an object', () => {
    expect(refusal({ default: [{ type: 'reject' }], transports: null })).toBe(
      'invalid policy in "/etc/containers/policy.json": transports: expected an object, got null',
    );
  });

  it('refuses an empty requirement list in a scope', () => {
    expect(refusal({ default: [{ type: 'reject' }], transports: { docker: { 'quay.io': [] } } })).toBe(
      'invalid policy in "/etc/containers/policy.json": transports.docker["quay.io"]: a list of requirements must not be empty',
    );
  });

  it('refuses a requirement without type', () => {
    expect(refusal(withDefault({ keyPath: '/k' }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0]: missing key "type"',
    );
  });

  it('refuses an unknown requirement type and lists the known ones', () => {
    expect(refusal(withDefault({ type: 'signedby' }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0].type: unknown requirement type "signedby" ' +
        '(known: insecureAcceptAnything, reject, signedBy, sigstoreSigned, signedBaseLayer)',
    );
  });

  it('refuses a requirement that is not an object', () => {
    expect(refusal(withDefault('reject'))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0]: expected an object, got a string',
    );
  });

  it('refuses an extra key on insecureAcceptAnything', () => {
    expect(refusal(withDefault({ type: 'insecureAcceptAnything', keyPath: '/k' }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0]: unknown key "keyPath"',
    );
  });

  it('refuses an extra key on reject', () => {
    expect(refusal(withDefault({ type: 'reject', reason: 'no' }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0]: unknown key "reason"',
    );
  });

  it('refuses a misspelt signedBy key', () => {
    expect(refusal(withDefault({ type: 'signedBy', keyType: 'GPGKeys', keyPth: '/k' }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0]: unknown key "keyPth"',
    );
  });

  it('refuses signedBy without keyType', () => {
    expect(refusal(withDefault({ type: 'signedBy', keyPath: '/k' }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0]: missing key "keyType"',
    );
  });

  it('refuses an unknown signedBy keyType', () => {
    expect(refusal(withDefault({ type: 'signedBy', keyType: 'PGP', keyPath: '/k' }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0].keyType: unknown key type "PGP" ' +
        '(known: GPGKeys, signedByGPGKeys, X509Certificates, signedByX509CAs)',
    );
  });

  it('refuses signedBy without a key', () => {
    expect(refusal(withDefault({ type: 'signedBy', keyType: 'GPGKeys' }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0]: exactly one of keyPath, keyPaths and keyData must be set, found none',
    );
  });

  it('refuses signedBy with two key sources', () => {
    expect(refusal(withDefault({ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/k', keyData: '' }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0]: exactly one of keyPath, keyPaths and keyData must be set, found keyPath and keyData',
    );
  });

  it('refuses an empty keyPath', () => {
    expect(refusal(withDefault({ type: 'signedBy', keyType: 'GPGKeys', keyPath: '' }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0].keyPath: must not be empty',
    );
  });

  it('refuses a keyPath that is not a string', () => {
    expect(refusal(withDefault({ type: 'signedBy', keyType: 'GPGKeys', keyPath: 7 }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0].keyPath: expected a string, got a number',
    );
  });

  it('refuses a keyPaths entry that is not a string and says which', () => {
    expect(refusal(withDefault({ type: 'signedBy', keyType: 'GPGKeys', keyPaths: ['/a', null] }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0].keyPaths[1]: expected a string, got null',
    );
  });

  it('refuses keyData that is not base64', () => {
    expect(refusal(withDefault({ type: 'signedBy', keyType: 'GPGKeys', keyData: 'not base64!' }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0].keyData: not valid base64',
    );
  });

  it('refuses an unknown identity match type', () => {
    expect(refusal(signedByWith({ type: 'matchAnything' }))).toMatch(
      /default\[0\]\.signedIdentity\.type: unknown identity match type "matchAnything" \(known: matchExact, /,
    );
  });

  it('refuses an extra key on matchRepository', () => {
    expect(refusal(signedByWith({ type: 'matchRepository', dockerRepository: 'a.io/b' }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0].signedIdentity: unknown key "dockerRepository"',
    );
  });

  it('refuses exactReference without dockerReference', () => {
    expect(refusal(signedByWith({ type: 'exactReference' }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0].signedIdentity: missing key "dockerReference"',
    );
  });

  it('refuses an exactReference with neither tag nor digest', () => {
    expect(
      refusal(signedByWith({ type: 'exactReference', dockerReference: 'docker.io/library/busybox' })),
    ).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0].signedIdentity.dockerReference: ' +
        '"docker.io/library/busybox" has neither a tag nor a digest',
    );
  });

  it('refuses an exactRepository that is not a docker reference', () => {
    expect(refusal(signedByWith({ type: 'exactRepository', dockerRepository: 'Vendor/Product' }))).toMatch(
      /^invalid policy in "\/etc\/containers\/policy\.json": default\[0\]\.signedIdentity\.dockerRepository: invalid reference "Vendor\/Product"/,
    );
  });

  it('refuses a remapIdentity prefix with a tag', () => {
    expect(
      refusal(
        signedByWith({ type: 'remapIdentity', prefix: 'mirror.example.com/ns:tag', signedPrefix: 'a.io' }),
      ),
    ).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0].signedIdentity.prefix: ' +
        'prefix "mirror.example.com/ns:tag" is not a host[:port] nor a repository or namespace with its host',
    );
  });

  it('refuses a remapIdentity without signedPrefix', () => {
    expect(refusal(signedByWith({ type: 'remapIdentity', prefix: 'a.io' }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0].signedIdentity: missing key "signedPrefix"',
    );
  });

  it('refuses sigstoreSigned without a key source', () => {
    expect(refusal(withDefault({ type: 'sigstoreSigned', rekorPublicKeyPath: '/r' }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0]: exactly one of keyPath, keyPaths, keyData, keyDatas, ' +
        'fulcio and pki must be set, found none',
    );
  });

  it('refuses sigstoreSigned with two rekor key sources', () => {
    expect(
      refusal(
        withDefault({
          type: 'sigstoreSigned',
          keyPath: '/k',
          rekorPublicKeyPath: '/r',
          rekorPublicKeyData: '',
        }),
      ),
    ).toMatch(/default\[0\]: at most one of .* may be set, found rekorPublicKeyPath and rekorPublicKeyData$/);
  });

  it('refuses sigstoreSigned with fulcio but no rekor key', () => {
    const fulcio = { caPath: '/ca', oidcIssuer: 'https://issuer', subjectEmail: 'a@example.com' };
    expect(refusal(withDefault({ type: 'sigstoreSigned', fulcio }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0]: one of rekorPublicKeyPath, rekorPublicKeyPaths, ' +
        'rekorPublicKeyData or rekorPublicKeyDatas must be set with fulcio',
    );
  });

  it('refuses fulcio without subjectEmail', () => {
    const fulcio = { caPath: '/ca', oidcIssuer: 'https://issuer' };
    expect(refusal(withDefault({ type: 'sigstoreSigned', fulcio, rekorPublicKeyPath: '/r' }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0].fulcio: missing key "subjectEmail"',
    );
  });

  it('refuses a pki without subject', () => {
    expect(refusal(withDefault({ type: 'sigstoreSigned', pki: { caRootsPath: '/roots' } }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0].pki: one of subjectEmail or subjectHostname must be set',
    );
  });

  it('refuses an empty sigstoreSigned keyPaths', () => {
    expect(refusal(withDefault({ type: 'sigstoreSigned', keyPaths: [] }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0].keyPaths: must not be empty',
    );
  });

  it('refuses signedBaseLayer without baseLayerIdentity', () => {
    expect(refusal(withDefault({ type: 'signedBaseLayer' }))).toBe(
      'invalid policy in "/etc/containers/policy.json": default[0]: missing key "baseLayerIdentity"',
    );
  });

  it('names the path down to the offending key inside a transport scope', () => {
    const doc = {
      default: [{ type: 'reject' }],
      transports: {
        docker: { 'docker.io/library/busybox': [{ type: 'reject' }, signedByWith({ type: 'x' }).default[0]] },
      },
    };
    expect(refusal(doc)).toMatch(
      /: transports\.docker\["docker\.io\/library\/busybox"\]\[1\]\.signedIdentity\.type: /,
    );
  });
});

describe('parsePolicy with a registered transport', () => {
  const fake: Transport = {
    name: 'fake',
    parseReference(): ImageReference {
      throw new Error('not used');
    },
    validatePolicyConfigurationScope(scope: string): void {
      if (!scope.startsWith('/')) throw new InvalidPolicyError(`scope "${scope}" is not an absolute path`);
    },
  };
  afterEach(() => unregisterTransport('fake'));

  it('lets the transport refuse a scope', () => {
    registerTransport(fake);
    const err = (() => {
      try {
        parsePolicy(
          JSON.stringify({
            default: [{ type: 'reject' }],
            transports: { fake: { relative: [{ type: 'reject' }] } },
          }),
          'p.json',
        );
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(InvalidPolicyError);
    expect(err?.message).toBe(
      'invalid policy in "p.json": transports.fake.relative: invalid scope for transport "fake": scope "relative" is not an absolute path',
    );
    expect(err?.cause).toBeInstanceOf(InvalidPolicyError);
  });

  it('accepts the scopes the transport accepts, and the transport default', () => {
    registerTransport(fake);
    const policy = parsePolicy(
      JSON.stringify({
        default: [{ type: 'reject' }],
        transports: { fake: { '': [{ type: 'reject' }], '/abs': [{ type: 'reject' }] } },
      }),
    );
    expect([...(policy.transports.get('fake')?.keys() ?? [])]).toEqual(['', '/abs']);
  });
});

describe('strict JSON helpers', () => {
  it('finds a duplicate key nested in an array of objects', () => {
    expect(findDuplicateKey('{"a": [{"x": 1}, {"y": "}", "y": 2}]}')).toEqual({ key: 'y', path: ['a', 1] });
  });

  it('compares keys after unescaping them', () => {
    expect(findDuplicateKey('{"k": 1, "\\u006b": 2}')).toEqual({ key: 'k', path: [] });
  });

  it('finds nothing when the same key is in two different objects', () => {
    expect(findDuplicateKey('{"a": {"k": 1}, "b": {"k": [1, {"k": true}]}, "k": null}')).toBeUndefined();
  });

  it('formats identifiers with dots and other keys with quotes', () => {
    expect(formatJsonPath(['transports', 'docker', 'docker.io/x', 0, 'signedIdentity'])).toBe(
      'transports.docker["docker.io/x"][0].signedIdentity',
    );
  });
});
