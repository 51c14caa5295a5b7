import { posix } from 'node:path';
import { InvalidPolicyError, type Transport } from '@img/core';
import { type DirReference, newDirReference } from './reference.js';

/**
 * The `dir:` transport: `dir:PATH` names a directory holding one image as separate files, in the
 * layout of skopeo and containers/image (`version`, `manifest.json`, one file per blob named by its
 * digest, `signature-N`).
 *
 * @example
 * const ref = dirTransport.parseReference('/tmp/busybox');
 * ref.toString(); // 'dir:/tmp/busybox'
 */
export const dirTransport = {
  name: 'dir',

  /** Parses a path (relative ones against the working directory); throws InvalidReferenceError when empty. */
  parseReference(reference: string): DirReference {
    return newDirReference(reference);
  },

  /**
   * Accepts absolute, clean paths other than `/` (which would shadow the default scope `""`), as
   * containers/image does; throws InvalidPolicyError otherwise.
   */
  validatePolicyConfigurationScope(scope: string): void {
    if (!scope.startsWith('/')) {
      throw new InvalidPolicyError(`invalid policy scope "${scope}" for dir: it must be an absolute path`);
    }
    if (scope === '/') {
      throw new InvalidPolicyError('invalid policy scope "/" for dir: use the default scope "" instead');
    }
    const cleaned = posix.resolve(scope);
    if (cleaned !== scope) {
      throw new InvalidPolicyError(
        `invalid policy scope "${scope}" for dir: not in canonical form, perhaps "${cleaned}"`,
      );
    }
  },

  capabilities: {
    signatures: true,
    alreadyContainsManifest: true,
    supportsOutOfOrderPuts: true,
    getBlobPath: true,
    putBlobFromFile: true,
  },
} as const satisfies Transport;
