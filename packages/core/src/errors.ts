const brand = Symbol.for('img.error');

/**
 * The base of every error img raises. Instances are branded so that `instanceof` works across two
 * copies of @img/core (a plugin may load its own): a branded object matches a class when the class's
 * `code` is on the object's constructor chain.
 */
export class ImgError extends Error {
  static readonly code: string = 'IMG_ERROR';
  readonly code: string;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    const ctor = new.target as unknown as { code: string; name: string };
    this.code = ctor.code;
    this.name = ctor.name;
    Object.defineProperty(this, brand, { value: true });
  }

  static [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null || !(brand in value)) return false;
    // `this` is the class on the right of `instanceof`, which is the point: each subclass matches its own code.
    // biome-ignore lint/complexity/noThisInStatic: the receiver is the subclass being tested against
    const wanted = (this as unknown as { code: string }).code;
    if (wanted === ImgError.code) return true;
    for (
      let c = (value as object).constructor as unknown;
      typeof c === 'function';
      c = Object.getPrototypeOf(c)
    ) {
      if ((c as { code?: unknown }).code === wanted) return true;
    }
    return false;
  }
}

/** A reference string that does not follow its transport's syntax. */
export class InvalidReferenceError extends ImgError {
  static override readonly code = 'IMG_INVALID_REFERENCE';
  constructor(
    readonly reference: string,
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`invalid reference "${reference}": ${reason}`, options);
  }
}

/** An image name whose transport prefix is not registered. */
export class UnknownTransportError extends ImgError {
  static override readonly code = 'IMG_UNKNOWN_TRANSPORT';
  constructor(
    readonly transportName: string,
    readonly input: string,
    readonly known: readonly string[],
  ) {
    super(
      transportName === ''
        ? `invalid image name "${input}": expected "transport:reference" (known transports: ${known.join(', ')})`
        : `unknown transport "${transportName}" in "${input}" (known: ${known.join(', ')})`,
    );
  }
}

/** A different transport object is already registered under this name. */
export class TransportConflictError extends ImgError {
  static override readonly code = 'IMG_TRANSPORT_CONFLICT';
  constructor(readonly transportName: string) {
    super(`transport "${transportName}" is already registered`);
  }
}

/** The image (or one instance of it) does not exist at the reference. */
export class ManifestUnknownError extends ImgError {
  static override readonly code = 'IMG_MANIFEST_UNKNOWN';
  constructor(
    readonly reference: string,
    options?: ErrorOptions,
  ) {
    super(`manifest unknown: ${reference}`, options);
  }
}

/** A blob the manifest names is missing from the source. */
export class BlobUnknownError extends ImgError {
  static override readonly code = 'IMG_BLOB_UNKNOWN';
  constructor(
    readonly digest: string,
    readonly where: string,
    options?: ErrorOptions,
  ) {
    super(`blob unknown: ${digest} in ${where}`, options);
  }
}

/** Bytes whose digest is not the one they were asked for under. */
export class DigestMismatchError extends ImgError {
  static override readonly code = 'IMG_DIGEST_MISMATCH';
  constructor(
    readonly expected: string,
    readonly actual: string,
    readonly what = 'blob',
  ) {
    super(`digest mismatch for ${what} ${expected}: got ${actual}`);
  }
}

/** Bytes whose length is not the size the descriptor declares. */
export class SizeMismatchError extends ImgError {
  static override readonly code = 'IMG_SIZE_MISMATCH';
  constructor(
    readonly digest: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`size mismatch for blob ${digest}: expected ${expected} bytes, got ${actual}`);
  }
}

/** A digest string that is not `algorithm:hex` with a supported algorithm. */
export class InvalidDigestError extends ImgError {
  static override readonly code = 'IMG_INVALID_DIGEST';
  constructor(
    readonly digest: string,
    readonly reason: string,
  ) {
    super(`invalid digest "${digest}": ${reason}`);
  }
}

/** A manifest that cannot be parsed or does not follow its schema. */
export class InvalidManifestError extends ImgError {
  static override readonly code = 'IMG_INVALID_MANIFEST';
  constructor(
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`invalid manifest: ${reason}`, options);
  }
}

/** A manifest, config or other buffered document over its size cap. */
export class TooLargeError extends ImgError {
  static override readonly code = 'IMG_TOO_LARGE';
  constructor(
    readonly what: string,
    readonly limit: number,
  ) {
    super(`${what} is larger than the ${limit}-byte limit`);
  }
}

/** A media type img does not know how to handle. */
export class UnsupportedMediaTypeError extends ImgError {
  static override readonly code = 'IMG_UNSUPPORTED_MEDIA_TYPE';
  constructor(
    readonly mediaType: string,
    readonly what = 'manifest',
  ) {
    super(`unsupported ${what} media type "${mediaType}"`);
  }
}

/**
 * A destination refuses this manifest type, but another may be accepted: the copy engine then tries
 * the next candidate format.
 */
export class ManifestTypeRejectedError extends ImgError {
  static override readonly code = 'IMG_MANIFEST_TYPE_REJECTED';
  constructor(
    readonly mediaType: string,
    readonly destination: string,
  ) {
    super(`manifest type "${mediaType}" is not accepted by ${destination}`);
  }
}

/** A requested conversion or edit that cannot be done (e.g. it would invalidate signatures). */
export class ManifestConversionError extends ImgError {
  static override readonly code = 'IMG_MANIFEST_CONVERSION';
}

/** The signature policy refuses the image. */
export class PolicyRejectedError extends ImgError {
  static override readonly code = 'IMG_POLICY_REJECTED';
}

/** The policy file is missing, unreadable, or does not follow policy.json's format. */
export class InvalidPolicyError extends ImgError {
  static override readonly code = 'IMG_INVALID_POLICY';
}

/** A capability this transport or this version of img does not have. */
export class NotSupportedError extends ImgError {
  static override readonly code = 'IMG_NOT_SUPPORTED';
}

/** A path given as an image store that is something else (a file where a directory belongs, …). */
export class InvalidLayoutError extends ImgError {
  static override readonly code = 'IMG_INVALID_LAYOUT';
}

/** No instance of a manifest list matches the wanted platform. */
export class NoMatchingPlatformError extends ImgError {
  static override readonly code = 'IMG_NO_MATCHING_PLATFORM';
}

/** The operation was aborted through its AbortSignal. */
export class AbortedError extends ImgError {
  static override readonly code = 'IMG_ABORTED';
  constructor(options?: ErrorOptions) {
    super('operation aborted', options);
  }
}
