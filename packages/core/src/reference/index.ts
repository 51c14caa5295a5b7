export type { NamedReference } from './docker-reference.js';
export {
  defaultDomain,
  defaultTag,
  isNameOnly,
  nameOnly,
  parseDockerReference,
  parseNormalizedNamed,
  tagNameOnly,
  withDigest,
  withTag,
} from './docker-reference.js';
