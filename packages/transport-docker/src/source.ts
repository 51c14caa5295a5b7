import {
  type BlobInfo,
  type BlobStream,
  BlobUnknownError,
  type Digest,
  DigestMismatchError,
  type GetBlobOptions,
  guessMediaType,
  type ImageSource,
  ImgError,
  ManifestUnknownError,
  manifestDigest,
  matchesDigest,
  maxManifestSize,
  type OperationOptions,
  type RawManifest,
  RegistryError,
  type Signature,
  supportedManifestMediaTypes,
} from '@img/core';
import { request } from 'undici';
import { dockerConfig } from './context.js';
import { lookasideDir, readLookasideSignatures } from './lookaside.js';
import type { DockerTransportOptions } from './options.js';
import type { DockerReference } from './reference.js';
import { resumableBody } from './registry/blob-reader.js';
import { agentFor, header, RegistryClient, retryPolicy } from './registry/client.js';
import { readCapped } from './registry/errors.js';

/** The Accept header of manifest requests: every manifest type img reads, single and list. */
export const manifestAccept = supportedManifestMediaTypes.join(', ');

/** A manifest response's media type: Content-Type without parameters, else guessed from the bytes. */
export function manifestMediaType(contentType: string | undefined, bytes: Uint8Array): string {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  return supportedManifestMediaTypes.includes(type) ? type : guessMediaType(bytes);
}

/** Whether a failed manifest or blob request means "not there". */
function isNotFound(error: unknown): boolean {
  return (
    error instanceof RegistryError &&
    (error.status === 404 ||
      error.errors.some(
        (e) => e.code === 'MANIFEST_UNKNOWN' || e.code === 'NAME_UNKNOWN' || e.code === 'BLOB_UNKNOWN',
      ))
  );
}

/**
 * Reads one image from a registry (containers/image's dockerImageSource). Internal: references hand
 * it out as an ImageSource. With registries.conf mirrors, the first pull source that has the
 * manifest is used for everything.
 */
export class DockerImageSource implements ImageSource {
  readonly hasThreadSafeGetBlob = true;

  private constructor(
    readonly reference: DockerReference,
    private readonly client: RegistryClient,
    private readonly options: DockerTransportOptions,
    private readonly top: RawManifest,
  ) {}

  /** Opens the image, reading (and verifying) its top-level manifest from the first pull source that has it. */
  static async open(
    reference: DockerReference,
    options: DockerTransportOptions,
    op: OperationOptions = {},
  ): Promise<DockerImageSource> {
    const config = dockerConfig();
    const pullBy = reference.dockerReference.digest === undefined ? 'tag' : 'digest';
    const plan = await config.endpointPlan(reference.host, reference.repository, options, pullBy);
    if (plan.blocked) {
      throw new ImgError(`registry ${reference.host} is blocked in registries.conf: ${reference}`);
    }
    const sources = plan.pullSources.length > 0 ? plan.pullSources : [{ ...plan.primary, isMirror: false }];
    let lastError: unknown;
    for (const source of sources) {
      const client = new RegistryClient({
        host: source.host,
        repository: source.repository,
        actions: 'pull',
        options,
        config,
      });
      try {
        const top = await fetchManifest(client, reference, reference.manifestReference, op.signal);
        return new DockerImageSource(reference, client, options, top);
      } catch (error) {
        if (op.signal?.aborted) throw error;
        lastError = error;
      }
    }
    throw lastError;
  }

  /**
   * Returns the top-level manifest (read at open), or the instance with `instanceDigest`, verified
   * against its digest. ManifestUnknownError when absent, TooLargeError over 4 MiB.
   */
  async getManifest(instanceDigest?: Digest, options: OperationOptions = {}): Promise<RawManifest> {
    if (instanceDigest === undefined) return this.top;
    return fetchManifest(this.client, this.reference, instanceDigest, options.signal);
  }

  /**
   * Streams a blob, resuming a broken read with a Range request. A blob the registry does not have
   * is fetched from the descriptor's `urls` when it has some (foreign layers), without credentials;
   * else BlobUnknownError.
   */
  async getBlob(info: BlobInfo, options: GetBlobOptions = {}): Promise<BlobStream> {
    const { signal } = options;
    const path = `/v2/${this.client.repository}/blobs/${info.digest}`;
    const res = await this.client.request({ method: 'GET', target: path, signal });
    if (res.statusCode === 200) {
      options.cache?.recordKnownLocation(
        { transport: 'docker', scope: this.client.host },
        info.digest,
        this.client.repository as string,
      );
      const length = Number(header(res, 'content-length') ?? -1);
      const size = Number.isSafeInteger(length) && length >= 0 ? length : info.size;
      const stream = resumableBody(
        res.body,
        size,
        async (offset, sig) => {
          const r = await this.client.request({
            method: 'GET',
            target: path,
            headers: { range: `bytes=${offset}-` },
            signal: sig,
          });
          return { status: r.statusCode, headers: r.headers, body: r.body, url: r.url };
        },
        retryPolicy(this.options),
        signal,
      );
      return { stream, size };
    }
    const error = await this.client.failure(res, 'GET');
    if (!isNotFound(error)) throw error;
    if (info.urls && info.urls.length > 0) {
      const external = await this.getExternalBlob(info, signal);
      if (external) return external;
    }
    throw new BlobUnknownError(info.digest, this.reference.toString(), { cause: error });
  }

  /** Tries each http(s) URL of a foreign layer in turn; no credentials are sent to them. */
  private async getExternalBlob(
    info: BlobInfo,
    signal: AbortSignal | undefined,
  ): Promise<BlobStream | undefined> {
    const agent = agentFor(await this.client.hostTls());
    for (const raw of info.urls ?? []) {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        continue;
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') continue;
      try {
        for (let hops = 0; hops < 10; hops++) {
          const res = await request(url, { method: 'GET', dispatcher: agent, signal: signal ?? null });
          const location = header(res, 'location');
          if ([301, 302, 303, 307, 308].includes(res.statusCode) && location) {
            await res.body.dump();
            url = new URL(location, url);
            continue;
          }
          if (res.statusCode !== 200) {
            await res.body.dump();
            break;
          }
          const length = Number(header(res, 'content-length') ?? -1);
          return { stream: res.body, size: Number.isSafeInteger(length) && length >= 0 ? length : info.size };
        }
      } catch (error) {
        if (signal?.aborted) throw error;
      }
    }
    return undefined;
  }

  /**
   * The simple-signing signatures of the manifest from the local lookaside directory, where skopeo
   * keeps them without registries.d configuration; sigstore attachments are not read yet.
   */
  async getSignatures(instanceDigest?: Digest, _options?: OperationOptions): Promise<Signature[]> {
    const digest = instanceDigest ?? manifestDigest(this.top.bytes);
    return readLookasideSignatures(lookasideDir(this.options), this.reference.repository, digest);
  }

  /** Nothing to release: connections belong to the shared agent. */
  async close(): Promise<void> {}
}

/**
 * GETs a manifest by tag or digest with the full Accept list and verifies it: by digest, the bytes
 * must have that digest; by tag, they must match Docker-Content-Digest when the registry sends it.
 */
export async function fetchManifest(
  client: RegistryClient,
  reference: DockerReference,
  tagOrDigest: string,
  signal: AbortSignal | undefined,
): Promise<RawManifest> {
  const what =
    tagOrDigest === reference.manifestReference
      ? reference.toString()
      : `${reference} instance ${tagOrDigest}`;
  const res = await client.request({
    method: 'GET',
    target: `/v2/${client.repository}/manifests/${tagOrDigest}`,
    headers: { accept: manifestAccept },
    signal,
  });
  if (res.statusCode !== 200) {
    const error = await client.failure(res, 'GET');
    if (isNotFound(error)) throw new ManifestUnknownError(what, { cause: error });
    throw error;
  }
  const bytes = await readCapped(res.body, maxManifestSize, `manifest ${what}`);
  const byDigest = tagOrDigest.includes(':');
  if (byDigest) {
    if (!matchesDigest(bytes, tagOrDigest)) {
      throw new DigestMismatchError(tagOrDigest, manifestDigest(bytes), 'manifest');
    }
  } else {
    const claimed = header(res, 'docker-content-digest');
    if (claimed !== undefined && claimed !== '' && !matchesDigest(bytes, claimed)) {
      throw new DigestMismatchError(claimed, manifestDigest(bytes), 'manifest');
    }
  }
  return { bytes, mediaType: manifestMediaType(header(res, 'content-type'), bytes) };
}
