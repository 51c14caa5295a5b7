import { describe, expect, it } from 'vitest';
import { DigestMismatchError, ImgError, ManifestUnknownError, NotSupportedError } from './errors.js';

/** Builds the same classes as a second copy of @img/core would: other constructors, same codes, same brand. */
function secondCopy() {
  const brand = Symbol.for('img.error');
  class OtherImgError extends Error {
    static readonly code: string = 'IMG_ERROR';
    readonly code: string;
    constructor(message: string) {
      super(message);
      this.code = (new.target as unknown as { code: string }).code;
      Object.defineProperty(this, brand, { value: true });
    }
  }
  class OtherDigestMismatchError extends OtherImgError {
    static override readonly code = 'IMG_DIGEST_MISMATCH';
  }
  return { OtherDigestMismatchError };
}

describe('ImgError', () => {
  it('takes its code and name from the class', () => {
    const e = new ManifestUnknownError('dir:/x');
    expect(e.code).toBe('IMG_MANIFEST_UNKNOWN');
    expect(e.name).toBe('ManifestUnknownError');
    expect(e.message).toBe('manifest unknown: dir:/x');
  });

  it('matches instanceof for its own class and its parents only', () => {
    const e = new DigestMismatchError('sha256:a', 'sha256:b');
    expect(e instanceof DigestMismatchError).toBe(true);
    expect(e instanceof ImgError).toBe(true);
    expect(e instanceof ManifestUnknownError).toBe(false);
    expect(new NotSupportedError('x') instanceof DigestMismatchError).toBe(false);
  });

  it('matches errors made by another copy of the package by brand and code', () => {
    const { OtherDigestMismatchError } = secondCopy();
    const foreign = new OtherDigestMismatchError('digest mismatch');
    expect(foreign instanceof DigestMismatchError).toBe(true);
    expect(foreign instanceof ImgError).toBe(true);
    expect(foreign instanceof ManifestUnknownError).toBe(false);
  });

  it('refuses plain errors and unbranded look-alikes', () => {
    expect(new Error('x') instanceof ImgError).toBe(false);
    expect({ code: 'IMG_DIGEST_MISMATCH' } instanceof DigestMismatchError).toBe(false);
  });
});
