import { copyImage, insecureAcceptAnythingPolicy, PolicyContext } from '@img/core';
import {
  MemoryStore,
  type RandomImageOptions,
  randomImage,
  randomIndex,
  type TestImage,
  type TestIndex,
} from '@img/testing';
import { newOciReference } from '@img/transport-oci';

const policy = new PolicyContext(insecureAcceptAnythingPolicy);

/** Writes a random image into an OCI layout under `tag` with the library, and returns it. */
export async function writeOciImage(
  layout: string,
  tag: string,
  options: RandomImageOptions = {},
): Promise<TestImage> {
  const image = await randomImage(options);
  const store = new MemoryStore('fixture');
  // An uncompressed fixture stays uncompressed in the layout (skopeo's --dest-oci-accept-uncompressed-layers).
  const destinationCtx =
    options.compressed === false ? { transportOptions: { oci: { acceptUncompressedLayers: true } } } : {};
  await copyImage(newOciReference(layout, tag), store.add(tag, image), { policy, destinationCtx });
  return image;
}

/** Writes a random multi-platform index into an OCI layout under `tag`. */
export async function writeOciIndex(
  layout: string,
  tag: string,
  platforms: string[],
  seed = 1,
): Promise<TestIndex> {
  const index = await randomIndex(platforms, { seed });
  const store = new MemoryStore('fixture');
  await copyImage(newOciReference(layout, tag), store.add(tag, index), { policy, imageListSelection: 'all' });
  return index;
}
