import {
  canonicalAlgorithm,
  computeDigest,
  type Digest,
  type DigestAlgorithm,
  digestAlgorithm,
  isDigest,
} from '../digest.js';
import { InvalidManifestError } from '../errors.js';
import { MediaTypes } from './media-types.js';

/** Media types whose `mediaType` field settles the kind, so a `signatures` member is not a JWS (containers/image's GuessMIMEType). */
const declaredKinds: ReadonlySet<string> = new Set([
  MediaTypes.dockerV2Schema2,
  MediaTypes.dockerV2List,
  MediaTypes.ociManifest,
  MediaTypes.ociIndex,
]);

function decodeBase64Url(text: string, what: string): Buffer {
  // libtrust's joseBase64UrlDecode: URL alphabet, padding optional, newlines and spaces ignored.
  const s = text.replace(/[\n ]/g, '');
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(s) || s.replace(/=+$/, '').length % 4 === 1) {
    throw new InvalidManifestError(`${what} is not base64url`);
  }
  return Buffer.from(s, 'base64url');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The JWS payload of a signed schema 1 manifest: the bytes before the signatures, then the format
 * tail that signing cut off. Both come from each signature's `protected` header (libtrust's "pretty
 * signature" format: `formatLength` and base64url `formatTail`, equal in every signature).
 */
export function schema1Payload(bytes: Uint8Array, json: Record<string, unknown>): Uint8Array {
  const signatures = json.signatures;
  if (!Array.isArray(signatures))
    throw new InvalidManifestError('signed schema 1 manifest: "signatures" is not an array');
  if (signatures.length === 0) throw new InvalidManifestError('signed schema 1 manifest has no signatures');
  let formatLength: number | undefined;
  let formatTail: Buffer | undefined;
  signatures.forEach((signature: unknown, i) => {
    const where = `signatures[${i}]`;
    if (!isObject(signature) || typeof signature.protected !== 'string') {
      throw new InvalidManifestError(`${where} has no "protected" header`);
    }
    let header: unknown;
    try {
      header = JSON.parse(decodeBase64Url(signature.protected, `${where}.protected`).toString('utf8'));
    } catch (error) {
      if (error instanceof InvalidManifestError) throw error;
      throw new InvalidManifestError(`${where}.protected is not JSON`, { cause: error });
    }
    if (!isObject(header)) throw new InvalidManifestError(`${where}.protected is not a JSON object`);
    const length = header.formatLength;
    if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) {
      throw new InvalidManifestError(`${where}.protected has no valid "formatLength"`);
    }
    if (typeof header.formatTail !== 'string')
      throw new InvalidManifestError(`${where}.protected has no "formatTail"`);
    const tail = decodeBase64Url(header.formatTail, `${where}.protected.formatTail`);
    if (formatLength !== undefined && formatLength !== length)
      throw new InvalidManifestError('conflicting signature format lengths');
    if (formatTail !== undefined && !formatTail.equals(tail))
      throw new InvalidManifestError('conflicting signature format tails');
    formatLength = length;
    formatTail = tail;
  });
  if (formatLength === undefined || formatTail === undefined)
    throw new InvalidManifestError('signed schema 1 manifest has no signatures');
  if (formatLength > bytes.byteLength)
    throw new InvalidManifestError('signature format length is past the end of the manifest');
  const payload = new Uint8Array(formatLength + formatTail.byteLength);
  payload.set(bytes.subarray(0, formatLength), 0);
  payload.set(formatTail, formatLength);
  return payload;
}

/** Whether a parsed manifest is a schema 1 manifest carrying JWS signatures. */
export function isSignedSchema1(json: Record<string, unknown>): boolean {
  if (typeof json.mediaType === 'string' && declaredKinds.has(json.mediaType)) return false;
  return json.schemaVersion === 1 && json.signatures !== undefined && json.signatures !== null;
}

function parseLoosely(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'),
    );
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The digest of a manifest as registries address it: over the bytes, except that a signed schema 1
 * manifest is digested over its JWS payload (the manifest without its `signatures`).
 *
 * @example
 * const digest = manifestDigest(await readFile('manifest.json'));
 */
export function manifestDigest(bytes: Uint8Array, algorithm: DigestAlgorithm = canonicalAlgorithm): Digest {
  const json = parseLoosely(bytes);
  // Docker Registry HTTP API V2, "Content Digests": a signed manifest's digest is that of its payload.
  const content = json && isSignedSchema1(json) ? schema1Payload(bytes, json) : bytes;
  return computeDigest(content, algorithm);
}

/** Whether the manifest bytes have this digest (see {@link manifestDigest}); false for an invalid digest. */
export function matchesDigest(bytes: Uint8Array, digest: string): boolean {
  if (!isDigest(digest)) return false;
  return manifestDigest(bytes, digestAlgorithm(digest)) === digest;
}
