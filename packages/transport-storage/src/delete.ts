import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ImgError, ManifestUnknownError, type OperationOptions, type SystemContext } from '@img/core';
import { assertWritable, resolveStore } from './config.js';
import { removeLayerFiles } from './layers.js';
import type { StorageReference } from './reference.js';
import { lookupImage } from './source.js';
import { type LayerRecord, Store } from './store.js';

async function containerImages(store: Store): Promise<Set<string>> {
  try {
    const text = await readFile(
      join(store.graphRoot, `${store.driver}-containers`, 'containers.json'),
      'utf8',
    );
    const list = JSON.parse(text) as Array<{ image?: string }>;
    return new Set(list.map((c) => c.image ?? '').filter((i) => i !== ''));
  } catch {
    return new Set();
  }
}

/**
 * Deletes an image as `podman rmi` does: a reference by name removes that name, and the image goes
 * only when no name is left; a reference by ID removes the image. The image's layers that no other
 * image (and no container) uses are removed with it.
 */
export async function deleteStorageImage(
  ref: StorageReference,
  _ctx: SystemContext,
  options: OperationOptions = {},
): Promise<void> {
  const resolved = await resolveStore(ref.store);
  assertWritable(resolved);
  const store = new Store(resolved);
  const signal = options.signal;
  await store.withLayersLock(
    true,
    (layersLock) =>
      store.withImagesLock(
        true,
        async (imagesLock) => {
          const images = await store.readImages();
          const image = lookupImage(ref, images);
          if (!image) throw new ManifestUnknownError(ref.toString());
          const name = ref.named?.toString();
          const byName = ref.id === undefined || ref.ambiguousId;
          const rest = byName && name ? (image.names ?? []).filter((n) => n !== name) : [];
          if (rest.length > 0) {
            const updated = { ...image, names: rest };
            await store.writeImages(
              images.map((i) => (i.id === image.id ? updated : i)),
              imagesLock,
            );
            return;
          }
          if ((await containerImages(store)).has(image.id)) {
            throw new ImgError(`image ${image.id} is in use by a container`);
          }
          const others = images.filter((i) => i.id !== image.id);
          await store.writeImages(others, imagesLock);
          await rm(store.imageDir(image.id), { recursive: true, force: true });

          // Layers used by other images (their chains) or by containers (as parents) stay.
          const layers = await store.readLayers();
          const byId = new Map(layers.map((l) => [l.id, l]));
          const used = new Set<string>();
          for (const other of others) {
            for (let id = other.layer; id; id = byId.get(id)?.parent) used.add(id);
          }
          for (const l of layers) if (l.parent && !images.some((i) => i.layer === l.id)) used.add(l.parent);
          const removed: LayerRecord[] = [];
          for (let id = image.layer; id && !used.has(id); id = byId.get(id)?.parent) {
            const layer = byId.get(id);
            if (!layer) break;
            // A layer that is the parent of a layer we keep stays too.
            if (
              layers.some(
                (l) =>
                  l.parent === id &&
                  !removed.some((r) => r.id === l.id) &&
                  l.id !== image.layer &&
                  !isChainOf(l.id, image.layer, byId),
              )
            )
              break;
            removed.push(layer);
          }
          if (removed.length === 0) return;
          const gone = new Set(removed.map((l) => l.id));
          await store.writeLayers(
            layers.filter((l) => !gone.has(l.id)),
            layersLock,
          );
          for (const layer of removed) await removeLayerFiles(store, layer.id);
        },
        signal,
      ),
    signal,
  );
}

function isChainOf(id: string, top: string | undefined, byId: Map<string, LayerRecord>): boolean {
  for (let cur = top; cur; cur = byId.get(cur)?.parent) if (cur === id) return true;
  return false;
}
