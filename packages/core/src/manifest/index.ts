export { isImageManifestMediaType, isManifestListMediaType, MediaTypes, supportedManifestMediaTypes } from './media-types.js';
export { guessMediaType, manifestDescriptors, maxManifestSize, parseJsonObject } from './descriptors.js';
export type { ListInstance, ManifestDescriptors } from './descriptors.js';
