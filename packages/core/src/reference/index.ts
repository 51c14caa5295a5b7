export type { NamedReference } from './docker-reference.js';
export { parseNormalizedNamed } from './docker-reference.js';
