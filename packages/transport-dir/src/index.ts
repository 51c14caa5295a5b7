import { registerTransport } from '@img/core';
import { dirTransport } from './transport.js';

export { DirReference, newDirReference } from './reference.js';
export { dirTransport } from './transport.js';

// Importing the package makes `dir:` names parse through @img/core's parseImageName.
registerTransport(dirTransport);
