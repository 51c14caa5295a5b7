export {
  copyBlobFile,
  isProcessAlive,
  removeStaleTempFiles,
  tempPathFor,
  writeBatched,
  writeBlobFile,
} from './blob-file.js';
export type {
  BlobCandidate,
  BlobCandidateOptions,
  BlobInfoCache,
  BlobLocation,
  BlobReuseCandidate,
  CompressionName,
} from './blob-info-cache.js';
export { noCache } from './blob-info-cache.js';
export type { CopyOptions, CopyResult, ImageListSelection, PolicyChecker } from './copy/copy.js';
export { copyImage } from './copy/copy.js';
export type { BlobOutcome, CopyEvent } from './copy/events.js';
export { wrapDestination, wrapSource } from './copy/wrap.js';
export type { Digest, DigestAlgorithm, DigestingStreamOptions, VerifiedContent } from './digest.js';
export {
  canonicalAlgorithm,
  computeDigest,
  DigestingStream,
  digestAlgorithm,
  digestHex,
  isDigest,
  markVerified,
  parseDigest,
  verifiedDigestOf,
  verifyBytes,
} from './digest.js';
export type { HttpFailure, RegistryErrorDetail } from './errors.js';
export {
  AbortedError,
  BlobUnknownError,
  ConnectionError,
  DigestMismatchError,
  ImgError,
  InvalidDigestError,
  InvalidLayoutError,
  InvalidManifestError,
  InvalidPolicyError,
  InvalidReferenceError,
  ManifestConversionError,
  ManifestTypeRejectedError,
  ManifestUnknownError,
  NoMatchingPlatformError,
  NotSupportedError,
  PolicyRejectedError,
  RegistryError,
  SizeMismatchError,
  TooLargeError,
  TransportConflictError,
  UnauthorizedError,
  UnknownTransportError,
  UnsupportedMediaTypeError,
} from './errors.js';
export {
  type IncrementalHash,
  type OffloadedFileWriter,
  offloadedFileWriter,
  offloadedHash,
  offloadedHashThreshold,
  workerHashThreshold,
} from './hash-pool.js';
export type { ImageConfig, ImageInspection, InspectedLayer, InspectOptions } from './inspect.js';
export { getImageConfig, inspectImage } from './inspect.js';
export * from './manifest/index.js';
export * from './policy/index.js';
export * from './reference/index.js';
export { parseImageName, registerTransport, transports, unregisterTransport } from './transports.js';
export type {
  BlobInfo,
  BlobStream,
  GetBlobOptions,
  ImageDestination,
  ImageReference,
  ImageSource,
  LayerCompression,
  ManifestPresence,
  OperationOptions,
  Platform,
  PutBlobOptions,
  RawManifest,
  ReusedBlob,
  Signature,
  SystemContext,
  Transport,
  TransportCapabilities,
  TryReusingBlobOptions,
  UploadInfo,
} from './types.js';
export { transportApiVersion } from './types.js';
