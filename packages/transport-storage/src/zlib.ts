/** node:zlib, loaded when first used: ~2 ms of start-up that a copy moving no layer need not pay. */
export const zlib = (): typeof import('node:zlib') => process.getBuiltinModule('node:zlib');
