import type { Digest, Signature } from '@img/core';
import type { ImageRecord } from './store.js';

// containers/image keeps an image's signatures as one big-data item holding the signatures end to
// end, and their sizes in the image's metadata string ("signature-sizes" for the top level,
// "signatures-sizes" per manifest digest). Each signature is stored as containers/image's
// signature.Blob: simple signing as its raw bytes, sigstore as a 0x00 byte, "sigstore-json\n", JSON.

const sigstorePrefix = Buffer.from('\x00sigstore-json\n', 'latin1');

/** The metadata object of an image (containers/image stores JSON in the `metadata` string). */
export function imageMetadata(image: ImageRecord | undefined): Record<string, unknown> {
  if (!image?.metadata) return {};
  try {
    const parsed = JSON.parse(image.metadata) as unknown;
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

/** The stored sizes of the top-level signatures, or of one manifest's. */
export function signatureSizes(image: ImageRecord, digest: Digest | undefined): number[] {
  const meta = imageMetadata(image);
  const sizes =
    digest === undefined
      ? meta['signature-sizes']
      : (meta['signatures-sizes'] as Record<string, unknown> | undefined)?.[digest];
  return Array.isArray(sizes) ? sizes.filter((n): n is number => typeof n === 'number') : [];
}

/** One signature as stored. */
export function encodeSignature(signature: Signature): Buffer {
  if (signature.format === 'simple-signing') return Buffer.from(signature.bytes);
  const json = JSON.stringify({
    mimeType: signature.mimeType ?? '',
    payload: Buffer.from(signature.bytes).toString('base64'),
    annotations: signature.annotations ?? {},
  });
  return Buffer.concat([sigstorePrefix, Buffer.from(json, 'utf8')]);
}

/** Splits a stored signatures item by the recorded sizes. */
export function decodeSignatures(bytes: Buffer, sizes: number[]): Signature[] {
  const out: Signature[] = [];
  let offset = 0;
  for (const size of sizes) {
    const blob = bytes.subarray(offset, offset + size);
    offset += size;
    if (blob.subarray(0, sigstorePrefix.length).equals(sigstorePrefix)) {
      const parsed = JSON.parse(blob.subarray(sigstorePrefix.length).toString('utf8')) as {
        mimeType?: string;
        payload?: string;
        annotations?: Record<string, string>;
      };
      out.push({
        format: 'sigstore',
        bytes: Buffer.from(parsed.payload ?? '', 'base64'),
        ...(parsed.mimeType ? { mimeType: parsed.mimeType } : {}),
        ...(parsed.annotations ? { annotations: parsed.annotations } : {}),
      });
    } else {
      out.push({ format: 'simple-signing', bytes: Buffer.from(blob) });
    }
  }
  return out;
}
