import { ManifestUnknownError, NotSupportedError, type OperationOptions, RegistryError } from '@img/core';
import { dockerConfig } from './context.js';
import type { DockerTransportOptions } from './options.js';
import type { DockerReference } from './reference.js';
import { header, RegistryClient } from './registry/client.js';
import { redactUrl } from './registry/errors.js';
import { manifestAccept } from './source.js';

/**
 * Deletes an image as skopeo does: a tag is resolved to its digest with a HEAD (the full Accept
 * list, so the registry reports the digest of what it stores), then the manifest is deleted by
 * digest. ManifestUnknownError when absent; a registry with deletion disabled answers 405.
 */
export async function deleteImage(
  ref: DockerReference,
  options: DockerTransportOptions,
  op: OperationOptions = {},
): Promise<void> {
  const client = new RegistryClient({
    host: ref.host,
    repository: ref.repository,
    actions: 'pull,push',
    options,
    config: dockerConfig(),
  });
  let digest: string | undefined = ref.dockerReference.digest;
  if (digest === undefined) {
    const res = await client.request({
      method: 'HEAD',
      target: `/v2/${ref.repository}/manifests/${ref.manifestReference}`,
      headers: { accept: manifestAccept },
      signal: op.signal,
    });
    await res.body.dump();
    if (res.statusCode === 404) throw new ManifestUnknownError(ref.toString());
    if (res.statusCode !== 200) throw await client.failure(res, 'HEAD');
    const found = header(res, 'docker-content-digest');
    if (!found) {
      throw new RegistryError(
        { method: 'HEAD', url: redactUrl(res.url), status: res.statusCode },
        `${ref}: the registry did not report the manifest digest (Docker-Content-Digest)`,
      );
    }
    digest = found;
  }
  const res = await client.request({
    method: 'DELETE',
    target: `/v2/${ref.repository}/manifests/${digest}`,
    signal: op.signal,
  });
  if (res.statusCode === 202 || res.statusCode === 200) {
    await res.body.dump();
    return;
  }
  const error = await client.failure(res, 'DELETE');
  if (res.statusCode === 404) throw new ManifestUnknownError(ref.toString(), { cause: error });
  if (res.statusCode === 405) {
    // distribution answers 405 UNSUPPORTED when its storage.delete.enabled is off.
    throw new NotSupportedError(
      `${ref}: the registry ${ref.host} does not allow deleting images (HTTP 405)`,
      {
        cause: error,
      },
    );
  }
  throw error;
}
