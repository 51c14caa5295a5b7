import { resolve } from 'node:path';
import {
  type Digest,
  type ImageDestination,
  type ImageReference,
  type ImageSource,
  ImgError,
  InvalidReferenceError,
  isDigest,
  isNameOnly,
  type NamedReference,
  type OperationOptions,
  parseNormalizedNamed,
  type SystemContext,
  type Transport,
  tagNameOnly,
} from '@img/core';
import { DockerArchiveImageDestination } from './archive-destination.js';
import { DockerArchiveImageSource } from './archive-source.js';
import { DockerDaemonImageDestination } from './daemon-destination.js';
import { DockerDaemonImageSource } from './daemon-source.js';
import { dockerArchiveTransport, dockerDaemonTransport } from './transport.js';

/**
 * An image of a Docker engine: by name (`name:tag` or `name@digest`) or by image ID
 * (`sha256:<hex>`, the config digest). Only `name:tag` can be written.
 */
export class DockerDaemonReference implements ImageReference {
  /** The transport, `docker-daemon`. */
  readonly transport: Transport = dockerDaemonTransport;
  /** The image ID, for references by ID. */
  readonly id: Digest | undefined;
  /** The name, for references by name: fully qualified, with a tag or a digest. */
  readonly dockerReference: NamedReference | undefined;

  /** Use {@link newDockerDaemonReference} or `dockerDaemonTransport.parseReference`. */
  constructor(id: Digest | undefined, ref: NamedReference | undefined) {
    this.id = id;
    this.dockerReference = ref;
  }

  /** What the Engine API takes in its paths: the image ID, or the familiar name (`busybox:latest`). */
  get engineName(): string {
    return this.id ?? this.dockerReference!.familiarString();
  }

  /** The image ID or the familiar name, as containers/image writes it. */
  stringWithinTransport(): string {
    return this.engineName;
  }

  /** `docker-daemon:` and the reference. */
  toString(): string {
    return `${this.transport.name}:${this.stringWithinTransport()}`;
  }

  /** Empty: image IDs cannot be namespaced, so only the default policy scope applies (as in skopeo). */
  policyConfigurationIdentity(): string {
    return '';
  }

  /** None (see {@link policyConfigurationIdentity}). */
  policyConfigurationNamespaces(): string[] {
    return [];
  }

  /**
   * Opens the image for reading: `GET /images/{name}/get` is started (ManifestUnknownError when the
   * daemon has no such image) and its tarball is read once, on the first need.
   */
  newImageSource(ctx: SystemContext, options: OperationOptions = {}): Promise<ImageSource> {
    return DockerDaemonImageSource.open(this, ctx, options);
  }

  /**
   * Opens the daemon for writing this `name:tag`. Nothing is sent yet: the load starts with the first
   * blob, and an image the daemon already has is only tagged, or left alone.
   */
  async newImageDestination(ctx: SystemContext, options: OperationOptions = {}): Promise<ImageDestination> {
    const ref = this.dockerReference;
    if (!ref || ref.tag === undefined) {
      throw new InvalidReferenceError(this.toString(), 'a destination must be a name:tag');
    }
    return DockerDaemonImageDestination.open(this, ref, ctx, options);
  }
}

/**
 * Makes a reference to an image of the daemon: an image ID (`sha256:<hex>`) or a name, which must
 * have a tag or a digest, not both.
 *
 * @example
 * const ref = newDockerDaemonReference('busybox:latest');
 * String(ref); // 'docker-daemon:busybox:latest'
 */
export function newDockerDaemonReference(idOrName: string): DockerDaemonReference {
  return parseDockerDaemonReference(idOrName);
}

/** Parses what follows `docker-daemon:` (containers/image's rules). */
export function parseDockerDaemonReference(text: string): DockerDaemonReference {
  const input = `docker-daemon:${text}`;
  // "algo:hex" is also a valid name:tag; as a digest it is an image ID, and only sha256 is one.
  if (/^[a-z0-9]+:[a-f0-9]{32,}$/.test(text) && isDigest(text)) {
    if (!text.startsWith('sha256:')) {
      throw new InvalidReferenceError(input, 'only sha256 image IDs are accepted');
    }
    return new DockerDaemonReference(text, undefined);
  }
  let ref: NamedReference;
  try {
    ref = parseNormalizedNamed(text);
  } catch (error) {
    if (error instanceof ImgError && error instanceof InvalidReferenceError) {
      throw new InvalidReferenceError(input, error.reason, { cause: error });
    }
    throw error;
  }
  if (ref.familiarString().split(/[:@]/)[0] === 'sha256') {
    throw new InvalidReferenceError(input, 'the repository name "sha256" is reserved for image IDs');
  }
  if (isNameOnly(ref)) throw new InvalidReferenceError(input, 'it has neither a tag nor a digest');
  if (ref.tag !== undefined && ref.digest !== undefined) {
    throw new InvalidReferenceError(input, 'a tag and a digest together are not supported');
  }
  return new DockerDaemonReference(undefined, ref);
}

/**
 * A docker-archive: `path`, `path:name:tag` (the tag to write, or to read), or, for reading,
 * `path:@N` (the N-th image of the archive's manifest.json, from 0).
 */
export class DockerArchiveReference implements ImageReference {
  /** The transport, `docker-archive`. */
  readonly transport: Transport = dockerArchiveTransport;
  /** The path as given. */
  readonly path: string;
  /** The absolute path, resolved lexically against the working directory. */
  readonly resolvedPath: string;
  /** The tagged name to write or to read; undefined for none. */
  readonly dockerReference: NamedReference | undefined;
  /** The position of the image to read, for `path:@N`. */
  readonly sourceIndex: number | undefined;

  /** Use {@link newDockerArchiveReference} or `dockerArchiveTransport.parseReference`. */
  constructor(path: string, ref: NamedReference | undefined, sourceIndex: number | undefined) {
    this.path = path;
    this.resolvedPath = resolve(path);
    this.dockerReference = ref;
    this.sourceIndex = sourceIndex;
  }

  /** `path`, `path:docker.io/library/name:tag` or `path:@N`. */
  stringWithinTransport(): string {
    if (this.sourceIndex !== undefined) return `${this.path}:@${this.sourceIndex}`;
    return this.dockerReference ? `${this.path}:${this.dockerReference.toString()}` : this.path;
  }

  /** `docker-archive:` and the reference. */
  toString(): string {
    return `${this.transport.name}:${this.stringWithinTransport()}`;
  }

  /** Empty, as in containers/image: only the default policy scope applies. */
  policyConfigurationIdentity(): string {
    return '';
  }

  /** None. */
  policyConfigurationNamespaces(): string[] {
    return [];
  }

  /**
   * Opens the image: the archive's headers are scanned (no layer is read), then manifest.json and
   * the config. The image is the one tagged with the name, the N-th, or the only one.
   */
  newImageSource(_ctx: SystemContext, options: OperationOptions = {}): Promise<ImageSource> {
    return DockerArchiveImageSource.open(this, options);
  }

  /**
   * Opens the archive for writing: the new tarball is streamed to a temp file beside it and renamed
   * over it at commit, keeping the images it already held (an image losing its last tag to this one
   * is dropped).
   */
  async newImageDestination(ctx: SystemContext, options: OperationOptions = {}): Promise<ImageDestination> {
    if (this.sourceIndex !== undefined) {
      throw new InvalidReferenceError(this.toString(), 'a destination cannot be chosen by position (@N)');
    }
    return DockerArchiveImageDestination.open(this, ctx, options);
  }
}

/**
 * Makes a reference to the archive at `path`, with the image named `name` (made `:latest` when it
 * has no tag) or, with a number, the `name`-th image.
 *
 * @example
 * const ref = newDockerArchiveReference('/tmp/app.tar', 'app:v1');
 * String(ref); // 'docker-archive:/tmp/app.tar:docker.io/library/app:v1'
 */
export function newDockerArchiveReference(path: string, name?: string | number): DockerArchiveReference {
  if (name === undefined || name === '') return parseDockerArchiveReference(path);
  return parseDockerArchiveReference(typeof name === 'number' ? `${path}:@${name}` : `${path}:${name}`);
}

/** Parses what follows `docker-archive:`: the path ends at the first colon; then a name or `@N`. */
export function parseDockerArchiveReference(text: string): DockerArchiveReference {
  const input = `docker-archive:${text}`;
  const colon = text.indexOf(':');
  const path = colon < 0 ? text : text.slice(0, colon);
  if (path === '') throw new InvalidReferenceError(input, 'the path is empty');
  if (colon < 0) return new DockerArchiveReference(path, undefined, undefined);
  const rest = text.slice(colon + 1);
  if (rest.startsWith('@')) {
    if (!/^[0-9]+$/.test(rest.slice(1))) {
      throw new InvalidReferenceError(input, `source index "${rest}" is not a non-negative integer`);
    }
    const index = Number(rest.slice(1));
    if (!Number.isSafeInteger(index)) {
      throw new InvalidReferenceError(input, `source index "${rest}" is too large`);
    }
    return new DockerArchiveReference(path, undefined, index);
  }
  let ref: NamedReference;
  try {
    ref = tagNameOnly(parseNormalizedNamed(rest));
  } catch (error) {
    if (error instanceof InvalidReferenceError) {
      throw new InvalidReferenceError(input, error.reason, { cause: error });
    }
    throw error;
  }
  if (ref.digest !== undefined) throw new InvalidReferenceError(input, 'digest references are not supported');
  return new DockerArchiveReference(path, ref, undefined);
}
