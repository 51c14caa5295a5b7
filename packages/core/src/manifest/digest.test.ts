import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { computeDigest } from '../digest.js';
import { InvalidManifestError } from '../errors.js';
import { manifestDigest, matchesDigest } from './digest.js';

const fixture = (name: string) =>
  new Uint8Array(readFileSync(new URL(`../../fixtures/manifest/${name}`, import.meta.url)));
/** What `skopeo manifest-digest` prints for schema1.json and schema1-signed.json. */
const schema1Digest = 'sha256:ef82a27f351a1465edbbbc52741324debdbf79f373e682c4600b563f96896931';

const b64url = (text: string) => Buffer.from(text).toString('base64url');

/** Signs a pretty-printed schema 1 manifest the way libtrust lays out its signatures (the crypto is fake). */
function sign(unsigned: string, headers: Array<Record<string, unknown>> | undefined = undefined): Uint8Array {
  const formatLength = unsigned.length - 2;
  const protectedHeaders = headers ?? [
    { formatLength, formatTail: b64url(unsigned.slice(formatLength)), time: '2024-01-01T00:00:00Z' },
  ];
  const signatures = protectedHeaders.map((h) => ({
    header: { alg: 'ES256' },
    signature: 'c2ln',
    protected: b64url(JSON.stringify(h)),
  }));
  return Buffer.from(
    `${unsigned.slice(0, formatLength)},\n   "signatures": ${JSON.stringify(signatures, null, 3)}\n}`,
  );
}

const unsignedText = JSON.stringify({ schemaVersion: 1, name: 'app', fsLayers: [], history: [] }, null, 3);

describe('manifestDigest', () => {
  it('digests an OCI manifest over its bytes', () => {
    const bytes = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}');
    expect(manifestDigest(bytes)).toBe(computeDigest(bytes));
  });

  it('computes sha512 when asked', () => {
    const bytes = Buffer.from('{"schemaVersion":2}');
    expect(manifestDigest(bytes, 'sha512')).toBe(computeDigest(bytes, 'sha512'));
  });

  it('digests a signed schema 1 manifest over its payload, as skopeo does', () => {
    expect(manifestDigest(fixture('schema1-signed.json'))).toBe(schema1Digest);
  });

  it('digests an unsigned schema 1 manifest over its bytes', () => {
    expect(manifestDigest(fixture('schema1.json'))).toBe(schema1Digest);
  });

  it('gives a signed manifest the digest of the unsigned bytes it was made from', () => {
    expect(manifestDigest(sign(unsignedText))).toBe(computeDigest(Buffer.from(unsignedText)));
  });

  it('digests bytes that are not JSON as they are', () => {
    const bytes = Buffer.from('not json');
    expect(manifestDigest(bytes)).toBe(computeDigest(bytes));
  });

  it('ignores a "signatures" member in a manifest that declares an OCI media type', () => {
    const bytes = Buffer.from(
      '{"schemaVersion":1,"mediaType":"application/vnd.oci.image.manifest.v1+json","signatures":[{"protected":"e30"}]}',
    );
    expect(manifestDigest(bytes)).toBe(computeDigest(bytes));
  });

  it('refuses signatures that disagree on the format length', () => {
    const formatLength = unsignedText.length - 2;
    const tail = b64url('\n}');
    const bytes = sign(unsignedText, [
      { formatLength, formatTail: tail },
      { formatLength: formatLength - 1, formatTail: tail },
    ]);
    expect(() => manifestDigest(bytes)).toThrow(/conflicting signature format lengths/);
  });

  it('refuses a format length past the end of the manifest', () => {
    const bytes = sign(unsignedText, [{ formatLength: 1e6, formatTail: b64url('\n}') }]);
    expect(() => manifestDigest(bytes)).toThrow(InvalidManifestError);
  });

  it('refuses a protected header without formatTail', () => {
    const bytes = sign(unsignedText, [{ formatLength: 10 }]);
    expect(() => manifestDigest(bytes)).toThrow(/no "formatTail"/);
  });

  it('refuses an empty signatures array', () => {
    const bytes = Buffer.from('{"schemaVersion":1,"signatures":[]}');
    expect(() => manifestDigest(bytes)).toThrow(/has no signatures/);
  });
});

describe('matchesDigest', () => {
  it('accepts the payload digest of a signed schema 1 manifest', () => {
    expect(matchesDigest(fixture('schema1-signed.json'), schema1Digest)).toBe(true);
  });

  it('refuses the digest of the signed bytes themselves', () => {
    const bytes = fixture('schema1-signed.json');
    expect(matchesDigest(bytes, computeDigest(bytes))).toBe(false);
  });

  it('checks with the algorithm of the expected digest', () => {
    const bytes = Buffer.from('{"schemaVersion":2}');
    expect(matchesDigest(bytes, computeDigest(bytes, 'sha512'))).toBe(true);
  });

  it('answers false for a malformed digest', () => {
    expect(matchesDigest(Buffer.from('{}'), 'sha256:abc')).toBe(false);
  });
});
