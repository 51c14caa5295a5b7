import { dirname, resolve } from 'node:path';
import {
  type ImageDestination,
  type ImageReference,
  type ImageSource,
  InvalidReferenceError,
  NotSupportedError,
  type OperationOptions,
  type SystemContext,
  type Transport,
} from '@img/core';
import { openDirImageDestination } from './destination.js';
import { openDirImageSource } from './source.js';
import { dirTransport } from './transport.js';

/**
 * A `dir:` reference: a directory holding one image as separate files (manifest, one file per blob,
 * signatures), as skopeo and containers/image write it.
 *
 * File system operations use {@link DirReference.resolvedPath}; {@link DirReference.path} is kept
 * as given, for display and round-trips.
 */
export class DirReference implements ImageReference {
  /** The path as the user gave it (may be relative). */
  readonly path: string;
  /** The absolute, cleaned path, against the working directory at construction time. */
  readonly resolvedPath: string;
  /** A directory has no docker reference. */
  readonly dockerReference = undefined;

  /** Throws InvalidReferenceError for an empty path. Prefer {@link newDirReference}. */
  constructor(path: string) {
    if (path === '') throw new InvalidReferenceError('dir:', 'a directory path is required');
    if (path.includes('\0')) throw new InvalidReferenceError(`dir:${path}`, 'the path contains a NUL byte');
    this.path = path;
    // Symlinks are not resolved, unlike containers/image: parsing is synchronous and library code does
    // no synchronous file system calls. The identity is still absolute and canonical in form.
    this.resolvedPath = resolve(path);
  }

  /** The dir: transport. */
  get transport(): Transport {
    return dirTransport;
  }

  /** The path as given, such that `dirTransport.parseReference` returns an equivalent reference. */
  stringWithinTransport(): string {
    return this.path;
  }

  /** `dir:` and the path as given. */
  toString(): string {
    return `${dirTransport.name}:${this.path}`;
  }

  /** The resolved absolute path. */
  policyConfigurationIdentity(): string {
    return this.resolvedPath;
  }

  /** Every parent directory of the resolved path, nearest first, without `/` (the default scope covers it). */
  policyConfigurationNamespaces(): string[] {
    const namespaces: string[] = [];
    for (let p = dirname(this.resolvedPath); p !== '/' && p !== dirname(p); p = dirname(p))
      namespaces.push(p);
    return namespaces;
  }

  /**
   * Opens the directory for reading. Fails with ManifestUnknownError when the path does not exist,
   * InvalidLayoutError when it is not a directory, NotSupportedError when its layout version is newer
   * than this package reads.
   */
  newImageSource(_ctx: SystemContext, options: OperationOptions = {}): Promise<ImageSource> {
    return openDirImageSource(this, options);
  }

  /**
   * Opens the directory for writing, creating it if needed. Refuses (InvalidLayoutError) a path that
   * is not a directory, or a non-empty directory that holds no image; nothing there is deleted.
   */
  newImageDestination(_ctx: SystemContext, options: OperationOptions = {}): Promise<ImageDestination> {
    return openDirImageDestination(this, options);
  }

  /** Always throws NotSupportedError: skopeo does not delete dir: images either (remove the directory). */
  async deleteImage(_ctx: SystemContext, _options?: OperationOptions): Promise<void> {
    throw new NotSupportedError(`deleting images is not supported by the dir transport: ${this.toString()}`);
  }
}

/**
 * A `dir:` reference for a path, for callers that do not parse strings.
 *
 * @example
 * const ref = newDirReference('/tmp/busybox');
 * const src = await ref.newImageSource({});
 */
export function newDirReference(path: string): DirReference {
  return new DirReference(path);
}
