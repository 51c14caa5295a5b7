import type { Digest } from '../digest.js';

/**
 * How a blob reached the destination: already there (`reused`, a substitute included), mounted from
 * another repository of the same registry, or its bytes copied.
 */
export type BlobOutcome = 'reused' | 'mounted' | 'copied';

/** A progress event of a copy; subscribe with the `onEvent` option. */
export type CopyEvent =
  /** The copy of one image (or one instance of a list) begins. */
  | { type: 'image-start'; manifestDigest: Digest; instance: boolean; layers: number; size: number }
  /** The destination already holds the whole image: nothing (or only signatures) is written. */
  | { type: 'image-present'; manifestDigest: Digest; missingSignatures: number }
  | { type: 'blob-start'; digest: Digest; size: number; kind: 'layer' | 'config' }
  /** Bytes moved so far for a blob being copied (throttled). */
  | { type: 'blob-bytes'; digest: Digest; bytes: number; size: number }
  /**
   * The destination had the blob (or an equivalent one, `substitute`): no bytes moved. `how`: it was
   * already `present`, `mounted` from another repository, or `substituted` by another compression.
   */
  | {
      type: 'blob-reused';
      digest: Digest;
      size: number;
      kind: 'layer' | 'config';
      how: 'present' | 'mounted' | 'substituted';
      substitute?: Digest;
    }
  /** A blob was copied: `bytes` read from the source, `stored` is what the destination holds. */
  | { type: 'blob-done'; digest: Digest; bytes: number; kind: 'layer' | 'config'; stored: Digest }
  | { type: 'manifest-written'; digest: Digest; mediaType: string; instance: boolean }
  | { type: 'signatures-written'; count: number; manifestDigest: Digest }
  /** The copy finished: bytes moved against the image's size. */
  | {
      type: 'done';
      manifestDigest: Digest;
      bytesMoved: number;
      imageSize: number;
      blobsCopied: number;
      blobsReused: number;
      blobsMounted: number;
    };
