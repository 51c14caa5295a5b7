import type * as ImgCore from '@img/core';

/**
 * The values this package takes from @img/core: only error classes. They are handed in rather than
 * imported, so that the same code runs on the host's @img/core when img loads the plugin (the hook
 * gets it in its options) and on the caller's when a program imports the package (src/index.ts).
 * The types come from `import type`, which leaves nothing in the built JavaScript.
 */
export type TarballCore = Pick<
  typeof ImgCore,
  | 'transportApiVersion'
  | 'BlobUnknownError'
  | 'InvalidLayoutError'
  | 'InvalidPolicyError'
  | 'InvalidReferenceError'
  | 'ManifestUnknownError'
  | 'NotSupportedError'
>;

/** The transport contract version this package implements (package.json says the same in `img.apiVersion`). */
export const implementedApiVersion = 1;
