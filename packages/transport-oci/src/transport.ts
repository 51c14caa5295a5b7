import { posix } from 'node:path';
import { InvalidPolicyError, type Transport } from '@img/core';
import {
  type OciArchiveReference,
  type OciReference,
  parseOciArchiveReference,
  parseOciReference,
} from './reference.js';

/**
 * A policy.json scope for a path transport (containers/image's rules): an absolute, canonical path,
 * not `/` itself (it would shadow the default scope `""`).
 */
function validatePathScope(transport: string, scope: string): void {
  if (!scope.startsWith('/')) {
    throw new InvalidPolicyError(
      `invalid scope "${scope}" for transport ${transport}: it must be an absolute path`,
    );
  }
  if (scope === '/') {
    throw new InvalidPolicyError(
      `invalid scope "/" for transport ${transport}: use the default scope "" instead`,
    );
  }
  let clean = posix.normalize(scope);
  if (clean.length > 1 && clean.endsWith('/')) clean = clean.slice(0, -1);
  if (clean !== scope) {
    throw new InvalidPolicyError(
      `invalid scope "${scope}" for transport ${transport}: the path is not canonical, perhaps "${clean}"`,
    );
  }
}

/** The `oci:` transport: images in an OCI image layout directory (`oci:path[:name]`, `oci:path:@N`). */
export interface OciTransport extends Transport {
  readonly name: 'oci';
  parseReference(reference: string): OciReference;
}

/** The `oci-archive:` transport: an image in a tar archive of an OCI image layout (`oci-archive:path[:name]`). */
export interface OciArchiveTransport extends Transport {
  readonly name: 'oci-archive';
  parseReference(reference: string): OciArchiveReference;
}

/**
 * The `oci:` transport. Registered with @img/core when this package is imported.
 *
 * @example
 * const ref = ociTransport.parseReference('/var/lib/images/app:v1');
 */
export const ociTransport: OciTransport = {
  name: 'oci',
  parseReference: (reference) => parseOciReference(reference),
  validatePolicyConfigurationScope: (scope) => validatePathScope('oci', scope),
  capabilities: {
    deleteImage: true,
    alreadyContainsManifest: true,
    getBlobPath: true,
    putBlobFromFile: true,
  },
};

/**
 * The `oci-archive:` transport. Registered with @img/core when this package is imported.
 *
 * @example
 * const ref = ociArchiveTransport.parseReference('/tmp/app.tar:v1');
 */
export const ociArchiveTransport: OciArchiveTransport = {
  name: 'oci-archive',
  parseReference: (reference) => parseOciArchiveReference(reference),
  validatePolicyConfigurationScope: (scope) => validatePathScope('oci-archive', scope),
  capabilities: { alreadyContainsManifest: true, getBlobPath: true, putBlobFromFile: true },
};
