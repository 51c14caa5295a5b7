// STUB: to be implemented (docker reference grammar). Signatures are the contract.
import type { Digest } from '../digest.js';

/** A parsed, normalised docker reference: `domain/path[:tag][@digest]`. */
export interface NamedReference {
  /** The registry host, with port: `docker.io`, `localhost:5000`. */
  readonly domain: string;
  /** The repository path within the registry: `library/busybox`. */
  readonly path: string;
  readonly tag: string | undefined;
  readonly digest: Digest | undefined;
  /** `domain/path`. */
  name(): string;
  /** The full string: `domain/path[:tag][@digest]`. */
  toString(): string;
  /** The short form users type: `busybox:latest` for `docker.io/library/busybox:latest`. */
  familiarString(): string;
}

export function parseNormalizedNamed(_text: string): NamedReference {
  throw new Error('not implemented');
}
