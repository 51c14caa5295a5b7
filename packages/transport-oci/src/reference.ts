import { dirname, resolve } from 'node:path';
import {
  type ImageDestination,
  type ImageReference,
  type ImageSource,
  InvalidReferenceError,
  type OperationOptions,
  type SystemContext,
  type Transport,
} from '@img/core';
import { deleteLayoutImage } from './delete.js';
import { OciImageDestination } from './destination.js';
import { ociOptions } from './options.js';
import { OciImageSource } from './source.js';
import { ociArchiveTransport, ociTransport } from './transport.js';

// A ref name as image-spec "annotations.md" defines org.opencontainers.image.ref.name:
// components of alphanumerics joined by one of - . _ : @ + (or a double dash), separated by slashes.
const component = '[A-Za-z0-9]+(?:(?:--|[-._:@+])[A-Za-z0-9]+)*';
const refNamePattern = new RegExp(`^${component}(?:/${component})*$`);

function checkPath(path: string, input: string): void {
  if (path === '') throw new InvalidReferenceError(input, 'the path is empty');
  // The path ends at the first colon (containers-transports(5)), so it cannot contain one.
  if (path.includes(':')) throw new InvalidReferenceError(input, `the path "${path}" contains a colon`);
}

function checkRefName(image: string, input: string): void {
  if (image !== '' && !refNamePattern.test(image)) {
    throw new InvalidReferenceError(input, `"${image}" is not a valid image reference name`);
  }
}

/**
 * The scopes broader than a path identity: the path itself when a name follows it, then each parent
 * directory, but not `/` (it would shadow the default scope `""`, as containers/image reasons).
 */
function pathNamespaces(resolved: string, named: boolean): string[] {
  const out: string[] = named ? [resolved] : [];
  for (let p = dirname(resolved); p !== '/' && p !== dirname(p); p = dirname(p)) out.push(p);
  return out;
}

/**
 * An image in an OCI image layout directory: `oci:path[:name]` or, for reading only,
 * `oci:path:@N` (the N-th entry of index.json, counted from 0, for images without a name).
 */
export class OciReference implements ImageReference {
  /** The transport, `oci`. */
  readonly transport: Transport = ociTransport;
  /** OCI layouts carry no docker reference. */
  readonly dockerReference = undefined;
  /** The path as the user gave it. */
  readonly path: string;
  /**
   * The absolute path, resolved lexically against the working directory at creation (symbolic links
   * are not followed: references are parsed synchronously and library code does no sync fs).
   */
  readonly resolvedPath: string;
  /** The `org.opencontainers.image.ref.name` to set or match; empty for none. */
  readonly image: string;
  /** The zero-based entry of index.json to read, for `path:@N`; undefined otherwise. */
  readonly sourceIndex: number | undefined;

  /** Use {@link newOciReference}, {@link newOciIndexReference} or `ociTransport.parseReference`. */
  constructor(path: string, image: string, sourceIndex: number | undefined) {
    this.path = path;
    this.resolvedPath = resolve(path);
    this.image = image;
    this.sourceIndex = sourceIndex;
  }

  /** `path`, `path:name` or `path:@N`. */
  stringWithinTransport(): string {
    if (this.sourceIndex !== undefined) return `${this.path}:@${this.sourceIndex}`;
    return this.image === '' ? this.path : `${this.path}:${this.image}`;
  }

  /** `oci:` and the reference, as a user would type it. */
  toString(): string {
    return `${this.transport.name}:${this.stringWithinTransport()}`;
  }

  /** The resolved path, followed by `:name` when the reference names an image. */
  policyConfigurationIdentity(): string {
    return this.image === '' ? this.resolvedPath : `${this.resolvedPath}:${this.image}`;
  }

  /** The resolved path (when a name follows it), then its parent directories up to, not including, `/`. */
  policyConfigurationNamespaces(): string[] {
    return pathNamespaces(this.resolvedPath, this.image !== '');
  }

  /**
   * Opens the image for reading. Fails with ManifestUnknownError when the layout or the image does
   * not exist, InvalidLayoutError when the path is not a usable layout, and InvalidReferenceError when
   * no name is given and the layout holds more than one image.
   */
  async newImageSource(ctx: SystemContext, options: OperationOptions = {}): Promise<ImageSource> {
    const { sharedBlobDir } = ociOptions(ctx);
    return OciImageSource.open(this, this.resolvedPath, this, options, { blobs: sharedBlobDir });
  }

  /**
   * Opens the layout for writing (creating the directory when missing). The image becomes visible in
   * index.json at commit; InvalidLayoutError when the path is a file.
   */
  async newImageDestination(ctx: SystemContext, options: OperationOptions = {}): Promise<ImageDestination> {
    if (this.sourceIndex !== undefined) {
      throw new InvalidReferenceError(this.toString(), 'a destination cannot be chosen by position (@N)');
    }
    return OciImageDestination.open(this, this.resolvedPath, this.image, options, ociOptions(ctx));
  }

  /**
   * Removes the image's entry from index.json (by rename of a rewritten file), then deletes the
   * blobs that no remaining entry of the layout uses; with a shared blob directory, no blob at all.
   */
  async deleteImage(ctx: SystemContext, options: OperationOptions = {}): Promise<void> {
    return deleteLayoutImage(this, this.resolvedPath, this, options, ociOptions(ctx).sharedBlobDir);
  }
}

/**
 * An image in a tar archive of an OCI image layout: `oci-archive:path[:name]`. A write replaces
 * the archive with one holding only the image written.
 */
export class OciArchiveReference implements ImageReference {
  /** The transport, `oci-archive`. */
  readonly transport: Transport = ociArchiveTransport;
  /** OCI archives carry no docker reference. */
  readonly dockerReference = undefined;
  /** The path of the archive as the user gave it. */
  readonly path: string;
  /** The absolute path, resolved lexically (see {@link OciReference.resolvedPath}). */
  readonly resolvedPath: string;
  /** The `org.opencontainers.image.ref.name` to set or match; empty for none. */
  readonly image: string;

  /** Use {@link newOciArchiveReference} or `ociArchiveTransport.parseReference`. */
  constructor(path: string, image: string) {
    this.path = path;
    this.resolvedPath = resolve(path);
    this.image = image;
  }

  /** `path` or `path:name`. */
  stringWithinTransport(): string {
    return this.image === '' ? this.path : `${this.path}:${this.image}`;
  }

  /** `oci-archive:` and the reference, as a user would type it. */
  toString(): string {
    return `${this.transport.name}:${this.stringWithinTransport()}`;
  }

  /** The resolved path, followed by `:name` when the reference names an image. */
  policyConfigurationIdentity(): string {
    return this.image === '' ? this.resolvedPath : `${this.resolvedPath}:${this.image}`;
  }

  /** The resolved path (when a name follows it), then its parent directories up to, not including, `/`. */
  policyConfigurationNamespaces(): string[] {
    return pathNamespaces(this.resolvedPath, this.image !== '');
  }

  /**
   * Unpacks the archive into a temp directory under `ctx.tmpDir` (or the system's) and reads the
   * image from there; the directory is removed on close.
   */
  async newImageSource(ctx: SystemContext, options: OperationOptions = {}): Promise<ImageSource> {
    // Imported when used: tar-stream costs start-up time that `oci:` copies never need.
    const { OciArchiveImageSource } = await import('./archive.js');
    return OciArchiveImageSource.open(this, ctx, options);
  }

  /**
   * Builds the layout in a temp directory; commit writes the archive beside the target and renames
   * it into place, replacing what was there.
   */
  async newImageDestination(ctx: SystemContext, options: OperationOptions = {}): Promise<ImageDestination> {
    const { OciArchiveImageDestination } = await import('./archive.js');
    return OciArchiveImageDestination.open(this, ctx, options);
  }
}

/**
 * Makes a reference to the image named `image` (none when empty or absent) in the layout at `dir`.
 *
 * @example
 * const ref = newOciReference('/var/lib/images/app', 'v1');
 * String(ref); // 'oci:/var/lib/images/app:v1'
 */
export function newOciReference(dir: string, image = ''): OciReference {
  return checkedOciReference(dir, image, `oci:${image === '' ? dir : `${dir}:${image}`}`);
}

/** `input` is what errors quote: the text the user typed, when the reference was parsed from one. */
function checkedOciReference(dir: string, image: string, input: string): OciReference {
  checkPath(dir, input);
  checkRefName(image, input);
  return new OciReference(dir, image, undefined);
}

/** Makes a reference, for reading, to the `sourceIndex`-th entry (from 0) of the layout's index.json. */
export function newOciIndexReference(dir: string, sourceIndex: number): OciReference {
  return checkedOciIndexReference(dir, sourceIndex, `oci:${dir}:@${sourceIndex}`);
}

function checkedOciIndexReference(dir: string, sourceIndex: number, input: string): OciReference {
  checkPath(dir, input);
  if (!Number.isInteger(sourceIndex) || sourceIndex < 0) {
    throw new InvalidReferenceError(input, 'the source index must be a non-negative integer');
  }
  if (!Number.isSafeInteger(sourceIndex)) {
    throw new InvalidReferenceError(
      input,
      `the source index is too large (at most ${Number.MAX_SAFE_INTEGER})`,
    );
  }
  return new OciReference(dir, '', sourceIndex);
}

/**
 * Makes a reference to the image named `image` (none when empty or absent) in the archive at `file`.
 *
 * @example
 * const ref = newOciArchiveReference('/tmp/app.tar', 'v1');
 */
export function newOciArchiveReference(file: string, image = ''): OciArchiveReference {
  return checkedOciArchiveReference(file, image, `oci-archive:${image === '' ? file : `${file}:${image}`}`);
}

function checkedOciArchiveReference(file: string, image: string, input: string): OciArchiveReference {
  checkPath(file, input);
  checkRefName(image, input);
  return new OciArchiveReference(file, image);
}

/** Parses what follows `oci:`: the path ends at the first colon; `@N` after it is a source index. */
export function parseOciReference(text: string): OciReference {
  const input = `oci:${text}`;
  const colon = text.indexOf(':');
  if (colon < 0) return checkedOciReference(text, '', input);
  const path = text.slice(0, colon);
  const rest = text.slice(colon + 1);
  if (!rest.startsWith('@')) return checkedOciReference(path, rest, input);
  // containers/image reads the index with strconv.Atoi, which allows a sign.
  if (!/^[+-]?[0-9]+$/.test(rest.slice(1))) {
    throw new InvalidReferenceError(input, `source index "${rest}" is not an integer`);
  }
  const index = Number(rest.slice(1));
  if (index < 0) throw new InvalidReferenceError(input, `source index "${rest}" is negative`);
  if (!Number.isSafeInteger(index)) {
    throw new InvalidReferenceError(
      input,
      `source index "${rest}" is too large (at most ${Number.MAX_SAFE_INTEGER})`,
    );
  }
  return checkedOciIndexReference(path, index, input);
}

/** Parses what follows `oci-archive:`: the path ends at the first colon, the rest is the name. */
export function parseOciArchiveReference(text: string): OciArchiveReference {
  const input = `oci-archive:${text}`;
  const colon = text.indexOf(':');
  return colon < 0
    ? checkedOciArchiveReference(text, '', input)
    : checkedOciArchiveReference(text.slice(0, colon), text.slice(colon + 1), input);
}
