import type { Readable } from 'node:stream';
import type { BlobInfoCache, CompressionName } from './blob-info-cache.js';
import type { Digest } from './digest.js';
import type { NamedReference } from './reference/docker-reference.js';

/** The version of the transport contract this @img/core implements; plugins declare the one they target. */
export const transportApiVersion = 1;

/** An OS/architecture pair as manifest lists and image configs state it. */
export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

/**
 * Settings for one side of an operation, as containers/image's SystemContext: the platform to
 * choose from lists, where big temp files go, and per-transport options keyed by transport name
 * (each transport documents the shape of its own entry).
 */
export interface SystemContext {
  /** Overrides the host OS when an instance is chosen from a list. */
  osChoice?: string;
  /** Overrides the host architecture when an instance is chosen from a list. */
  architectureChoice?: string;
  /** Overrides the host CPU variant when an instance is chosen from a list. */
  variantChoice?: string;
  /** Where transports put big temporary files (archives being unpacked, spooled streams). */
  tmpDir?: string;
  /** Per-transport settings, e.g. `{oci: {sharedBlobDir: '/blobs'}}`. */
  transportOptions?: Readonly<Record<string, unknown>>;
}

/** Options every I/O method takes. */
export interface OperationOptions {
  signal?: AbortSignal | undefined;
}

/** What is known of a blob: at least its digest; size -1 when unknown. */
export interface BlobInfo {
  digest: Digest;
  /** Size in bytes, or -1 when unknown. */
  size: number;
  mediaType?: string;
  annotations?: Record<string, string>;
  urls?: string[];
}

/** What the copy engine tells putBlob about a stream: the digest is absent when the engine (re)compressed it. */
export type UploadInfo = Omit<BlobInfo, 'digest'> & { digest?: Digest | undefined };

/** A signature as a transport stores it. */
export interface Signature {
  /** `simple-signing` for OpenPGP "atomic" signatures, `sigstore` for sigstore payloads. */
  format: 'simple-signing' | 'sigstore';
  /** For simple signing, the signature bytes; for sigstore, the payload. */
  bytes: Uint8Array;
  /** Sigstore only: the MIME type of the payload. */
  mimeType?: string;
  /** Sigstore only: the annotations (the signature itself among them). */
  annotations?: Record<string, string>;
}

/** A manifest as read from a source: the raw bytes (digests are over these) and their media type. */
export interface RawManifest {
  bytes: Uint8Array;
  mediaType: string;
}

/** A blob stream and its size (-1 when unknown). */
export interface BlobStream {
  stream: Readable;
  size: number;
}

/** A transport: a kind of image storage with its own reference syntax. */
export interface Transport {
  /** The prefix before the colon in `name:reference`. */
  readonly name: string;
  /** Parses the part after `name:`; throws InvalidReferenceError. */
  parseReference(reference: string): ImageReference;
  /**
   * Checks a policy.json scope for this transport (the keys under `transports.<name>`), throwing
   * InvalidPolicyError when it can never match a reference of this transport.
   */
  validatePolicyConfigurationScope(scope: string): void;
  /**
   * Optional: what this transport's references, sources and destinations implement, declared once
   * so that hosts can list it (`img transports`) without opening anything. Purely descriptive: the
   * copy engine still looks at each object's members. Absent means "not declared", not "none".
   */
  readonly capabilities?: TransportCapabilities;
}

/**
 * A transport's static description of itself (see {@link Transport.capabilities}). Every field is
 * optional; `source` and `destination` default to true, the optional capabilities to false.
 */
export interface TransportCapabilities {
  /** References can be opened for reading (`newImageSource`). */
  readonly source?: boolean;
  /** References can be opened for writing (`newImageDestination`); false for read-only transports. */
  readonly destination?: boolean;
  /** References implement `deleteImage`. */
  readonly deleteImage?: boolean;
  /** Destinations store signatures (`supportsSignatures`). */
  readonly signatures?: boolean;
  /** Destinations implement `alreadyContainsManifest`. */
  readonly alreadyContainsManifest?: boolean;
  /** Destinations set `supportsOutOfOrderPuts`. */
  readonly supportsOutOfOrderPuts?: boolean;
  /** Sources implement `getBlobPath`. */
  readonly getBlobPath?: boolean;
  /** Destinations implement `putBlobFromFile`. */
  readonly putBlobFromFile?: boolean;
}

/** A reference to one image (or one place an image can be written) in one transport. */
export interface ImageReference {
  readonly transport: Transport;
  /** The reference without the transport prefix, such that `transport.parseReference(ref.stringWithinTransport())` round-trips. */
  stringWithinTransport(): string;
  /** `transport:reference`, as a user would type it. */
  toString(): string;
  /** The docker reference this image is known by, where the transport has one. */
  readonly dockerReference: NamedReference | undefined;
  /**
   * The identity of this reference for policy.json scope matching, within the transport
   * (e.g. `docker.io/library/busybox:latest`, `/abs/path:tag`); empty when the transport has none.
   */
  policyConfigurationIdentity(): string;
  /** Broader scopes than the identity, most specific first (e.g. the repository, the parent directories). */
  policyConfigurationNamespaces(): string[];
  /** Opens the image for reading. Fails with ManifestUnknownError if it does not exist (here or at the first read). */
  newImageSource(ctx: SystemContext, options?: OperationOptions): Promise<ImageSource>;
  /** Opens the reference for writing. Nothing is visible to readers before `commit()`. */
  newImageDestination(ctx: SystemContext, options?: OperationOptions): Promise<ImageDestination>;
  /** Deletes the image, where the transport supports it. */
  deleteImage?(ctx: SystemContext, options?: OperationOptions): Promise<void>;
}

/** Options of {@link ImageSource.getBlob}. */
export interface GetBlobOptions extends OperationOptions {
  cache?: BlobInfoCache | undefined;
}

/** Reads one image. */
export interface ImageSource {
  readonly reference: ImageReference;
  /**
   * Returns the manifest: the top-level one without `instanceDigest`, else that instance of the list.
   * The bytes are returned raw; the caller verifies digests. MUST fail with ManifestUnknownError
   * when there is none, and with TooLargeError over 4 MiB.
   */
  getManifest(instanceDigest?: Digest, options?: OperationOptions): Promise<RawManifest>;
  /** Streams a blob. The bytes are raw: the caller verifies them. MUST fail with BlobUnknownError when absent. */
  getBlob(info: BlobInfo, options?: GetBlobOptions): Promise<BlobStream>;
  /** The signatures of the image (or instance). Empty when there are none or the transport stores none. */
  getSignatures(instanceDigest?: Digest, options?: OperationOptions): Promise<Signature[]>;
  /** Whether getBlob may be called concurrently. */
  readonly hasThreadSafeGetBlob: boolean;
  /**
   * Optional: the path of a regular file holding exactly the blob's bytes, for destinations that can
   * clone or copy file ranges instead of streaming. The caller still verifies the digest.
   */
  getBlobPath?(info: BlobInfo, options?: OperationOptions): Promise<string | undefined>;
  /**
   * Optional (containers/image's LayerInfosForCopy): the layers to copy instead of those the manifest
   * lists, in the same order, for a source that cannot serve the manifest's blobs byte for byte (a
   * store that keeps layers uncompressed offers them with their uncompressed digests and media
   * types). The engine then writes a manifest updated to match. Undefined: the manifest's layers.
   */
  layerInfosForCopy?(instanceDigest?: Digest, options?: OperationOptions): Promise<BlobInfo[] | undefined>;
  close(): Promise<void>;
}

/** What a destination wants done to layers before they reach it. */
export type LayerCompression = 'preserve' | 'compress' | 'decompress';

/** Options of {@link ImageDestination.putBlob}. */
export interface PutBlobOptions extends OperationOptions {
  cache?: BlobInfoCache | undefined;
  isConfig?: boolean;
  /** The index of the layer in the manifest, when it is a layer. */
  layerIndex?: number;
  /** Called with the number of bytes stored so far, for progress reports (at most every few ms). */
  onProgress?: ((bytes: number) => void) | undefined;
}

/** Options of {@link ImageDestination.tryReusingBlob}. */
export interface TryReusingBlobOptions extends OperationOptions {
  cache?: BlobInfoCache | undefined;
  /** Whether a blob with another digest (another compression of the same content) may be substituted. */
  canSubstitute?: boolean;
  /**
   * With canSubstitute, the compressions a substitute may have (what the destination wants and the
   * manifest formats can carry); absent: any. The blob's own digest is always acceptable.
   */
  compressions?: readonly CompressionName[] | undefined;
  /** The source reference, a known location of the blob. */
  srcRef?: ImageReference;
  layerIndex?: number;
}

/**
 * What tryReusingBlob found: the blob to put in the manifest and, where the destination knows, how it
 * got there: it was already `present`, it was `mounted` from another repository of the same
 * registry, or a `substituted` blob with the same content in another compression was used.
 */
export interface ReusedBlob extends BlobInfo {
  how?: 'present' | 'mounted' | 'substituted';
  /** The compression of the blob returned, when it is a substitute and the destination knows it (the engine then sets the media type). */
  compression?: CompressionName;
}

/** What a destination already holds of an image, as answered by `alreadyContainsManifest`. */
export interface ManifestPresence {
  /** The manifest (with every blob it needs) is present and visible under this reference. */
  present: boolean;
  /** The signatures already stored for it, when present and the transport stores signatures. */
  signatures?: Signature[];
}

/** Writes one image. Nothing is visible to readers before `commit()`. */
export interface ImageDestination {
  readonly reference: ImageReference;
  /** The manifest media types accepted, most preferred first; empty = any may be tried. */
  readonly supportedManifestMediaTypes: readonly string[];
  readonly desiredLayerCompression: LayerCompression;
  /** Whether signatures can be stored; when false, a copy with signatures fails unless they are removed. */
  readonly supportsSignatures: boolean;
  /** Whether only images for the running OS make sense here. */
  readonly mustMatchRuntimeOS: boolean;
  /** Whether putBlob and tryReusingBlob may be called concurrently. */
  readonly hasThreadSafePutBlob: boolean;
  /**
   * Stores a blob from a stream. If `info.digest` is given, the destination MUST verify it (and the
   * size unless -1) while streaming and MUST fail and delete what it stored when the stream errors
   * or the digest does not match. Returns the digest and size stored.
   */
  putBlob(stream: Readable, info: UploadInfo, options?: PutBlobOptions): Promise<BlobInfo>;
  /**
   * Optional: stores a blob from a regular file (see ImageSource.getBlobPath), by clone or copy of
   * file ranges where the filesystem allows. Same guarantees as putBlob: verified, nothing partial kept.
   */
  putBlobFromFile?(path: string, info: BlobInfo, options?: PutBlobOptions): Promise<BlobInfo>;
  /**
   * Reports whether the blob is already here (or, with canSubstitute, an equivalent one), without
   * moving its bytes; returns what to put in the manifest for it, or undefined. Errors only on
   * unexpected failures.
   */
  tryReusingBlob(info: BlobInfo, options?: TryReusingBlobOptions): Promise<ReusedBlob | undefined>;
  /**
   * Stores the manifest: the image's (or, with `instanceDigest`, one instance of the list that will be
   * put last without it). MUST throw ManifestTypeRejectedError when the type is refused but another
   * may be accepted.
   */
  putManifest(bytes: Uint8Array, instanceDigest?: Digest, options?: OperationOptions): Promise<void>;
  /** Stores signatures; MUST be called after putManifest for the same instance. Replaces what was there. */
  putSignatures(signatures: Signature[], instanceDigest?: Digest, options?: OperationOptions): Promise<void>;
  /** Makes the image visible under the reference. */
  commit(options?: OperationOptions): Promise<void>;
  /** Releases resources; without a commit, the destination MUST be left as it was (uploaded blobs may stay). */
  close(): Promise<void>;

  /**
   * Optional capability: whether the manifest with this digest (and so the whole image) is already
   * complete here under this reference, without moving any blob. A transport that is not sure
   * answers `present: false`.
   */
  alreadyContainsManifest?(
    digest: Digest,
    bytes: Uint8Array,
    options?: OperationOptions,
  ): Promise<ManifestPresence>;
  /**
   * Optional capability: when the image is present, putSignatures (and putManifest of the present
   * manifest) followed by commit may be called without putting the blobs again.
   */
  readonly supportsOutOfOrderPuts?: boolean;
}
