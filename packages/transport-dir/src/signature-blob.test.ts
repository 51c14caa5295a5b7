import { InvalidLayoutError, type Signature } from '@img/core';
import { describe, expect, it } from 'vitest';
import { signatureFromBlob, signatureToBlob } from './signature-blob.js';

// An OpenPGP message as gpg writes it starts with a compressed data packet (0xa3 in the old format).
const simple: Signature = {
  format: 'simple-signing',
  bytes: Uint8Array.from([0xa3, 0x01, 0x9b, 0xc0, 0xcb, 0xcc]),
};

const sigstore: Signature = {
  format: 'sigstore',
  bytes: new TextEncoder().encode('{"critical":{"type":"cosign container image signature"}}'),
  mimeType: 'application/vnd.dev.cosign.simplesigning.v1+json',
  annotations: { 'dev.sigstore.cosign/bundle': '<b&>', 'dev.cosignproject.cosign/signature': 'MEUCIQ==' },
};

describe('signatureToBlob', () => {
  it('stores a simple signing signature raw, as older readers expect', () => {
    expect(signatureToBlob(simple)).toEqual(simple.bytes);
  });

  it('stores a sigstore signature as a zero byte, "sigstore-json", a newline and Go-encoded JSON', () => {
    const blob = Buffer.from(signatureToBlob(sigstore));
    const payload = Buffer.from(sigstore.bytes).toString('base64');
    expect(blob.toString('latin1')).toBe(
      '\0sigstore-json\n' +
        '{"mimeType":"application/vnd.dev.cosign.simplesigning.v1+json",' +
        `"payload":"${payload}",` +
        '"annotations":{"dev.cosignproject.cosign/signature":"MEUCIQ==","dev.sigstore.cosign/bundle":"\\u003cb\\u0026\\u003e"}}',
    );
  });

  it('writes null annotations for a sigstore signature without any, as Go does for a nil map', () => {
    const blob = Buffer.from(
      signatureToBlob({ format: 'sigstore', bytes: new Uint8Array([1]), mimeType: 'x' }),
    );
    expect(blob.toString('latin1')).toBe(
      '\0sigstore-json\n{"mimeType":"x","payload":"AQ==","annotations":null}',
    );
  });

  it('marks simple signing bytes that do not look like OpenPGP with the explicit format, so they read back', () => {
    const odd: Signature = { format: 'simple-signing', bytes: new TextEncoder().encode('-----BEGIN PGP') };
    const blob = Buffer.from(signatureToBlob(odd));
    expect(blob.subarray(0, 16).toString('latin1')).toBe('\0simple-signing\n');
    expect(signatureFromBlob(blob, 'sig')).toEqual(odd);
  });
});

describe('signatureFromBlob', () => {
  it('reads a raw OpenPGP message as simple signing', () => {
    expect(signatureFromBlob(simple.bytes, 'signature-1')).toEqual(simple);
  });

  it('reads the explicit simple-signing form', () => {
    const blob = Buffer.concat([Buffer.from('\0simple-signing\n'), simple.bytes]);
    expect(signatureFromBlob(blob, 'signature-1')).toEqual(simple);
  });

  it('reads back what it writes for sigstore', () => {
    expect(signatureFromBlob(signatureToBlob(sigstore), 'signature-1')).toEqual(sigstore);
  });

  it.each([
    ['an empty file', new Uint8Array(), 'the file is empty'],
    [
      'an unknown first byte',
      new TextEncoder().encode('hello'),
      'unrecognized format, starting with byte 0x68',
    ],
    [
      'no newline after the format',
      new TextEncoder().encode('\0sigstore-json'),
      'no newline after the format name',
    ],
    ['an unknown format name', new TextEncoder().encode('\0x509\n...'), 'unrecognized format "x509"'],
    ['bad sigstore JSON', new TextEncoder().encode('\0sigstore-json\n{'), 'sigstore JSON does not parse'],
  ])('refuses %s with InvalidLayoutError naming the file', (_what, blob, why) => {
    expect(() => signatureFromBlob(blob, '/d/signature-3')).toThrow(InvalidLayoutError);
    expect(() => signatureFromBlob(blob, '/d/signature-3')).toThrow(
      `invalid signature "/d/signature-3": ${why}`,
    );
  });
});
