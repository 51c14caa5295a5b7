import { registerTransport } from '@img/core';
import { storageTransport } from './transport.js';

export type { ResolvedStore, StoreSpec } from './config.js';
export { resolveStore } from './config.js';
export { newStorageReference, StorageReference } from './reference.js';
export type { StorageTransport } from './transport.js';
export { storageTransport } from './transport.js';

// Importing the package makes `containers-storage:` names parseable (STYLE.md section 8).
registerTransport(storageTransport);
