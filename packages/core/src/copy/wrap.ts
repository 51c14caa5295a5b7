import { NotSupportedError } from '../errors.js';
import type { ImageDestination, ImageSource } from '../types.js';

type Loose<T> = { [K in keyof T]?: T[K] };

function method<T extends object, K extends keyof T>(target: T, key: K): T[K] | undefined {
  const value = target[key];
  return typeof value === 'function' ? (value.bind(target) as T[K]) : undefined;
}

/**
 * Gives a destination written against an older or minimal contract safe defaults for every member
 * it lacks (containers/image's FromPublic): no thread-safe puts, any manifest type, layers preserved,
 * no signatures, no blob reuse. New capabilities therefore never break old plugins. Every call is
 * delegated to the original object, so its methods keep their own `this`.
 */
export function wrapDestination(dest: ImageDestination): ImageDestination {
  const d = dest as Loose<ImageDestination> & ImageDestination;
  const wrapped: ImageDestination = {
    reference: d.reference,
    supportedManifestMediaTypes: d.supportedManifestMediaTypes ?? [],
    desiredLayerCompression: d.desiredLayerCompression ?? 'preserve',
    supportsSignatures: d.supportsSignatures ?? false,
    mustMatchRuntimeOS: d.mustMatchRuntimeOS ?? false,
    hasThreadSafePutBlob: d.hasThreadSafePutBlob ?? false,
    supportsOutOfOrderPuts: d.supportsOutOfOrderPuts ?? false,
    putBlob: method(d, 'putBlob')!,
    tryReusingBlob: method(d, 'tryReusingBlob') ?? (async () => undefined),
    putManifest: method(d, 'putManifest')!,
    putSignatures:
      method(d, 'putSignatures') ??
      (async (signatures) => {
        if (signatures.length > 0) throw new NotSupportedError(`${d.reference} cannot store signatures`);
      }),
    commit: method(d, 'commit') ?? (async () => {}),
    close: method(d, 'close') ?? (async () => {}),
  };
  const putBlobFromFile = method(d, 'putBlobFromFile');
  if (putBlobFromFile) wrapped.putBlobFromFile = putBlobFromFile;
  const alreadyContainsManifest = method(d, 'alreadyContainsManifest');
  if (alreadyContainsManifest) wrapped.alreadyContainsManifest = alreadyContainsManifest;
  return wrapped;
}

/** Gives a source written against an older or minimal contract safe defaults for every member it lacks. */
export function wrapSource(src: ImageSource): ImageSource {
  const s = src as Loose<ImageSource> & ImageSource;
  const wrapped: ImageSource = {
    reference: s.reference,
    hasThreadSafeGetBlob: s.hasThreadSafeGetBlob ?? false,
    getManifest: method(s, 'getManifest')!,
    getBlob: method(s, 'getBlob')!,
    getSignatures: method(s, 'getSignatures') ?? (async () => []),
    close: method(s, 'close') ?? (async () => {}),
  };
  const getBlobPath = method(s, 'getBlobPath');
  if (getBlobPath) wrapped.getBlobPath = getBlobPath;
  const layerInfosForCopy = method(s, 'layerInfosForCopy');
  if (layerInfosForCopy) wrapped.layerInfosForCopy = layerInfosForCopy;
  return wrapped;
}
