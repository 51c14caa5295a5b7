import {
  type ImageDestination,
  type ImageReference,
  type ImageSource,
  InvalidReferenceError,
  type NamedReference,
  type OperationOptions,
  parseNormalizedNamed,
  type SystemContext,
  type Transport,
  tagNameOnly,
} from '@img/core';
import { dockerOptions } from './context.js';
import { deleteImage } from './delete.js';
import { DockerImageDestination } from './destination.js';
import { DockerImageSource } from './source.js';
import { dockerTransport } from './transport.js';

/**
 * An image in a registry: `docker://host[:port]/repo[:tag|@digest]`, normalised as the docker CLI
 * does (no host means docker.io, one-component Docker Hub names live under `library/`, no tag means
 * `latest`).
 */
export class DockerReference implements ImageReference {
  /** The transport, `docker`. */
  readonly transport: Transport = dockerTransport;
  /** The normalised reference; it names a tag or a digest, never both. */
  readonly dockerReference: NamedReference;

  /** Use {@link newDockerReference} or `dockerTransport.parseReference`. */
  constructor(named: NamedReference) {
    this.dockerReference = named;
  }

  /** The registry host, with port (`docker.io`, `127.0.0.1:5000`). */
  get host(): string {
    return this.dockerReference.domain;
  }

  /** The repository path within the registry (`library/busybox`). */
  get repository(): string {
    return this.dockerReference.path;
  }

  /** The tag or digest the manifest is addressed by. */
  get manifestReference(): string {
    return this.dockerReference.digest ?? this.dockerReference.tag ?? 'latest';
  }

  /** `//` and the familiar form (`//busybox:latest`). */
  stringWithinTransport(): string {
    return `//${this.dockerReference.familiarString()}`;
  }

  /** `docker://…`, as a user would type it. */
  toString(): string {
    return `docker:${this.stringWithinTransport()}`;
  }

  /** The full reference: `docker.io/library/busybox:latest`. */
  policyConfigurationIdentity(): string {
    return this.dockerReference.toString();
  }

  /**
   * The repository, its parent paths, the host, then the host's wildcarded parent domains without
   * the port (`*.example.com`, `*.com`), as containers/image's policy configuration naming does.
   */
  policyConfigurationNamespaces(): string[] {
    const out: string[] = [];
    let name = this.dockerReference.name();
    for (;;) {
      out.push(name);
      const slash = name.lastIndexOf('/');
      if (slash < 0) break;
      name = name.slice(0, slash);
    }
    const colon = name.indexOf(':');
    if (colon >= 0) name = name.slice(0, colon);
    for (let dot = name.indexOf('.'); dot >= 0; dot = name.indexOf('.')) {
      name = name.slice(dot + 1);
      out.push(`*.${name}`);
    }
    return out;
  }

  /** Opens the image for reading; the manifest is read (and verified) at open. ManifestUnknownError when absent. */
  newImageSource(ctx: SystemContext, options: OperationOptions = {}): Promise<ImageSource> {
    return DockerImageSource.open(this, dockerOptions(ctx), options);
  }

  /** Opens the repository for writing; the tag (or digest) is written by putManifest, at the end of a copy. */
  newImageDestination(ctx: SystemContext, options: OperationOptions = {}): Promise<ImageDestination> {
    return DockerImageDestination.open(this, dockerOptions(ctx), options);
  }

  /**
   * Deletes the manifest as skopeo does: a tag is resolved to its digest (HEAD), then
   * `DELETE /v2/<repo>/manifests/<digest>`, which removes every tag of that manifest.
   */
  deleteImage(ctx: SystemContext, options: OperationOptions = {}): Promise<void> {
    return deleteImage(this, dockerOptions(ctx), options);
  }
}

/**
 * Makes a reference from a parsed docker reference; a name without tag or digest gets `latest`.
 * A reference with both a tag and a digest is refused, as containers/image does.
 *
 * @example
 * const ref = newDockerReference(parseNormalizedNamed('127.0.0.1:5000/app:v1'));
 */
export function newDockerReference(named: NamedReference): DockerReference {
  if (named.tag !== undefined && named.digest !== undefined) {
    throw new InvalidReferenceError(
      `docker://${named.toString()}`,
      'a reference with both a tag and a digest is not supported',
    );
  }
  return new DockerReference(tagNameOnly(named));
}

/** Parses what follows `docker:`: `//` and a docker reference. */
export function parseDockerReference(text: string): DockerReference {
  const input = `docker:${text}`;
  if (!text.startsWith('//')) {
    throw new InvalidReferenceError(input, 'a docker reference must start with "//"');
  }
  let named: NamedReference;
  try {
    named = parseNormalizedNamed(text.slice(2));
  } catch (error) {
    if (error instanceof InvalidReferenceError) {
      throw new InvalidReferenceError(input, error.reason, { cause: error });
    }
    throw error;
  }
  if (named.tag !== undefined && named.digest !== undefined) {
    throw new InvalidReferenceError(input, 'a reference with both a tag and a digest is not supported');
  }
  return new DockerReference(tagNameOnly(named));
}
