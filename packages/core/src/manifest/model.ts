import type { Digest } from '../digest.js';
import type { BlobInfo } from '../types.js';
import type { ListInstance } from './descriptors.js';

/** A descriptor as an OCI manifest states it: a {@link BlobInfo} plus the OCI-only fields. */
export interface Descriptor extends BlobInfo {
  /** OCI image-spec, "Descriptor" `artifactType`. */
  artifactType?: string;
  /** OCI image-spec, "Descriptor" `data`: the content itself, base64. */
  data?: string;
}

/** A layer of an image, base first. */
export interface LayerInfo extends Descriptor {
  /** Schema 1 only: a "throwaway" entry that changes the config but not the filesystem. */
  emptyLayer?: boolean;
}

/** What only a schema 1 manifest states, after containers/image's fix-up of repeated entries. */
export interface Schema1Fields {
  readonly name: string;
  readonly tag: string;
  readonly architecture: string;
  /** `fsLayers[].blobSum`, newest first as in the manifest. */
  readonly fsLayers: readonly Digest[];
  /** `history[].v1Compatibility`, newest first as in the manifest; one per fsLayers entry. */
  readonly history: readonly string[];
  /** Whether the manifest carries JWS signatures. */
  readonly signed: boolean;
}

/** A validated single-image manifest (OCI, Docker schema 2 or schema 1). Frozen. */
export interface ImageManifest {
  /** The media type the manifest was read as. */
  readonly mediaType: string;
  readonly schemaVersion: 1 | 2;
  /** The config blob; undefined for schema 1, which embeds its config in `history`. */
  readonly config: Readonly<Descriptor> | undefined;
  /** Layers, base first; schema 1 sizes are -1 (unknown). */
  readonly layers: readonly Readonly<LayerInfo>[];
  /** OCI only. */
  readonly annotations?: Readonly<Record<string, string>>;
  /** OCI only: the manifest this one refers to (e.g. a signature or SBOM's image). */
  readonly subject?: Readonly<Descriptor>;
  /** OCI only. */
  readonly artifactType?: string;
  /** Schema 1 only. */
  readonly schema1?: Schema1Fields;
  /** The bytes parsed (a private copy): digests and signatures are over these. */
  readonly raw: Uint8Array;
}

/** A validated manifest list (Docker) or image index (OCI). Frozen. */
export interface ManifestList {
  readonly mediaType: string;
  readonly schemaVersion: 2;
  readonly manifests: readonly Readonly<ListInstance>[];
  /** OCI only. */
  readonly annotations?: Readonly<Record<string, string>>;
  /** OCI only. */
  readonly subject?: Readonly<Descriptor>;
  /** OCI only. */
  readonly artifactType?: string;
  /** The bytes parsed (a private copy). */
  readonly raw: Uint8Array;
}

/** Freezes an object graph of plain objects and arrays; typed arrays are left as they are. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !ArrayBuffer.isView(value) && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
