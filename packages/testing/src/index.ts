export type { MemoryCapabilities, MemoryCounters, MemoryImage } from './memory-transport.js';
export { MemoryStore } from './memory-transport.js';
export type { RandomImageOptions, TestImage, TestIndex, TestLayer } from './random.js';
export { makeTar, randomBytes, randomImage, randomIndex, seededRandom } from './random.js';
export type { ReadBackImage } from './validate.js';
export { readImage } from './validate.js';
