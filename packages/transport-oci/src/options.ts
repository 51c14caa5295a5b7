import { resolve } from 'node:path';
import type { SystemContext } from '@img/core';

/**
 * Settings of the `oci:` and `oci-archive:` transports, given as `ctx.transportOptions.oci`
 * (skopeo's `--shared-blob-dir` and `--dest-oci-accept-uncompressed-layers`).
 */
export interface OciTransportOptions {
  /**
   * A directory that holds the blobs (as `<alg>/<hex>`) of every layout using it, instead of each
   * layout's own `blobs/`. Used by `oci:` only: an archive must carry its blobs. Deleting an image
   * then removes no blob at all: not from it, since other layouts may use them, nor from the
   * layout's own `blobs/`, whose users cannot be told while the manifests live in the shared one.
   */
  sharedBlobDir?: string;
  /** Accept layers as they come instead of asking the copy engine to compress them. */
  acceptUncompressedLayers?: boolean;
}

/** The oci options of a SystemContext, checked; a malformed entry throws TypeError (a caller's bug). */
export function ociOptions(ctx: SystemContext): {
  sharedBlobDir: string | undefined;
  acceptUncompressedLayers: boolean;
} {
  const raw = ctx.transportOptions?.oci as OciTransportOptions | undefined;
  if (raw === undefined) return { sharedBlobDir: undefined, acceptUncompressedLayers: false };
  if (typeof raw !== 'object' || raw === null) throw new TypeError('transportOptions.oci must be an object');
  const { sharedBlobDir, acceptUncompressedLayers } = raw;
  if (sharedBlobDir !== undefined && (typeof sharedBlobDir !== 'string' || sharedBlobDir === '')) {
    throw new TypeError('transportOptions.oci.sharedBlobDir must be a non-empty path');
  }
  if (acceptUncompressedLayers !== undefined && typeof acceptUncompressedLayers !== 'boolean') {
    throw new TypeError('transportOptions.oci.acceptUncompressedLayers must be a boolean');
  }
  return {
    sharedBlobDir: sharedBlobDir === undefined ? undefined : resolve(sharedBlobDir),
    acceptUncompressedLayers: acceptUncompressedLayers ?? false,
  };
}
