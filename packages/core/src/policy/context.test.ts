import { describe, expect, it } from 'vitest';
import { NotSupportedError, PolicyRejectedError } from '../errors.js';
import type { ImageReference, ImageSource, RawManifest, Transport } from '../types.js';
import { PolicyContext } from './context.js';
import { parsePolicy } from './parse.js';
import { insecureAcceptAnythingPolicy, type Policy, type PolicyRequirement } from './policy.js';

// A transport named `fake` whose references are absolute paths: the identity is the path, the
// namespaces its parent directories, most specific first (as dir: does). Never registered.
const fakeTransport: Transport = {
  name: 'fake',
  parseReference: (reference) => fakeRef(reference),
  validatePolicyConfigurationScope: () => {},
};

function fakeRef(path: string): ImageReference {
  const namespaces: string[] = [];
  for (let dir = path.slice(0, path.lastIndexOf('/')); dir !== ''; dir = dir.slice(0, dir.lastIndexOf('/'))) {
    namespaces.push(dir);
  }
  return {
    transport: fakeTransport,
    dockerReference: undefined,
    stringWithinTransport: () => path,
    toString: () => `fake:${path}`,
    policyConfigurationIdentity: () => path,
    policyConfigurationNamespaces: () => namespaces,
    newImageSource: () => Promise.reject(new Error('not used')),
    newImageDestination: () => Promise.reject(new Error('not used')),
  };
}

/** An image source that only has a reference: evaluation reads nothing else yet. */
function sourceOf(path: string): ImageSource {
  const unused = () => Promise.reject(new Error('not used'));
  return {
    reference: fakeRef(path),
    getManifest: unused,
    getBlob: unused,
    getSignatures: unused,
    hasThreadSafeGetBlob: true,
    close: () => Promise.resolve(),
  };
}

const manifest: RawManifest = {
  bytes: new TextEncoder().encode('{}'),
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
};

/** A requirement list tagged so that tests can tell which one was selected. */
const marked = (keyPath: string): PolicyRequirement[] => [
  { type: 'signedBy', keyType: 'GPGKeys', keyPath, signedIdentity: { type: 'matchExact' } },
];

const layered = parsePolicy(
  JSON.stringify({
    default: marked('global-default'),
    transports: {
      fake: {
        '': marked('transport-default'),
        '/srv': marked('/srv'),
        '/srv/images': marked('/srv/images'),
        '/srv/images/app': marked('identity'),
      },
      other: { '': marked('other-transport') },
    },
  }),
);

/** Which marked list the context selects for the fake reference at `path`. */
const selected = (policy: Policy, path: string) => {
  const first = new PolicyContext(policy).requirementsFor(fakeRef(path))[0];
  return first?.type === 'signedBy' ? first.keyPath : first?.type;
};

describe('PolicyContext.requirementsFor', () => {
  it('prefers the identity scope over every namespace', () => {
    expect(selected(layered, '/srv/images/app')).toBe('identity');
  });

  it('prefers the most specific namespace', () => {
    expect(selected(layered, '/srv/images/other')).toBe('/srv/images');
  });

  it('falls back to a broader namespace', () => {
    expect(selected(layered, '/srv/cache/x')).toBe('/srv');
  });

  it('falls back to the transport default when no scope matches', () => {
    expect(selected(layered, '/home/u/app')).toBe('transport-default');
  });

  it('falls back to the global default when the transport has no matching scope nor default', () => {
    const policy = parsePolicy(
      JSON.stringify({ default: marked('global-default'), transports: { fake: { '/srv': marked('/srv') } } }),
    );
    expect(selected(policy, '/home/u/app')).toBe('global-default');
  });

  it('uses the global default for a transport the policy does not list', () => {
    const policy = parsePolicy(
      JSON.stringify({
        default: marked('global-default'),
        transports: { other: { '': [{ type: 'reject' }] } },
      }),
    );
    expect(selected(policy, '/srv/images/app')).toBe('global-default');
  });

  it('applies only the selected list, not the broader ones as well', () => {
    expect(new PolicyContext(layered).requirementsFor(fakeRef('/srv/images/app'))).toHaveLength(1);
  });
});

describe('PolicyContext.isRunningImageAllowed', () => {
  it('accepts any image under the insecure policy', async () => {
    await expect(
      new PolicyContext(insecureAcceptAnythingPolicy).isRunningImageAllowed(sourceOf('/a/b'), manifest),
    ).resolves.toBeUndefined();
  });

  it('rejects an image under reject with a PolicyRejectedError naming it', async () => {
    const policy = parsePolicy('{"default": [{"type": "reject"}]}');
    const check = new PolicyContext(policy).isRunningImageAllowed(sourceOf('/a/b'), manifest);
    await expect(check).rejects.toBeInstanceOf(PolicyRejectedError);
    await expect(check).rejects.toThrow(/^running image fake:\/a\/b is rejected by policy$/);
  });

  it('rejects when any requirement of the list rejects', async () => {
    const policy = parsePolicy('{"default": [{"type": "insecureAcceptAnything"}, {"type": "reject"}]}');
    await expect(
      new PolicyContext(policy).isRunningImageAllowed(sourceOf('/a/b'), manifest),
    ).rejects.toBeInstanceOf(PolicyRejectedError);
  });

  it('accepts an image whose scope allows it while the default rejects', async () => {
    const policy = parsePolicy(
      JSON.stringify({
        default: [{ type: 'reject' }],
        transports: { fake: { '/trusted': [{ type: 'insecureAcceptAnything' }] } },
      }),
    );
    await expect(
      new PolicyContext(policy).isRunningImageAllowed(sourceOf('/trusted/app'), manifest),
    ).resolves.toBeUndefined();
  });

  it('reports signedBy as not supported yet, naming the image', async () => {
    const check = new PolicyContext(layered).isRunningImageAllowed(sourceOf('/srv/images/app'), manifest);
    await expect(check).rejects.toBeInstanceOf(NotSupportedError);
    await expect(check).rejects.toThrow(
      'signature verification ("signedBy") is not supported yet: image "fake:/srv/images/app" requires it by policy',
    );
  });

  it('reports sigstoreSigned as not supported yet', async () => {
    const policy = parsePolicy('{"default": [{"type": "sigstoreSigned", "keyPath": "/k.pub"}]}');
    await expect(new PolicyContext(policy).isRunningImageAllowed(sourceOf('/a'), manifest)).rejects.toThrow(
      'signature verification ("sigstoreSigned") is not supported yet: image "fake:/a" requires it by policy',
    );
  });

  it('reports signedBaseLayer as not supported yet', async () => {
    const policy = parsePolicy(
      '{"default": [{"type": "signedBaseLayer", "baseLayerIdentity": {"type": "matchRepository"}}]}',
    );
    await expect(
      new PolicyContext(policy).isRunningImageAllowed(sourceOf('/a'), manifest),
    ).rejects.toBeInstanceOf(NotSupportedError);
  });

  it('stops at the first requirement that fails, in the order of the file', async () => {
    const policy = parsePolicy(
      '{"default": [{"type": "reject"}, {"type": "sigstoreSigned", "keyPath": "/k.pub"}]}',
    );
    await expect(
      new PolicyContext(policy).isRunningImageAllowed(sourceOf('/a'), manifest),
    ).rejects.toBeInstanceOf(PolicyRejectedError);
  });

  it('rejects when a policy built in code selects an empty list', async () => {
    const policy: Policy = { default: [], transports: new Map() };
    await expect(new PolicyContext(policy).isRunningImageAllowed(sourceOf('/a'), manifest)).rejects.toThrow(
      'running image fake:/a is rejected by policy: no requirements apply',
    );
  });
});
