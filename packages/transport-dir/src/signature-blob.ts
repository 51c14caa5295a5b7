// The storage form of one signature in a file, as containers/image's signature.Blob writes it and
// signature.FromBlob reads it, so that skopeo and img read each other's dir: signatures.
import { InvalidLayoutError, type Signature } from '@img/core';

const sigstoreFormatId = 'sigstore-json';
const simpleSigningFormatId = 'simple-signing';

/**
 * First bytes of a bare OpenPGP message, the historical form of simple signing signatures (stored
 * with no format marker): a compressed data packet, a one-pass signature packet or a signature
 * packet, in the old or the new packet format (RFC 4880 section 4.2).
 */
const openPgpFirstBytes = new Set([
  0xa0, 0xa1, 0xa2, 0xa3, 0xc8, 0x90, 0x91, 0x92, 0x3d, 0xc4, 0x88, 0x89, 0x8a, 0x8b, 0xc2,
]);

/**
 * Encodes a signature for storage: a simple signing signature as its raw bytes (the form older
 * readers expect); anything else as a zero byte, the format name, a newline and the format's own
 * encoding. A sigstore signature's encoding is the JSON object `{mimeType, payload (base64),
 * annotations}` with Go's encoding/json conventions, so skopeo writes the same bytes.
 */
export function signatureToBlob(signature: Signature): Uint8Array {
  if (signature.format === 'simple-signing') {
    const first = signature.bytes[0];
    if (first !== undefined && openPgpFirstBytes.has(first)) return signature.bytes;
    // Bytes that do not start like an OpenPGP message would not be recognized when read back raw;
    // the explicit form is the one signature.FromBlob also accepts for simple signing.
    return Buffer.concat([Buffer.from([0]), Buffer.from(`${simpleSigningFormatId}\n`), signature.bytes]);
  }
  const chunk =
    `{"mimeType":${goJsonString(signature.mimeType ?? '')},` +
    `"payload":${goJsonString(Buffer.from(signature.bytes).toString('base64'))},` +
    `"annotations":${goJsonStringMap(signature.annotations)}}`;
  return Buffer.concat([Buffer.from([0]), Buffer.from(`${sigstoreFormatId}\n`), Buffer.from(chunk, 'utf8')]);
}

/** Decodes a stored signature; `where` names the file in errors. */
export function signatureFromBlob(blob: Uint8Array, where: string): Signature {
  const bytes = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const first = bytes[0];
  if (first === undefined) throw invalid(where, 'the file is empty');
  if (openPgpFirstBytes.has(first)) return { format: 'simple-signing', bytes: copyBytes(bytes) };
  if (first !== 0) throw invalid(where, `unrecognized format, starting with byte 0x${first.toString(16)}`);
  const newline = bytes.indexOf(0x0a, 1);
  if (newline < 0) throw invalid(where, 'no newline after the format name');
  const formatName = bytes.subarray(1, newline);
  for (const b of formatName) {
    if (b < 0x20 || b >= 0x7f) throw invalid(where, `non-ASCII byte 0x${b.toString(16)} in the format name`);
  }
  const chunk = bytes.subarray(newline + 1);
  const format = formatName.toString('latin1');
  if (format === simpleSigningFormatId) return { format: 'simple-signing', bytes: copyBytes(chunk) };
  if (format === sigstoreFormatId) return sigstoreFromChunk(chunk, where);
  throw invalid(where, `unrecognized format "${format}"`);
}

function sigstoreFromChunk(chunk: Buffer, where: string): Signature {
  let value: unknown;
  try {
    value = JSON.parse(chunk.toString('utf8'));
  } catch (error) {
    throw invalid(where, `sigstore JSON does not parse: ${(error as Error).message}`, error);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(where, 'sigstore JSON is not an object');
  }
  const { mimeType, payload, annotations } = value as Record<string, unknown>;
  if (mimeType !== undefined && mimeType !== null && typeof mimeType !== 'string') {
    throw invalid(where, 'sigstore "mimeType" is not a string');
  }
  if (payload !== undefined && payload !== null && typeof payload !== 'string') {
    throw invalid(where, 'sigstore "payload" is not a base64 string');
  }
  const signature: Signature = {
    format: 'sigstore',
    bytes: copyBytes(Buffer.from(typeof payload === 'string' ? payload : '', 'base64')),
  };
  if (typeof mimeType === 'string') signature.mimeType = mimeType;
  if (annotations !== undefined && annotations !== null) {
    if (typeof annotations !== 'object' || Array.isArray(annotations)) {
      throw invalid(where, 'sigstore "annotations" is not an object');
    }
    const entries = Object.entries(annotations as Record<string, unknown>);
    for (const [key, v] of entries) {
      if (typeof v !== 'string') throw invalid(where, `sigstore annotation "${key}" is not a string`);
    }
    signature.annotations = Object.fromEntries(entries) as Record<string, string>;
  }
  return signature;
}

function invalid(where: string, why: string, cause?: unknown): InvalidLayoutError {
  return new InvalidLayoutError(
    `invalid signature "${where}": ${why}`,
    cause === undefined ? undefined : { cause },
  );
}

/** A plain Uint8Array of its own, so callers never hold a view into a pooled or larger buffer. */
function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** A JSON string as Go's encoding/json writes it: HTML-significant characters and U+2028/9 escaped too. */
function goJsonString(text: string): string {
  return JSON.stringify(text).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** A string map as Go's encoding/json writes it: keys sorted by their UTF-8 bytes; `null` when absent. */
function goJsonStringMap(map: Readonly<Record<string, string>> | undefined): string {
  if (map === undefined) return 'null';
  const keys = Object.keys(map).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return `{${keys.map((k) => `${goJsonString(k)}:${goJsonString(map[k]!)}`).join(',')}}`;
}
