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
import { withIndexLock } from './index-lock.js';
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
 * no blob is removed. The whole runs under the layout's lock (`index.json.lock`): the index
 * rewritten is the one read under it (an entry committed meanwhile is not lost), and the blobs in
 * use are counted from that index. A copy still putting blobs, not yet committed, is not seen: a blob
 * it shares only with the deleted image may go before its commit.
 * With a shared blob directory, no blob is removed at all: the shared directory is never pruned
 * (other layouts may use its blobs, as containers/image reasons), and which blobs of the layout's
 * own `blobs/` are still needed cannot be told when the manifests live elsewhere.
 */
export async function deleteLayoutImage(
  reference: ImageReference,
  root: string,
  selector: ImageSelector,
  options: OperationOptions = {},
  sharedBlobDir?: string,
): Promise<void> {
  options.signal?.throwIfAborted();
  // A missing or broken layout is reported as such before the lock, whose file needs the directory.
  await readLayout(root, reference.toString(), options);
  await withIndexLock(
    root,
    async () => {
      const index = await readLayout(root, reference.toString(), options);
      const { descriptor, position } = selectDescriptor(index, selector, reference.toString());
      index.manifests = index.manifests.filter((_, i) => i !== position);
      if (sharedBlobDir !== undefined) {
        await writeFileAtomically(join(root, 'index.json'), JSON.stringify(index));
        return;
      }
      const blobs = blobsDirOf(root);
      const kept = new Set<string>();
      let keptKnown = true;
      for (const entry of index.manifests) {
        keptKnown = (await collectBlobs(blobs, entry.digest, kept)) && keptKnown;
      }
      const used = new Set<string>();
      await collectBlobs(blobs, descriptor.digest, used);

      await writeFileAtomically(join(root, 'index.json'), JSON.stringify(index));

      if (!keptKnown) return;
      for (const digest of used) {
        if (!kept.has(digest)) await rm(blobPath(blobs, digest), { force: true });
      }
    },
    options,
  );
}
