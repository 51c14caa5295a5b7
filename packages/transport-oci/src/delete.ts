import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  guessMediaType,
  type ImageReference,
  isDigest,
  manifestDescriptors,
  maxManifestSize,
  type OperationOptions,
} from '@img/core';
import {
  blobPath,
  directoryBlobLookup,
  type ImageSelector,
  readLayout,
  selectDescriptor,
  writeFileAtomically,
} from './layout.js';

/** Nested indexes deeper than this are not followed (a bound against a cycle of digests). */
const maxDepth = 8;

/**
 * Adds to `into` the digest and every blob reachable from it (config, layers, instances, their
 * blobs). Returns false when some of what it references cannot be known (an unreadable or
 * unknown kind of manifest); a missing manifest references nothing and counts as known.
 */
async function collectBlobs(root: string, digest: string, into: Set<string>, depth = 0): Promise<boolean> {
  if (!isDigest(digest)) return false;
  into.add(digest);
  if (depth > maxDepth) return false;
  const lookup = directoryBlobLookup(root);
  const size = await lookup.size(digest);
  if (size === undefined) return true;
  const bytes = await lookup.read(digest, maxManifestSize);
  if (!bytes) return false;
  let described: ReturnType<typeof manifestDescriptors>;
  try {
    described = manifestDescriptors(bytes, guessMediaType(bytes));
  } catch {
    return false;
  }
  if (described.config) into.add(described.config.digest);
  for (const layer of described.layers) into.add(layer.digest);
  let known = true;
  for (const instance of described.manifests) {
    known = (await collectBlobs(root, instance.digest, into, depth + 1)) && known;
  }
  return known;
}

/**
 * Deletes an image from a layout: its entry leaves index.json first (a rewritten file renamed into
 * place, so the image disappears at once), then the blobs it used that no remaining entry reaches
 * are removed. When what a remaining entry references cannot be known, no blob is removed.
 */
export async function deleteLayoutImage(
  reference: ImageReference,
  root: string,
  selector: ImageSelector,
  options: OperationOptions = {},
): Promise<void> {
  options.signal?.throwIfAborted();
  const index = await readLayout(root, reference.toString(), options);
  const { descriptor, position } = selectDescriptor(index, selector, reference.toString());
  const remaining = index.manifests.filter((_, i) => i !== position);

  const kept = new Set<string>();
  let keptKnown = true;
  for (const entry of remaining) keptKnown = (await collectBlobs(root, entry.digest, kept)) && keptKnown;
  const used = new Set<string>();
  await collectBlobs(root, descriptor.digest, used);

  index.manifests = remaining;
  await writeFileAtomically(join(root, 'index.json'), JSON.stringify(index));

  if (!keptKnown) return;
  for (const digest of used) {
    if (!kept.has(digest)) await rm(blobPath(root, digest), { force: true });
  }
}
