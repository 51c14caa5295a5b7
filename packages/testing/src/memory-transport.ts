import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  type BlobInfo,
  BlobUnknownError,
  computeDigest,
  type Digest,
  DigestingStream,
  guessMediaType,
  type ImageDestination,
  type ImageReference,
  type ImageSource,
  InvalidReferenceError,
  type LayerCompression,
  type ManifestPresence,
  ManifestTypeRejectedError,
  ManifestUnknownError,
  manifestDescriptors,
  type RawManifest,
  type Signature,
  type Transport,
  type UploadInfo,
} from '@img/core';
import type { TestImage, TestIndex } from './random.js';

/** One stored image of the memory transport. */
export interface MemoryImage {
  top: Digest;
  manifests: Map<Digest, RawManifest>;
  signatures: Map<string, Signature[]>;
}

/** What a memory store counts, so tests can assert what moved. */
export interface MemoryCounters {
  getBlob: number;
  bytesRead: number;
  putBlob: number;
  bytesWritten: number;
  tryReusingBlob: number;
  putManifest: number;
  putSignatures: number;
  commits: number;
}

/** Capabilities a memory destination advertises; turn them off to test the engine's fallbacks. */
export interface MemoryCapabilities {
  alreadyContainsManifest: boolean;
  supportsOutOfOrderPuts: boolean;
  supportsSignatures: boolean;
  supportedManifestMediaTypes: string[];
  desiredLayerCompression: LayerCompression;
}

/**
 * A store of images in memory, with a transport over it: references are `NAME:` + an image name.
 * Everything it does is counted. For tests of the copy engine and as a conformance-suite source.
 */
export class MemoryStore {
  readonly blobs = new Map<Digest, Buffer>();
  readonly images = new Map<string, MemoryImage>();
  readonly counters: MemoryCounters = emptyCounters();
  readonly capabilities: MemoryCapabilities = {
    alreadyContainsManifest: true,
    supportsOutOfOrderPuts: true,
    supportsSignatures: true,
    supportedManifestMediaTypes: [],
    desiredLayerCompression: 'preserve',
  };
  readonly transport: Transport;

  constructor(readonly name = 'memory') {
    const store = this;
    this.transport = {
      name,
      parseReference(reference: string): ImageReference {
        if (reference === '') throw new InvalidReferenceError(reference, 'an image name is required');
        return new MemoryReference(store, reference);
      },
      validatePolicyConfigurationScope() {},
    };
  }

  /** Resets the counters to zero. */
  resetCounters(): void {
    Object.assign(this.counters, emptyCounters());
  }

  /** A reference to `image` in this store. */
  ref(image: string): ImageReference {
    return this.transport.parseReference(image);
  }

  /** Stores a test image (or index) directly, with optional signatures. */
  add(image: string, content: TestImage | TestIndex, signatures: Signature[] = []): ImageReference {
    const manifests = new Map<Digest, RawManifest>();
    const images = 'images' in content ? content.images : [content];
    for (const i of images) {
      manifests.set(i.manifestDigest, { bytes: i.manifest, mediaType: i.mediaType });
      for (const [d, b] of i.blobs) this.blobs.set(d, b);
    }
    manifests.set(content.manifestDigest, { bytes: content.manifest, mediaType: content.mediaType });
    this.images.set(image, {
      top: content.manifestDigest,
      manifests,
      signatures: new Map([['', signatures]]),
    });
    return this.ref(image);
  }
}

function emptyCounters(): MemoryCounters {
  return {
    getBlob: 0,
    bytesRead: 0,
    putBlob: 0,
    bytesWritten: 0,
    tryReusingBlob: 0,
    putManifest: 0,
    putSignatures: 0,
    commits: 0,
  };
}

class MemoryReference implements ImageReference {
  readonly dockerReference = undefined;
  constructor(
    readonly store: MemoryStore,
    readonly image: string,
  ) {}
  get transport(): Transport {
    return this.store.transport;
  }
  stringWithinTransport(): string {
    return this.image;
  }
  toString(): string {
    return `${this.store.name}:${this.image}`;
  }
  policyConfigurationIdentity(): string {
    return this.image;
  }
  policyConfigurationNamespaces(): string[] {
    return [];
  }
  async newImageSource(): Promise<ImageSource> {
    const image = this.store.images.get(this.image);
    if (!image) throw new ManifestUnknownError(String(this));
    return new MemorySource(this, image);
  }
  async newImageDestination(): Promise<ImageDestination> {
    return new MemoryDestination(this);
  }
  async deleteImage(): Promise<void> {
    if (!this.store.images.delete(this.image)) throw new ManifestUnknownError(String(this));
  }
}

class MemorySource implements ImageSource {
  readonly hasThreadSafeGetBlob = true;
  constructor(
    readonly reference: MemoryReference,
    private readonly image: MemoryImage,
  ) {}
  async getManifest(instanceDigest?: Digest): Promise<RawManifest> {
    const manifest = this.image.manifests.get(instanceDigest ?? this.image.top);
    if (!manifest) throw new ManifestUnknownError(`${this.reference}@${instanceDigest}`);
    return manifest;
  }
  async getBlob(info: BlobInfo) {
    const bytes = this.reference.store.blobs.get(info.digest);
    if (!bytes) throw new BlobUnknownError(info.digest, String(this.reference));
    const counters = this.reference.store.counters;
    counters.getBlob++;
    counters.bytesRead += bytes.length;
    return { stream: Readable.from([bytes]), size: bytes.length };
  }
  async getSignatures(instanceDigest?: Digest): Promise<Signature[]> {
    return this.image.signatures.get(instanceDigest ?? '') ?? [];
  }
  async close(): Promise<void> {}
}

class MemoryDestination implements ImageDestination {
  readonly hasThreadSafePutBlob = true;
  readonly mustMatchRuntimeOS = false;
  private readonly staged = new Map<Digest, RawManifest>();
  private top: Digest | undefined;
  private signatures = new Map<string, Signature[]>();
  private signaturesPut = false;

  constructor(readonly reference: MemoryReference) {
    const caps = reference.store.capabilities;
    if (!caps.alreadyContainsManifest)
      (this as { alreadyContainsManifest?: unknown }).alreadyContainsManifest = undefined;
  }
  private get store(): MemoryStore {
    return this.reference.store;
  }
  get supportedManifestMediaTypes(): string[] {
    return this.store.capabilities.supportedManifestMediaTypes;
  }
  get desiredLayerCompression(): LayerCompression {
    return this.store.capabilities.desiredLayerCompression;
  }
  get supportsSignatures(): boolean {
    return this.store.capabilities.supportsSignatures;
  }
  get supportsOutOfOrderPuts(): boolean {
    return this.store.capabilities.supportsOutOfOrderPuts;
  }
  async putBlob(stream: Readable, info: UploadInfo): Promise<BlobInfo> {
    const digester = new DigestingStream({ expectedDigest: info.digest, expectedSize: info.size });
    const chunks: Buffer[] = [];
    await pipeline(stream, digester, async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) chunks.push(chunk);
    });
    const bytes = Buffer.concat(chunks);
    const counters = this.store.counters;
    counters.putBlob++;
    counters.bytesWritten += bytes.length;
    this.store.blobs.set(digester.digest, bytes);
    return { digest: digester.digest, size: bytes.length };
  }
  async tryReusingBlob(info: BlobInfo): Promise<BlobInfo | undefined> {
    this.store.counters.tryReusingBlob++;
    const bytes = this.store.blobs.get(info.digest);
    return bytes ? { digest: info.digest, size: bytes.length } : undefined;
  }
  async putManifest(bytes: Uint8Array, instanceDigest?: Digest): Promise<void> {
    const mediaType = guessMediaType(bytes);
    const accepted = this.supportedManifestMediaTypes;
    if (accepted.length > 0 && !accepted.includes(mediaType)) {
      throw new ManifestTypeRejectedError(mediaType, String(this.reference));
    }
    this.store.counters.putManifest++;
    const digest = instanceDigest ?? computeDigest(bytes);
    this.staged.set(digest, { bytes: Buffer.from(bytes), mediaType });
    if (!instanceDigest) this.top = digest;
  }
  async putSignatures(signatures: Signature[], instanceDigest?: Digest): Promise<void> {
    this.store.counters.putSignatures++;
    this.signatures.set(instanceDigest ?? '', signatures);
    this.signaturesPut = true;
  }
  async alreadyContainsManifest(digest: Digest): Promise<ManifestPresence> {
    const image = this.store.images.get(this.reference.image);
    if (!image || image.top !== digest) return { present: false };
    for (const manifest of image.manifests.values()) {
      const d = manifestDescriptors(manifest.bytes, manifest.mediaType);
      for (const blob of [...(d.config ? [d.config] : []), ...d.layers]) {
        if (!this.store.blobs.has(blob.digest)) return { present: false };
      }
    }
    return { present: true, signatures: image.signatures.get('') ?? [] };
  }
  async commit(): Promise<void> {
    this.store.counters.commits++;
    const existing = this.store.images.get(this.reference.image);
    if (!this.top) {
      // Out of order: only signatures for the image already there.
      if (existing && this.signaturesPut) for (const [k, v] of this.signatures) existing.signatures.set(k, v);
      return;
    }
    this.store.images.set(this.reference.image, {
      top: this.top,
      manifests: new Map(this.staged),
      signatures: new Map(this.signatures),
    });
  }
  async close(): Promise<void> {}
}
