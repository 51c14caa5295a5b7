import { endianness } from 'node:os';
import { NoMatchingPlatformError } from '../errors.js';
import type { Platform, SystemContext } from '../types.js';
import type { ListInstance } from './descriptors.js';
import { MediaTypes } from './media-types.js';

/** What {@link chooseInstance} prefers among equally good matches. */
export interface ChooseInstanceOptions {
  /**
   * Prefer instances that are not marked zstd-compressed. By default a zstd instance is preferred,
   * as containers/image does, when an index offers one next to a gzip one for the same platform.
   */
  preferGzip?: boolean;
}

/** The annotation containers/image puts on zstd instances it adds to an OCI index. */
const zstdInstanceAnnotation = 'io.github.containers.compression.zstd';

/**
 * For each architecture with variants, the known variants from the most capable to the most
 * compatible (containers/image's platform matcher): an arm v7 host runs v7, v6 and v5 images.
 */
const compatibleVariants: Readonly<Record<string, readonly string[]>> = {
  arm: ['v8', 'v7', 'v6', 'v5'],
  arm64: ['v8'],
};

/** The Go GOOS for a Node `process.platform`. */
export function goOs(nodePlatform: string): string {
  switch (nodePlatform) {
    case 'win32':
    case 'cygwin':
      return 'windows';
    case 'sunos':
      return 'solaris';
    default:
      return nodePlatform;
  }
}

/** The Go GOARCH for a Node `process.arch`. */
export function goArch(nodeArch: string, littleEndian = endianness() === 'LE'): string {
  switch (nodeArch) {
    case 'x64':
      return 'amd64';
    case 'ia32':
      return '386';
    case 'ppc64':
      return littleEndian ? 'ppc64le' : 'ppc64';
    case 'mipsel':
      return 'mipsle';
    default:
      return nodeArch;
  }
}

/**
 * The CPU variant of a host: arm64 is v8; 32-bit arm is the version Node was built for (v7 on
 * darwin and windows, which support no other). Other architectures have no variant.
 */
export function hostVariant(os: string, arch: string, armVersion: unknown): string | undefined {
  if (arch === 'arm64') return 'v8';
  if (arch !== 'arm') return undefined;
  if (os === 'darwin' || os === 'windows') return 'v7';
  const version = typeof armVersion === 'number' || typeof armVersion === 'string' ? String(armVersion) : '';
  return /^\d+$/.test(version) ? `v${version}` : undefined;
}

function nodeArmVersion(): unknown {
  const variables = (process.config as { variables?: Record<string, unknown> }).variables;
  return variables?.arm_version;
}

/**
 * The platform wanted from lists: the context's `osChoice`, `architectureChoice` and `variantChoice`
 * where set, else the host's. The host variant is used only with the host architecture.
 */
export function hostPlatform(ctx?: SystemContext): Platform {
  const hostOs = goOs(process.platform);
  const os = ctx?.osChoice || hostOs;
  const architecture = ctx?.architectureChoice || goArch(process.arch);
  // As containers/image: once an architecture is chosen, the host variant says nothing about it.
  const variant =
    ctx?.variantChoice ||
    (ctx?.architectureChoice ? undefined : hostVariant(hostOs, architecture, nodeArmVersion()));
  return variant ? { os, architecture, variant } : { os, architecture };
}

/**
 * Every platform the wanted one can run, most preferred first: with a variant, that variant and the
 * more compatible ones down the list, then no variant; without one, no variant first and then every
 * known variant of the architecture.
 */
export function wantedPlatforms(ctx?: SystemContext): Platform[] {
  const wanted = hostPlatform(ctx);
  const known = compatibleVariants[wanted.architecture];
  let variants: string[];
  if (wanted.variant) {
    const at = known ? known.indexOf(wanted.variant) : -1;
    variants = [...(known && at !== -1 ? known.slice(at) : [wanted.variant]), ''];
  } else {
    variants = ['', ...(known ?? [])];
  }
  return variants.map((variant) =>
    variant
      ? { os: wanted.os, architecture: wanted.architecture, variant }
      : { os: wanted.os, architecture: wanted.architecture },
  );
}

/** `os/architecture[/variant]`, e.g. `linux/arm64/v8`. */
export function platformString(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

function matches(image: Platform, wanted: Platform): boolean {
  // OS version and features are not compared: the OCI spec does not define them usefully enough.
  return (
    image.os === wanted.os &&
    image.architecture === wanted.architecture &&
    (image.variant ?? '') === (wanted.variant ?? '')
  );
}

/**
 * The instance of a manifest list for the wanted platform (see {@link wantedPlatforms}), chosen as
 * containers/image does: the best-ranked platform wins, then (OCI index) a zstd instance unless
 * `preferGzip`, then the earlier entry. In an OCI index an entry without a platform matches any
 * platform, after every entry with a matching one; in a Docker list it matches none.
 *
 * Throws NoMatchingPlatformError, naming the platforms the list offers, when none fits.
 *
 * @example
 * const instance = chooseInstance(parseManifestList(bytes), { architectureChoice: 'arm64' });
 */
export function chooseInstance(
  list: { readonly mediaType?: string; readonly manifests: readonly ListInstance[] },
  ctx?: SystemContext,
  options: ChooseInstanceOptions = {},
): ListInstance {
  const wanted = wantedPlatforms(ctx);
  const docker = list.mediaType === MediaTypes.dockerV2List;
  let best: { rank: number; zstd: boolean; instance: ListInstance } | undefined;
  for (const instance of list.manifests) {
    let rank = Number.MAX_SAFE_INTEGER;
    if (instance.platform) {
      const platform = instance.platform;
      rank = wanted.findIndex((w) => matches(platform, w));
      if (rank === -1) continue;
    } else if (docker) {
      continue;
    }
    const zstd = instance.annotations?.[zstdInstanceAnnotation] === 'true';
    const better =
      best === undefined ||
      rank < best.rank ||
      (rank === best.rank && zstd !== best.zstd && (options.preferGzip ? !zstd : zstd));
    if (better) best = { rank, zstd, instance };
  }
  if (best) return best.instance;
  const first = wanted[0] as Platform;
  const available = list.manifests.map((m) => (m.platform ? platformString(m.platform) : 'unknown'));
  throw new NoMatchingPlatformError(
    `no image found in ${docker ? 'manifest list' : 'image index'} for ${platformString(first)}` +
      ` (available: ${available.length > 0 ? available.join(', ') : 'none'})`,
  );
}
