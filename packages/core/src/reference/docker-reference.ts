import { type Digest, parseDigest } from '../digest.js';
import { InvalidDigestError, InvalidReferenceError } from '../errors.js';

/** A parsed, normalised docker reference: `domain/path[:tag][@digest]`. */
export interface NamedReference {
  /** The registry host, with port: `docker.io`, `localhost:5000`. */
  readonly domain: string;
  /** The repository path within the registry: `library/busybox`. */
  readonly path: string;
  /** The tag, e.g. `latest`; undefined when the reference names no tag. */
  readonly tag: string | undefined;
  /** The manifest digest; undefined when the reference names no digest. */
  readonly digest: Digest | undefined;
  /** `domain/path`. */
  name(): string;
  /** The full string: `domain/path[:tag][@digest]`. */
  toString(): string;
  /** The short form users type: `busybox:latest` for `docker.io/library/busybox:latest`. */
  familiarString(): string;
}

/** The registry a reference without a domain points to (Docker Hub). */
export const defaultDomain = 'docker.io';

/** The tag {@link tagNameOnly} adds to a reference that names neither tag nor digest. */
export const defaultTag = 'latest';

// Docker Hub's legacy host name; the CLI treats it as the default domain.
const legacyDefaultDomain = 'index.docker.io';
// Single-component Docker Hub repositories live under this namespace ("official images").
const officialRepositoryPrefix = 'library/';
const nameMaxLength = 255;

const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const hostName = `${domainComponent}(?:\\.${domainComponent})*`;
const bracketedIpv6 = '\\[[a-fA-F0-9:]+\\]';
const domainPattern = new RegExp(`^(?:${hostName}|${bracketedIpv6})(?::[0-9]+)?$`);
const pathComponentPattern = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const tagPattern = /^\w[\w.-]{0,127}$/;
// A bare image ID: the CLI refuses it as a name so that it is never pulled as `library/<id>`.
const imageIdPattern = /^[a-f0-9]{64}$/;

class DockerReference implements NamedReference {
  constructor(
    readonly domain: string,
    readonly path: string,
    readonly tag: string | undefined,
    readonly digest: Digest | undefined,
  ) {
    Object.freeze(this);
  }

  name(): string {
    return `${this.domain}/${this.path}`;
  }

  toString(): string {
    return this.name() + this.suffix();
  }

  familiarString(): string {
    return this.familiarName() + this.suffix();
  }

  private familiarName(): string {
    if (this.domain !== defaultDomain) return this.name();
    const official = this.path.slice(officialRepositoryPrefix.length);
    return this.path.startsWith(officialRepositoryPrefix) && !official.includes('/') ? official : this.path;
  }

  private suffix(): string {
    return (
      (this.tag === undefined ? '' : `:${this.tag}`) + (this.digest === undefined ? '' : `@${this.digest}`)
    );
  }
}

/** The parts of a reference string, split at its separators but not yet checked. */
interface ReferenceParts {
  domain: string | undefined;
  path: string;
  tag: string | undefined;
  digest: string | undefined;
}

function splitReference(text: string): ReferenceParts {
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  // A colon after the last slash starts the tag; one before it belongs to the domain's port.
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  let domain: string | undefined;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      domain = first;
      rest = rest.slice(slash + 1);
    }
  }
  return { domain, path: rest, tag, digest };
}

function checkPath(text: string, path: string): void {
  if (path.toLowerCase() !== path) throw new InvalidReferenceError(text, 'repository name must be lowercase');
  for (const component of path.split('/')) {
    if (component === '') {
      throw new InvalidReferenceError(text, 'repository name must not have empty path components');
    }
    if (!pathComponentPattern.test(component)) {
      throw new InvalidReferenceError(text, `invalid repository path component "${component}"`);
    }
  }
}

function checkTag(text: string, tag: string): void {
  if (!tagPattern.test(tag)) {
    throw new InvalidReferenceError(
      text,
      `invalid tag "${tag}": expected at most 128 of [A-Za-z0-9_.-], not starting with "." or "-"`,
    );
  }
}

function checkDigest(text: string, digest: string): Digest {
  try {
    return parseDigest(digest);
  } catch (err) {
    if (err instanceof InvalidDigestError) {
      throw new InvalidReferenceError(text, `invalid digest "${digest}": ${err.reason}`, { cause: err });
    }
    throw err;
  }
}

/**
 * Parses a reference as the docker CLI does, filling in what users may leave out: no domain means
 * `docker.io`, and a single-component Docker Hub name lives under `library/`.
 *
 * @example
 * parseNormalizedNamed('busybox:1.36').toString(); // 'docker.io/library/busybox:1.36'
 */
export function parseNormalizedNamed(text: string): NamedReference {
  if (imageIdPattern.test(text)) {
    throw new InvalidReferenceError(text, 'cannot specify 64-byte hexadecimal strings');
  }
  const parts = splitReference(text);
  if (parts.path === '') {
    throw new InvalidReferenceError(text, 'repository name must not be empty');
  }
  let domain = parts.domain ?? defaultDomain;
  if (!domainPattern.test(domain)) throw new InvalidReferenceError(text, `invalid domain "${domain}"`);
  checkPath(text, parts.path);
  if (parts.tag !== undefined) checkTag(text, parts.tag);
  const digest = parts.digest === undefined ? undefined : checkDigest(text, parts.digest);

  let path = parts.path;
  if (domain === legacyDefaultDomain) domain = defaultDomain;
  if (domain === defaultDomain && !path.includes('/')) path = officialRepositoryPrefix + path;
  if (domain.length + 1 + path.length > nameMaxLength) {
    throw new InvalidReferenceError(
      text,
      `repository name must not be more than ${nameMaxLength} characters`,
    );
  }
  return new DockerReference(domain, path, parts.tag, digest);
}

/**
 * Parses a reference that is already fully qualified (`docker.io/library/busybox:latest`, not
 * `busybox:latest`), as stored in configuration and signatures, and refuses any other form.
 */
export function parseDockerReference(text: string): NamedReference {
  const ref = parseNormalizedNamed(text);
  const canonical = ref.toString();
  if (canonical !== text) {
    throw new InvalidReferenceError(text, `reference must be fully qualified, as in "${canonical}"`);
  }
  return ref;
}

/** Whether the reference names neither a tag nor a digest. */
export function isNameOnly(ref: NamedReference): boolean {
  return ref.tag === undefined && ref.digest === undefined;
}

/** The reference without its tag and digest: `domain/path`. */
export function nameOnly(ref: NamedReference): NamedReference {
  return new DockerReference(ref.domain, ref.path, undefined, undefined);
}

/** The reference with `tag` in place of its tag; a digest it names is kept. */
export function withTag(ref: NamedReference, tag: string): NamedReference {
  checkTag(`${ref.name()}:${tag}`, tag);
  return new DockerReference(ref.domain, ref.path, tag, ref.digest);
}

/** The reference with `digest` in place of its digest; a tag it names is kept. */
export function withDigest(ref: NamedReference, digest: string): NamedReference {
  const checked = checkDigest(`${ref.name()}@${digest}`, digest);
  return new DockerReference(ref.domain, ref.path, ref.tag, checked);
}

/** The reference with the `latest` tag added when it names neither a tag nor a digest, else unchanged. */
export function tagNameOnly(ref: NamedReference): NamedReference {
  return isNameOnly(ref) ? withTag(ref, defaultTag) : ref;
}
