import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import {
  type BlobCandidate,
  type BlobInfo,
  type BlobInfoCache,
  type CompressionName,
  type Digest,
  DigestMismatchError,
  guessMediaType,
  type ImageDestination,
  type LayerCompression,
  type ManifestPresence,
  ManifestTypeRejectedError,
  MediaTypes,
  manifestDigest,
  matchesDigest,
  NotSupportedError,
  type OperationOptions,
  type PutBlobOptions,
  RegistryError,
  type ReusedBlob,
  type Signature,
  type TryReusingBlobOptions,
  type UploadInfo,
  workerHashThreshold,
} from '@img/core';
import { dockerConfig } from './context.js';
import { lookasideDir, readLookasideSignatures, writeLookasideSignatures } from './lookaside.js';
import type { DockerTransportOptions } from './options.js';
import type { DockerReference } from './reference.js';
import { repositoryScope } from './registry/auth.js';
import { header, RegistryClient, retryPolicy } from './registry/client.js';
import { cancelUpload, uploadBlob, uploadBlobFile } from './registry/upload.js';
import { manifestAccept } from './source.js';

/** At most this many other repositories are asked to mount a blob from (containers/image's limit). */
export const maxMountAttempts = 3;

/**
 * Writes one image to a registry (containers/image's dockerImageDestination). Internal: references
 * hand it out as an ImageDestination. Blobs are asked for (HEAD) before any upload and mounted from
 * another repository of the same registry when one is known to hold them; the manifest PUT at the
 * end (by tag, or by digest) is what makes the image visible.
 */
export class DockerImageDestination implements ImageDestination {
  readonly supportedManifestMediaTypes: readonly string[] = [
    MediaTypes.ociManifest,
    MediaTypes.dockerV2Schema2,
    MediaTypes.ociIndex,
    MediaTypes.dockerV2List,
    MediaTypes.dockerV2Schema1Signed,
    MediaTypes.dockerV2Schema1,
  ];
  readonly desiredLayerCompression: LayerCompression = 'compress';
  /**
   * Simple-signing signatures are stored in the local lookaside directory, as skopeo does without
   * registries.d configuration; sigstore signatures (registry attachments) are refused.
   */
  readonly supportsSignatures = true;
  /** Signatures may be added to an image already present, without its blobs. */
  readonly supportsOutOfOrderPuts = true;
  readonly mustMatchRuntimeOS = false;
  readonly hasThreadSafePutBlob = true;

  /** The top-level manifest put by digest, to be tagged at commit. */
  private pending: { bytes: Uint8Array; mediaType: string; digest: Digest } | undefined;
  /** The digest alreadyContainsManifest found under the reference, for signatures put out of order. */
  private presentDigest: Digest | undefined;
  /** Signatures to write at commit, by manifest digest. */
  private readonly signatures = new Map<Digest, Signature[]>();

  private constructor(
    readonly reference: DockerReference,
    private readonly client: RegistryClient,
    private readonly options: DockerTransportOptions,
  ) {}

  /** Opens the repository for writing; nothing is sent until the first blob or manifest. */
  static async open(
    reference: DockerReference,
    options: DockerTransportOptions,
    op: OperationOptions = {},
  ): Promise<DockerImageDestination> {
    op.signal?.throwIfAborted();
    const config = dockerConfig();
    const plan = await config.endpointPlan(reference.host, reference.repository, options);
    if (plan.blocked) {
      throw new NotSupportedError(`registry ${reference.host} is blocked in registries.conf: ${reference}`);
    }
    const client = new RegistryClient({
      host: reference.host,
      repository: reference.repository,
      actions: 'pull,push',
      options,
      config,
    });
    return new DockerImageDestination(reference, client, options);
  }

  private get repository(): string {
    return this.reference.repository;
  }

  private record(cache: BlobInfoCache | undefined, digest: Digest): void {
    cache?.recordKnownLocation({ transport: 'docker', scope: this.reference.host }, digest, this.repository);
  }

  /**
   * Uploads a blob: one PUT for a small one of known size (verified in memory first), streamed PATCH
   * chunks otherwise, verified before the final PUT; a mismatch cancels the upload session, so
   * nothing is stored under the digest.
   */
  async putBlob(stream: Readable, info: UploadInfo, options: PutBlobOptions = {}): Promise<BlobInfo> {
    const ignore = () => {};
    stream.on('error', ignore);
    try {
      const stored = await uploadBlob(
        this.client,
        stream,
        {
          repository: this.repository,
          digest: info.digest,
          size: info.size,
          signal: options.signal,
          onProgress: options.onProgress,
        },
        retryPolicy(this.options),
      );
      this.record(options.cache, stored.digest);
      return info.mediaType ? { ...stored, mediaType: info.mediaType } : stored;
    } catch (error) {
      stream.destroy();
      throw error;
    } finally {
      stream.off('error', ignore);
    }
  }

  /**
   * Uploads a blob held in a regular file (an OCI layout's, a dir's): a large one in PATCH chunks
   * read from the file, so none is kept in memory, verified before the final PUT as putBlob does; a
   * small one as putBlob does.
   */
  async putBlobFromFile(path: string, info: BlobInfo, options: PutBlobOptions = {}): Promise<BlobInfo> {
    if (info.size < workerHashThreshold) return this.putBlob(createReadStream(path), info, options);
    const stored = await uploadBlobFile(
      this.client,
      path,
      {
        repository: this.repository,
        digest: info.digest,
        size: info.size,
        signal: options.signal,
        onProgress: options.onProgress,
      },
      retryPolicy(this.options),
    );
    this.record(options.cache, stored.digest);
    return info.mediaType ? { ...stored, mediaType: info.mediaType } : stored;
  }

  /**
   * Reports a blob present after one HEAD; else mounts it from another repository of this registry
   * that is known to hold it: the copy's source when it is on this registry, then the cache's
   * locations (most recent first), at most {@link maxMountAttempts} mounts in all. With
   * `canSubstitute`, the cache's variants of the blob (another compression of the same content, one
   * of `compressions`) count too: a HEAD here for those seen in this repository or of unknown
   * location, a mount for those seen in another one.
   */
  async tryReusingBlob(info: BlobInfo, options: TryReusingBlobOptions = {}): Promise<ReusedBlob | undefined> {
    const { signal, cache } = options;
    const size = await this.blobSize(info.digest, signal);
    if (size !== undefined && (info.size === -1 || size === info.size)) {
      this.record(cache, info.digest);
      return this.reused(info, size, 'present');
    }
    const sources: Array<{ digest: Digest; from: string | undefined; compression: CompressionName }> = [];
    const src = options.srcRef;
    if (
      src?.transport.name === 'docker' &&
      src.dockerReference?.domain === this.reference.host &&
      src.dockerReference.path !== this.repository
    ) {
      sources.push({ digest: info.digest, from: src.dockerReference.path, compression: 'unknown' });
    }
    const host = this.reference.host;
    const candidates: BlobCandidate[] = !cache
      ? []
      : options.canSubstitute
        ? cache.reuseCandidates('docker', host, info.digest, {
            canSubstitute: true,
            compressions: options.compressions,
            includeUnknownLocations: true,
          })
        : cache.candidateLocations('docker', host, info.digest, false);
    for (const c of candidates) {
      // Without canSubstitute, only the same digest: a substitute needs its media type changed.
      if (!options.canSubstitute && c.digest !== info.digest) continue;
      const here = c.location === undefined || c.location === this.repository;
      // The blob itself was just looked for here.
      if (here && c.digest === info.digest) continue;
      const from = here ? undefined : c.location;
      if (sources.some((s) => s.digest === c.digest && s.from === from)) continue;
      sources.push({ digest: c.digest, from, compression: c.compression });
    }
    let mounts = 0;
    for (const { digest, from, compression } of sources) {
      const blob = digest === info.digest ? info : { digest, size: -1 };
      if (from === undefined) {
        const found = await this.blobSize(digest, signal);
        if (found === undefined) continue;
        this.record(cache, digest);
        return this.reused(blob, found, 'present', info, compression);
      }
      if (mounts >= maxMountAttempts) continue;
      mounts++;
      if (await this.mount(digest, from, signal)) {
        this.record(cache, digest);
        const mountedSize = blob.size >= 0 ? blob.size : await this.blobSize(digest, signal);
        return this.reused(blob, mountedSize ?? -1, 'mounted', info, compression);
      }
    }
    return undefined;
  }

  /**
   * The descriptor of a blob found or mounted here: the one asked for (`asked`, by default `found`
   * itself) or a substitute for it, reported `substituted` when present here (a mounted one stays
   * `mounted`, so that mounts are counted) and with its compression when the cache knows it.
   */
  private reused(
    found: BlobInfo,
    size: number,
    how: 'present' | 'mounted',
    asked: BlobInfo = found,
    compression: CompressionName = 'unknown',
  ): ReusedBlob {
    if (found.digest === asked.digest) {
      return { digest: found.digest, size, ...(asked.mediaType ? { mediaType: asked.mediaType } : {}), how };
    }
    return {
      digest: found.digest,
      size,
      how: how === 'present' ? 'substituted' : how,
      ...(compression === 'unknown' ? {} : { compression }),
    };
  }

  /** HEAD of a blob in this repository: its size, or undefined when absent. */
  private async blobSize(digest: Digest, signal: AbortSignal | undefined): Promise<number | undefined> {
    const res = await this.client.request({
      method: 'HEAD',
      target: `/v2/${this.repository}/blobs/${digest}`,
      signal,
    });
    await res.body.dump();
    if (res.statusCode === 404) return undefined;
    if (res.statusCode !== 200) throw await this.client.failure(res, 'HEAD');
    const length = Number(header(res, 'content-length') ?? -1);
    return Number.isSafeInteger(length) && length >= 0 ? length : -1;
  }

  /**
   * Cross-repository mount (distribution spec "Mounting a blob from another repository"): 201 means
   * mounted; 202 means the registry opened an upload session instead, which is cancelled.
   */
  private async mount(digest: Digest, from: string, signal: AbortSignal | undefined): Promise<boolean> {
    const query = new URLSearchParams({ mount: digest, from });
    let res: Awaited<ReturnType<RegistryClient['request']>>;
    try {
      res = await this.client.request({
        method: 'POST',
        target: `/v2/${this.repository}/blobs/uploads/?${query}`,
        headers: { 'content-length': '0' },
        body: '',
        idempotent: true,
        extraScopes: [repositoryScope(from, 'pull')],
        signal,
      });
    } catch (error) {
      if (signal?.aborted) throw error;
      // No token for the other repository, or the registry failed: the blob is uploaded instead.
      if (error instanceof RegistryError) return false;
      throw error;
    }
    if (res.statusCode === 201) {
      await res.body.dump();
      return true;
    }
    if (res.statusCode === 202) {
      await res.body.dump();
      const location = header(res, 'location');
      if (location) await cancelUpload(this.client, new URL(location, res.url));
      return false;
    }
    await res.body.dump();
    return false;
  }

  /**
   * PUTs a manifest by digest: with `instanceDigest` that instance of a list; else the image's own,
   * which the registry checks (type, blobs) now but which becomes visible under the tag only at
   * commit, with a second PUT by tag. A type the registry refuses (MANIFEST_INVALID, UNSUPPORTED,
   * HTTP 415) gives ManifestTypeRejectedError, so that the engine tries another format.
   */
  async putManifest(
    bytes: Uint8Array,
    instanceDigest?: Digest,
    options: OperationOptions = {},
  ): Promise<void> {
    const mediaType = guessMediaType(bytes);
    const digest = instanceDigest ?? this.reference.dockerReference.digest ?? manifestDigest(bytes);
    if (!matchesDigest(bytes, digest)) {
      throw new DigestMismatchError(digest, manifestDigest(bytes), 'manifest');
    }
    await this.sendManifest(bytes, mediaType, digest, options.signal);
    if (instanceDigest === undefined) this.pending = { bytes, mediaType, digest };
  }

  private async sendManifest(
    bytes: Uint8Array,
    mediaType: string,
    target: string,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const res = await this.client.request({
      method: 'PUT',
      target: `/v2/${this.repository}/manifests/${target}`,
      headers: { 'content-type': mediaType, 'content-length': String(body.length) },
      body,
      signal,
    });
    if (res.statusCode === 201 || res.statusCode === 200 || res.statusCode === 202) {
      await res.body.dump();
      return;
    }
    const error = await this.client.failure(res, 'PUT');
    const rejected =
      res.statusCode === 415 ||
      (res.statusCode === 400 &&
        error.errors.some((e) => e.code === 'MANIFEST_INVALID' || e.code === 'UNSUPPORTED'));
    if (rejected) {
      throw Object.assign(new ManifestTypeRejectedError(mediaType, this.reference.toString()), {
        cause: error,
      });
    }
    throw error;
  }

  /**
   * Keeps the signatures of the manifest (the instance, else the top-level one put or found present)
   * to write at commit. Sigstore signatures are refused: they would need registry attachments.
   */
  async putSignatures(
    signatures: Signature[],
    instanceDigest?: Digest,
    _options?: OperationOptions,
  ): Promise<void> {
    if (signatures.some((s) => s.format !== 'simple-signing')) {
      throw new NotSupportedError(
        `${this.reference} cannot store sigstore signatures (registry attachments are not supported yet); copy with --remove-signatures to drop them`,
      );
    }
    const digest = instanceDigest ?? this.pending?.digest ?? this.presentDigest;
    if (digest === undefined) {
      if (signatures.length === 0) return;
      throw new NotSupportedError(`${this.reference}: signatures put before the manifest`);
    }
    this.signatures.set(digest, signatures);
  }

  /**
   * Tags the image (the top-level manifest, already stored by digest, is PUT by the reference's
   * tag), then writes the signatures to the lookaside directory.
   */
  async commit(options: OperationOptions = {}): Promise<void> {
    const pending = this.pending;
    if (pending !== undefined) {
      const tag = this.reference.dockerReference.tag;
      if (tag !== undefined && this.reference.dockerReference.digest === undefined) {
        await this.sendManifest(pending.bytes, pending.mediaType, tag, options.signal);
      }
      this.pending = undefined;
    }
    const dir = lookasideDir(this.options);
    for (const [digest, signatures] of this.signatures) {
      await writeLookasideSignatures(dir, this.repository, digest, signatures);
    }
    this.signatures.clear();
  }

  /** Nothing to release; uploaded blobs stay in the repository for the next attempt. */
  async close(): Promise<void> {}

  /**
   * One HEAD of the manifest by the reference (tag or digest): present when the registry answers
   * with this digest. A registry only accepts a manifest whose blobs it holds, so that is the whole
   * image.
   */
  async alreadyContainsManifest(
    digest: Digest,
    _bytes: Uint8Array,
    options: OperationOptions = {},
  ): Promise<ManifestPresence> {
    const res = await this.client.request({
      method: 'HEAD',
      target: `/v2/${this.repository}/manifests/${this.reference.manifestReference}`,
      headers: { accept: manifestAccept },
      signal: options.signal,
    });
    await res.body.dump();
    if (res.statusCode === 404) return { present: false };
    if (res.statusCode !== 200) throw await this.client.failure(res, 'HEAD');
    if (header(res, 'docker-content-digest') !== digest) return { present: false };
    this.presentDigest = digest;
    const signatures = await readLookasideSignatures(lookasideDir(this.options), this.repository, digest);
    return { present: true, signatures };
  }
}
