export type { ConvertOptions } from './convert.js';
export {
  convertManifest,
  convertManifestList,
  layerMediaType,
  schema1ToConfig,
  updateLayerInfos,
} from './convert.js';
export type { ListInstance, ManifestDescriptors } from './descriptors.js';
export { guessMediaType, manifestDescriptors, maxManifestSize, parseJsonObject } from './descriptors.js';
export { manifestDigest, matchesDigest } from './digest.js';
export {
  isImageManifestMediaType,
  isManifestListMediaType,
  MediaTypes,
  supportedManifestMediaTypes,
} from './media-types.js';
export type { Descriptor, ImageManifest, LayerInfo, ManifestList, Schema1Fields } from './model.js';
export type { ChooseInstanceOptions } from './platform.js';
export { chooseInstance, hostPlatform, platformString, wantedPlatforms } from './platform.js';
export {
  isForeignLayerMediaType,
  isSchema1MediaType,
  isValidMediaType,
  layerCompression,
  normalizeMediaType,
  parseImageManifest,
  parseManifestList,
} from './validate.js';
