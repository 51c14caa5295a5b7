import { isAbsolute } from 'node:path';
import {
  type ImageDestination,
  type ImageReference,
  type ImageSource,
  InvalidReferenceError,
  isDigest,
  type NamedReference,
  type OperationOptions,
  parseNormalizedNamed,
  type SystemContext,
  type Transport,
  tagNameOnly,
} from '@img/core';
import type { StoreSpec } from './config.js';
import { deleteStorageImage } from './delete.js';
import { StorageImageDestination } from './destination.js';
import { StorageImageSource } from './source.js';
import { storageTransport } from './transport.js';

const fullIdPattern = /^[0-9a-f]{64}$/;
// containers/image accepts an ID prefix of at least 3 characters (minimumTruncatedIDLength).
const idPrefixPattern = /^[0-9a-f]{3,64}$/;

/** The `[driver@graphroot+runroot:options]` part, parsed as containers/image does. */
function parseStoreSpec(spec: string, input: string): StoreSpec {
  if (spec === '') throw new InvalidReferenceError(input, 'the store specifier "[]" is empty');
  let rest = spec;
  let driver: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    driver = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (driver === '') throw new InvalidReferenceError(input, 'the store specifier names an empty driver');
    if (rest === '')
      throw new InvalidReferenceError(input, 'the store specifier has nothing after the driver');
  }
  let options: string[] | undefined;
  const colon = rest.indexOf(':');
  if (colon !== -1) {
    options = rest
      .slice(colon + 1)
      .split(',')
      .filter((o) => o !== '');
    rest = rest.slice(0, colon);
  }
  let runRoot: string | undefined;
  const plus = rest.indexOf('+');
  if (plus !== -1) {
    runRoot = rest.slice(plus + 1);
    rest = rest.slice(0, plus);
  }
  const graphRoot = rest;
  if (graphRoot !== '' && !isAbsolute(graphRoot)) {
    throw new InvalidReferenceError(input, `the graph root "${graphRoot}" is not an absolute path`);
  }
  if (runRoot && !isAbsolute(runRoot)) {
    throw new InvalidReferenceError(input, `the run root "${runRoot}" is not an absolute path`);
  }
  return {
    driver: driver || undefined,
    graphRoot: graphRoot || undefined,
    runRoot: runRoot || undefined,
    options,
  };
}

function formatStoreSpec(spec: StoreSpec): string {
  const driver = spec.driver ? `${spec.driver}@` : '';
  const runRoot = spec.runRoot ? `+${spec.runRoot}` : '';
  const options = spec.options && spec.options.length > 0 ? `:${spec.options.join(',')}` : '';
  return `[${driver}${spec.graphRoot ?? ''}${runRoot}${options}]`;
}

/**
 * An image in a containers/storage store (podman's, buildah's, cri-o's):
 * `[driver@graphroot+runroot:options]name[:tag][@digest][@imageID]`, the store part optional.
 * The store itself is resolved (storage.conf, defaults) when the reference is opened.
 */
export class StorageReference implements ImageReference {
  /** The transport, `containers-storage`. */
  readonly transport: Transport = storageTransport;
  /** The store as the reference names it; fields left out come from storage.conf. */
  readonly store: StoreSpec;
  /** The normalised name (`docker.io/library/busybox:latest`), when the reference has one. */
  readonly named: NamedReference | undefined;
  /** A full image ID, or (resolved when opened) a prefix of one of at least 3 characters. */
  readonly id: string | undefined;
  /**
   * For a bare hex string such as `abc123`: it is an image ID prefix when an image's ID starts
   * with it, else the name it would also be (containers/image checks the store first).
   */
  readonly ambiguousId: boolean;

  /** Use {@link newStorageReference} or `storageTransport.parseReference`. */
  constructor(
    store: StoreSpec,
    named: NamedReference | undefined,
    id: string | undefined,
    ambiguousId = false,
  ) {
    this.store = store;
    this.named = named;
    this.id = id;
    this.ambiguousId = ambiguousId;
  }

  /** The name, when the reference has one (tag or digest included). */
  get dockerReference(): NamedReference | undefined {
    return this.named;
  }

  /** `[store]name@id` with the parts that were given. */
  stringWithinTransport(): string {
    const hasStore =
      this.store.driver ||
      this.store.graphRoot ||
      this.store.runRoot ||
      (this.store.options?.length ?? 0) > 0;
    let out = hasStore ? formatStoreSpec(this.store) : '';
    if (this.named && !(this.ambiguousId && this.id)) out += this.named.toString();
    if (this.id) out += this.ambiguousId ? this.id : `@${this.id}`;
    return out;
  }

  /** `containers-storage:` and the reference. */
  toString(): string {
    return `${this.transport.name}:${this.stringWithinTransport()}`;
  }

  private storeScope(): string {
    // containers/image uses the resolved driver and graph root; without a spec, img uses what was named
    // (a policy with store scopes should name the store in the reference too).
    return `[${this.store.driver ?? 'overlay'}@${this.store.graphRoot ?? '/var/lib/containers/storage'}]`;
  }

  /** `[driver@graphroot]name:tag` (or `@ID` for an unnamed image), as containers/image scopes it. */
  policyConfigurationIdentity(): string {
    const scope = this.storeScope();
    if (this.named && !this.ambiguousId) return scope + this.named.toString();
    if (this.id) return `${scope}@${this.id}`;
    return scope;
  }

  /** The name without tag/digest, its parent namespaces, then the store with and without the driver. */
  policyConfigurationNamespaces(): string[] {
    const scope = this.storeScope();
    const out: string[] = [];
    const named = this.ambiguousId ? undefined : this.named;
    if (named) {
      if (this.id) out.push(scope + named.toString());
      if (named.tag !== undefined && named.digest !== undefined)
        out.push(`${scope}${named.name()}:${named.tag}`);
      const parts = named.name().split('/');
      for (let n = parts.length; n > 0; n--) out.push(scope + parts.slice(0, n).join('/'));
    }
    out.push(scope);
    out.push(`[${this.store.graphRoot ?? '/var/lib/containers/storage'}]`);
    return out;
  }

  /** Opens the image for reading: by name, by name and digest, or by ID (or ID prefix). */
  async newImageSource(ctx: SystemContext, options: OperationOptions = {}): Promise<ImageSource> {
    return StorageImageSource.open(this, ctx, options);
  }

  /**
   * Opens the store for writing the image under this reference's name. The image becomes visible
   * (images.json) only at commit; layers are written to the store as they arrive.
   */
  async newImageDestination(ctx: SystemContext, options: OperationOptions = {}): Promise<ImageDestination> {
    return StorageImageDestination.open(this, ctx, options);
  }

  /**
   * Removes the name from the image; the image, and its layers no other image uses, go when it has no
   * name left (or when the reference is by ID), as `podman rmi` does.
   */
  async deleteImage(ctx: SystemContext, options: OperationOptions = {}): Promise<void> {
    return deleteStorageImage(this, ctx, options);
  }
}

/**
 * Parses the part after `containers-storage:`. Only the syntax is checked here; the store is read
 * when the reference is opened.
 */
export function parseStorageReference(input: string): StorageReference {
  let rest = input;
  let store: StoreSpec = {};
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 1) throw new InvalidReferenceError(input, 'the store specifier does not end with "]"');
    store = parseStoreSpec(rest.slice(1, close), input);
    rest = rest.slice(close + 1);
  }
  if (rest === '') throw new InvalidReferenceError(input, 'no image name or ID');
  let id: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at !== -1) {
    const tail = rest.slice(at + 1);
    if (tail === '') throw new InvalidReferenceError(input, 'empty digest or ID after "@"');
    // A digest stays with the name; anything else after the last "@" must be an image ID (or a prefix).
    if (!tail.includes(':')) {
      if (!idPrefixPattern.test(tail)) {
        throw new InvalidReferenceError(input, `"${tail}" is neither an image ID nor a digest`);
      }
      id = tail;
      rest = rest.slice(0, at);
    } else if (!isDigest(tail)) {
      throw new InvalidReferenceError(input, `"${tail}" is not a valid digest`);
    }
  }
  if (id === undefined && rest !== '' && !/[@:]/.test(rest) && idPrefixPattern.test(rest)) {
    if (fullIdPattern.test(rest)) return new StorageReference(store, undefined, rest);
    // Name or ID prefix: decided against the store when opened, as containers/image does.
    return new StorageReference(store, tagNameOnly(parseName(rest, input)), rest, true);
  }
  let named: NamedReference | undefined;
  if (rest !== '') named = tagNameOnly(parseName(rest, input));
  return new StorageReference(store, named, id);
}

function parseName(text: string, input: string): NamedReference {
  try {
    return parseNormalizedNamed(text);
  } catch (error) {
    const reason = error instanceof InvalidReferenceError ? error.reason : (error as Error).message;
    throw new InvalidReferenceError(input, reason, { cause: error });
  }
}

/**
 * A reference to `name` (a normalised docker reference; `:latest` is added when it has neither tag
 * nor digest) and/or an image `id` in the store `store` (the default store when omitted).
 *
 * @example
 * const ref = newStorageReference('localhost/app:v1', undefined, { driver: 'vfs', graphRoot: '/srv/g', runRoot: '/run/g' });
 */
export function newStorageReference(
  name: string | undefined,
  id?: string,
  store: StoreSpec = {},
): StorageReference {
  if (name === undefined && id === undefined) {
    throw new InvalidReferenceError('', 'a containers-storage reference needs a name or an image ID');
  }
  if (id !== undefined && !idPrefixPattern.test(id)) {
    throw new InvalidReferenceError(id, 'not an image ID');
  }
  return new StorageReference(store, name === undefined ? undefined : tagNameOnly(parseName(name, name)), id);
}
