import { describe, expect, it } from 'vitest';
import { computeDigest, type Digest } from '../digest.js';
import { NoMatchingPlatformError } from '../errors.js';
import type { Platform } from '../types.js';
import type { ListInstance } from './descriptors.js';
import { MediaTypes } from './media-types.js';
import {
  chooseInstance,
  goArch,
  goOs,
  hostPlatform,
  hostVariant,
  platformString,
  wantedPlatforms,
} from './platform.js';

const blob = (n: number): Digest => computeDigest(`instance ${n}`);
const linux = (architecture: string, variant?: string): Platform =>
  variant ? { os: 'linux', architecture, variant } : { os: 'linux', architecture };

function index(platforms: Array<Platform | undefined>, mediaType: string = MediaTypes.ociIndex) {
  const manifests: ListInstance[] = platforms.map((platform, i) => ({
    mediaType: MediaTypes.ociManifest,
    digest: blob(i),
    size: 100 + i,
    ...(platform ? { platform } : {}),
  }));
  return { mediaType, manifests };
}

const pick = (
  list: ReturnType<typeof index>,
  ctx: Parameters<typeof chooseInstance>[1],
  preferGzip = false,
) => list.manifests.indexOf(chooseInstance(list, ctx, { preferGzip }));

describe('platformString', () => {
  it('writes os/architecture/variant', () => {
    expect(platformString(linux('arm64', 'v8'))).toBe('linux/arm64/v8');
  });

  it('leaves out an absent variant', () => {
    expect(platformString(linux('amd64'))).toBe('linux/amd64');
  });
});

describe('host platform', () => {
  it.each([
    ['linux', 'linux'],
    ['darwin', 'darwin'],
    ['win32', 'windows'],
    ['freebsd', 'freebsd'],
  ])('maps process.platform %s to GOOS %s', (node, go) => {
    expect(goOs(node)).toBe(go);
  });

  it.each([
    ['x64', true, 'amd64'],
    ['arm64', true, 'arm64'],
    ['arm', true, 'arm'],
    ['ia32', true, '386'],
    ['ppc64', true, 'ppc64le'],
    ['ppc64', false, 'ppc64'],
    ['s390x', false, 's390x'],
  ] as const)('maps process.arch %s (little-endian: %s) to GOARCH %s', (node, le, go) => {
    expect(goArch(node, le)).toBe(go);
  });

  it('gives arm64 the variant v8', () => {
    expect(hostVariant('linux', 'arm64', undefined)).toBe('v8');
  });

  it('gives 32-bit arm the variant Node was built for', () => {
    expect(hostVariant('linux', 'arm', '6')).toBe('v6');
  });

  it('gives 32-bit arm on windows the variant v7', () => {
    expect(hostVariant('windows', 'arm', '6')).toBe('v7');
  });

  it('gives amd64 no variant', () => {
    expect(hostVariant('linux', 'amd64', undefined)).toBeUndefined();
  });

  it('takes os, architecture and variant from the context', () => {
    expect(hostPlatform({ osChoice: 'windows', architectureChoice: 'arm', variantChoice: 'v6' })).toEqual({
      os: 'windows',
      architecture: 'arm',
      variant: 'v6',
    });
  });

  it('does not add the host variant to an architecture chosen in the context', () => {
    expect(hostPlatform({ architectureChoice: 'arm64' }).variant).toBeUndefined();
  });
});

describe('wantedPlatforms', () => {
  const variants = (ctx: Parameters<typeof wantedPlatforms>[0]) =>
    wantedPlatforms(ctx).map((p) => p.variant ?? '');

  it('accepts arm v7, v6, v5 and no variant for arm v7', () => {
    expect(variants({ osChoice: 'linux', architectureChoice: 'arm', variantChoice: 'v7' })).toEqual([
      'v7',
      'v6',
      'v5',
      '',
    ]);
  });

  it('accepts v8 and no variant for arm64 v8', () => {
    expect(variants({ osChoice: 'linux', architectureChoice: 'arm64', variantChoice: 'v8' })).toEqual([
      'v8',
      '',
    ]);
  });

  it('prefers no variant, then every known one, when none is wanted', () => {
    expect(variants({ osChoice: 'linux', architectureChoice: 'arm' })).toEqual(['', 'v8', 'v7', 'v6', 'v5']);
  });

  it('accepts only no variant for an architecture without variants', () => {
    expect(variants({ osChoice: 'linux', architectureChoice: 'amd64' })).toEqual(['']);
  });

  it('accepts an unknown variant and no variant', () => {
    expect(variants({ osChoice: 'linux', architectureChoice: 'riscv64', variantChoice: 'rva22' })).toEqual([
      'rva22',
      '',
    ]);
  });
});

describe('chooseInstance', () => {
  const amd64 = { osChoice: 'linux', architectureChoice: 'amd64' };
  const armV7 = { osChoice: 'linux', architectureChoice: 'arm', variantChoice: 'v7' };

  it('chooses the instance for the wanted platform', () => {
    expect(pick(index([linux('arm64', 'v8'), linux('amd64')]), amd64)).toBe(1);
  });

  it('chooses an arm64 instance without a variant for arm64 v8', () => {
    expect(
      pick(index([linux('amd64'), linux('arm64')]), {
        osChoice: 'linux',
        architectureChoice: 'arm64',
        variantChoice: 'v8',
      }),
    ).toBe(1);
  });

  it('chooses arm v6 for arm v7 when there is no v7', () => {
    expect(pick(index([linux('arm', 'v5'), linux('arm', 'v6')]), armV7)).toBe(1);
  });

  it('prefers the closer variant whatever the order', () => {
    expect(pick(index([linux('arm', 'v6'), linux('arm', 'v7')]), armV7)).toBe(1);
  });

  it('does not choose arm v8 for arm v7', () => {
    expect(() => chooseInstance(index([linux('arm', 'v8')]), armV7)).toThrow(NoMatchingPlatformError);
  });

  it('compares the os', () => {
    expect(() => chooseInstance(index([{ os: 'windows', architecture: 'amd64' }]), amd64)).toThrow(
      NoMatchingPlatformError,
    );
  });

  it('falls back to an index entry without a platform', () => {
    expect(pick(index([linux('arm64'), undefined]), amd64)).toBe(1);
  });

  it('prefers a matching platform over an index entry without one', () => {
    expect(pick(index([undefined, linux('amd64')]), amd64)).toBe(1);
  });

  it('never chooses a Docker list entry without a platform', () => {
    expect(() => chooseInstance(index([undefined], MediaTypes.dockerV2List), amd64)).toThrow(
      NoMatchingPlatformError,
    );
  });

  it('chooses the first of equally good entries', () => {
    expect(pick(index([linux('amd64'), linux('amd64')]), amd64)).toBe(0);
  });

  it('prefers an instance marked zstd', () => {
    const list = index([linux('amd64'), linux('amd64')]);
    list.manifests[1] = {
      ...list.manifests[1],
      annotations: { 'io.github.containers.compression.zstd': 'true' },
    } as ListInstance;
    expect(pick(list, amd64)).toBe(1);
  });

  it('prefers the gzip instance when asked to', () => {
    const list = index([linux('amd64'), linux('amd64')]);
    list.manifests[0] = {
      ...list.manifests[0],
      annotations: { 'io.github.containers.compression.zstd': 'true' },
    } as ListInstance;
    expect(pick(list, amd64, true)).toBe(1);
  });

  it('names the wanted platform and those available when none fits', () => {
    expect(() => chooseInstance(index([linux('arm64', 'v8'), linux('s390x')]), amd64)).toThrow(
      'no image found in image index for linux/amd64 (available: linux/arm64/v8, linux/s390x)',
    );
  });

  it('says so when the list is empty', () => {
    expect(() => chooseInstance(index([], MediaTypes.dockerV2List), amd64)).toThrow(
      'no image found in manifest list for linux/amd64 (available: none)',
    );
  });
});
