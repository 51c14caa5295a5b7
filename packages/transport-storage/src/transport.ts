import { isAbsolute } from 'node:path';
import { InvalidPolicyError, isDigest, type Transport } from '@img/core';
import { parseStorageReference, type StorageReference } from './reference.js';

/** The `containers-storage:` transport: images in the local store of podman, buildah and cri-o. */
export interface StorageTransport extends Transport {
  readonly name: 'containers-storage';
  parseReference(reference: string): StorageReference;
}

function validateScope(scope: string): void {
  const fail = (reason: string) => {
    throw new InvalidPolicyError(`invalid scope "${scope}" for transport containers-storage: ${reason}`);
  };
  if (!scope.startsWith('[')) fail('it must start with a store specification "[driver@graphroot]"');
  const close = scope.indexOf(']');
  if (close < 1) fail('the store specification does not end with "]"');
  const spec = scope.slice(1, close);
  const at = spec.indexOf('@');
  const root = at === -1 ? spec : spec.slice(at + 1);
  if (at !== -1 && (spec.slice(0, at) === '' || root === '')) fail('the store specification is incomplete');
  if (!isAbsolute(root)) fail(`"${root}" is not an absolute path`);
  const rest = scope.slice(close + 1);
  if (rest === '') return;
  const fields = rest.split('@');
  if (fields.length > 3) fail('too many "@"');
  const id = /^[0-9a-f]{64}$/;
  if (fields.length === 2 && !id.test(fields[1]!) && !isDigest(fields[1]!)) {
    fail(`"${fields[1]}" is neither an image ID nor a digest`);
  }
  if (fields.length === 3 && (!isDigest(fields[1]!) || !id.test(fields[2]!))) {
    fail('expected name@digest@ID');
  }
}

/**
 * The `containers-storage:` transport. Registered with @img/core when this package is imported.
 *
 * @example
 * const ref = storageTransport.parseReference('[vfs@/srv/store+/run/store]localhost/app:v1');
 */
export const storageTransport: StorageTransport = {
  name: 'containers-storage',
  parseReference: (reference) => parseStorageReference(reference),
  validatePolicyConfigurationScope: validateScope,
  capabilities: {
    deleteImage: true,
    signatures: true,
    alreadyContainsManifest: true,
    supportsOutOfOrderPuts: true,
  },
};
