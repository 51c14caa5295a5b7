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
  blobsDirOf,
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
async function collectBlobs(blobs: string, digest: string, into: Set<string>, depth = 0): Promise<boolean> {
  if (!isDigest(digest)) return false;
  into.add(digest);
  if (depth > maxDepth) return false;
  const lookup = directoryBlobLookup(blobs);
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
    known = (await collectBlobs(blobs, instance.digest, into, depth + 1)) && known;
  }
  return known;
}

/**
 * Deletes an image from a layout: its entry leaves index.json first (a rewritten file renamed into
 * place, so the image disappears at once), then the blobs it used that no remaining entry reaches
 * are removed from the layout's `blobs/`. When what a remaining entry references cannot be known,
 * no blob is removed. A shared blob directory is read to follow manifests but never pruned: other
 * layouts may use its blobs (containers/image does the same).
 */
export async function deleteLayoutImage(
  reference: ImageReference,
  root: string,
  selector: ImageSelector,
  options: OperationOptions = {},
  sharedBlobDir?: string,
): Promise<void> {
  options.signal?.throwIfAborted();
  const index = await readLayout(root, reference.toString(), options);
  const { descriptor, position } = selectDescriptor(index, selector, reference.toString());
  const remaining = index.manifests.filter((_, i) => i !== position);

  const blobs = sharedBlobDir ?? blobsDirOf(root);
  const kept = new Set<string>();
  let keptKnown = true;
  for (const entry of remaining) keptKnown = (await collectBlobs(blobs, entry.digest, kept)) && keptKnown;
  const used = new Set<string>();
  await collectBlobs(blobs, descriptor.digest, used);

  index.manifests = remaining;
  await writeFileAtomically(join(root, 'index.json'), JSON.stringify(index));

  if (!keptKnown) return;
  for (const digest of used) {
    if (!kept.has(digest)) await rm(blobPath(blobsDirOf(root), digest), { force: true });
  }
}
