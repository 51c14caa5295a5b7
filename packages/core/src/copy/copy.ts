// Signatures only; the engine is being written.
import type { BlobInfoCache } from '../blob-info-cache.js';
import type { Digest } from '../digest.js';
import type { ImageReference, ImageSource, RawManifest, Signature, SystemContext } from '../types.js';
import type { CopyEvent } from './events.js';

/** Decides whether an image may be used; @img/core's PolicyContext implements it. */
export interface PolicyChecker {
  /** Resolves when the policy allows the image; throws PolicyRejectedError (or NotSupportedError) otherwise. */
  isRunningImageAllowed(source: ImageSource, manifest: RawManifest): Promise<void>;
}

/** Which images of a list to copy: the one for the platform, every one, or only the list itself. */
export type ImageListSelection = 'system' | 'all' | 'index-only';

/** Options of {@link copyImage}. */
export interface CopyOptions {
  /** The signature policy; see PolicyContext. */
  policy: PolicyChecker;
  sourceCtx?: SystemContext;
  destinationCtx?: SystemContext;
  /** Default `system`: one instance of a list, chosen for the platform. */
  imageListSelection?: ImageListSelection;
  /** Write this manifest media type (the CLI's --format), converting as needed. */
  forceManifestMediaType?: string;
  /** Do not copy the source's signatures. */
  removeSignatures?: boolean;
  /** Fail rather than change the manifest (and so its digest). */
  preserveDigests?: boolean;
  /** Extra signatures to add to what is written (made by a signer over the written manifest). */
  signers?: Array<(manifest: Uint8Array, manifestDigest: Digest) => Promise<Signature>>;
  /** How many blobs are copied at once; default 6. */
  concurrency?: number;
  cache?: BlobInfoCache;
  onEvent?: (event: CopyEvent) => void;
  signal?: AbortSignal;
}

/** What a copy did. */
export interface CopyResult {
  /** The digest of the top-level manifest written (or found present). */
  manifestDigest: Digest;
  manifest: RawManifest;
  /** Whether the destination already held the image, so no blob was moved. */
  alreadyPresent: boolean;
  /** Blob bytes read from the source and written to the destination. */
  bytesMoved: number;
  /** The sum of the sizes of every blob of the image(s) copied. */
  imageSize: number;
  blobsCopied: number;
  blobsReused: number;
}

/** Copies an image from `srcRef` to `destRef`. */
export async function copyImage(
  _destRef: ImageReference,
  _srcRef: ImageReference,
  _options: CopyOptions,
): Promise<CopyResult> {
  throw new Error('not implemented');
}
