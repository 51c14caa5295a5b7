import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Crc64 } from './tar-split.js';

/** CRC-64/ISO one byte at a time: the definition the sliced implementation must agree with. */
function reference(bytes: Uint8Array): string {
  let crc = 0xffffffffffffffffn;
  for (const byte of bytes) {
    crc ^= BigInt(byte);
    for (let k = 0; k < 8; k++) crc = crc & 1n ? (crc >> 1n) ^ 0xd800000000000000n : crc >> 1n;
  }
  return (crc ^ 0xffffffffffffffffn).toString(16).padStart(16, '0');
}

describe('Crc64', () => {
  it("gives Go's crc64.ISO check value", () => {
    const crc = new Crc64();
    crc.update(Buffer.from('123456789'));
    expect(crc.digest().toString('hex')).toBe('b90956c775a41001');
  });

  it('agrees with the bitwise definition whatever the chunk sizes', () => {
    const bytes = randomBytes(4099);
    const crc = new Crc64();
    for (let i = 0, n = 1; i < bytes.length; i += n, n = (n * 7) % 61 || 1)
      crc.update(bytes.subarray(i, i + n));
    expect(crc.digest().toString('hex')).toBe(reference(bytes));
  });

  it('agrees with the definition at every alignment of the bytes in memory', () => {
    const bytes = randomBytes(1030);
    for (const offset of [0, 1, 2, 3, 5]) {
      const view = bytes.subarray(offset, offset + 1021);
      const crc = new Crc64();
      crc.update(view);
      expect(crc.digest().toString('hex')).toBe(reference(view));
    }
  });
});
