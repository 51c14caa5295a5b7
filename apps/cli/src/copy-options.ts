import {
  type CopyEvent,
  type CopyOptions,
  type ImageListSelection,
  MediaTypes,
  type PolicyChecker,
  type SystemContext,
} from '@img/core';

/** `copy --format` values and the manifest media type each forces (as skopeo maps them). */
// v2s1 is left out until img can write schema 1 (it needs a libtrust signature): offering it would
// only ever fail.
export const manifestFormats = {
  oci: MediaTypes.ociManifest,
  v2s2: MediaTypes.dockerV2Schema2,
} as const;

/** `copy --multi-arch` values. */
export const multiArchValues = [
  'system',
  'all',
  'index-only',
] as const satisfies readonly ImageListSelection[];

/** The `copy` flags that shape the copy itself. */
export interface CopyFlags {
  all?: boolean | undefined;
  'multi-arch'?: string | undefined;
  format?: string | undefined;
  'remove-signatures'?: boolean | undefined;
  'preserve-digests'?: boolean | undefined;
  'image-parallel-copies'?: number | undefined;
}

/** What `copy` supplies besides its flags. */
export interface CopyWiring {
  policy: PolicyChecker;
  sourceCtx: SystemContext;
  destinationCtx: SystemContext;
  signal?: AbortSignal | undefined;
  onEvent?: ((event: CopyEvent) => void) | undefined;
}

/** The image list selection the flags ask for: --all is `all`, else --multi-arch, else `system`. */
export function imageListSelection(flags: Pick<CopyFlags, 'all' | 'multi-arch'>): ImageListSelection {
  if (flags.all) return 'all';
  return (flags['multi-arch'] as ImageListSelection | undefined) ?? 'system';
}

/** The copyImage options for `img copy`'s flags. */
export function copyOptionsFromFlags(flags: CopyFlags, wiring: CopyWiring): CopyOptions {
  const options: CopyOptions = {
    policy: wiring.policy,
    sourceCtx: wiring.sourceCtx,
    destinationCtx: wiring.destinationCtx,
    imageListSelection: imageListSelection(flags),
  };
  if (flags.format)
    options.forceManifestMediaType = manifestFormats[flags.format as keyof typeof manifestFormats];
  if (flags['remove-signatures']) options.removeSignatures = true;
  if (flags['preserve-digests']) options.preserveDigests = true;
  // skopeo: 0 leaves the library default (6).
  if (flags['image-parallel-copies']) options.concurrency = flags['image-parallel-copies'];
  if (wiring.signal) options.signal = wiring.signal;
  if (wiring.onEvent) options.onEvent = wiring.onEvent;
  return options;
}

/**
 * The SystemContext of one side with the oci: transport's options (skopeo's `--shared-blob-dir` and
 * `--dest-oci-accept-uncompressed-layers`) added under `transportOptions.oci`, when any is set.
 */
export function withOciOptions(
  ctx: SystemContext,
  oci: { sharedBlobDir?: string | undefined; acceptUncompressedLayers?: boolean | undefined },
): SystemContext {
  const options: { sharedBlobDir?: string; acceptUncompressedLayers?: boolean } = {};
  if (oci.sharedBlobDir) options.sharedBlobDir = oci.sharedBlobDir;
  if (oci.acceptUncompressedLayers) options.acceptUncompressedLayers = true;
  if (Object.keys(options).length === 0) return { ...ctx };
  return { ...ctx, transportOptions: { ...ctx.transportOptions, oci: options } };
}
