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

/** One error entry of a registry's JSON error body (`{"errors": [{"code", "message"}]}`). */
export interface RegistryErrorDetail {
  code: string;
  message?: string;
}

/** What a failed registry (or daemon) HTTP request leaves for its error: never a credential or a query string. */
export interface HttpFailure {
  method: string;
  /** The URL without userinfo and without query. */
  url: string;
  status: number;
  /** The error codes from the response body, when it had the registry's error shape. */
  errors?: readonly RegistryErrorDetail[];
}

function describeFailure(failure: HttpFailure): string {
  const codes = (failure.errors ?? [])
    .map((e) => (e.message ? `${e.code}: ${e.message}` : e.code))
    .join('; ');
  return `${failure.method} ${failure.url}: HTTP ${failure.status}${codes ? ` (${codes})` : ''}`;
}

/**
 * A request a server refused or could not answer (go-containerregistry's transport.Error): the
 * method, the redacted URL, the status and the registry's error codes.
 */
export class RegistryError extends ImgError {
  static override readonly code: string = 'IMG_REGISTRY';
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly errors: readonly RegistryErrorDetail[];
  constructor(failure: HttpFailure, message?: string, options?: ErrorOptions) {
    super(message ?? describeFailure(failure), options);
    this.method = failure.method;
    this.url = failure.url;
    this.status = failure.status;
    this.errors = failure.errors ?? [];
  }
}

/**
 * The server rejected the credentials, or asked for some and none were given (HTTP 401, or 403
 * with DENIED). `host` and `repository` say where; the credentials are never part of the message.
 */
export class UnauthorizedError extends RegistryError {
  static override readonly code: string = 'IMG_UNAUTHORIZED';
  constructor(
    readonly host: string,
    readonly repository: string | undefined,
    failure: HttpFailure,
    readonly hadCredentials: boolean,
    options?: ErrorOptions,
  ) {
    const what = repository ? ` for ${repository}` : '';
    super(
      failure,
      hadCredentials
        ? `unauthorized: ${host} rejected the credentials${what} (HTTP ${failure.status})`
        : `unauthorized: ${host} requires authentication${what} (HTTP ${failure.status}); log in with "img login ${host}" or pass --creds`,
      options,
    );
  }
}

/** A registry or daemon is unreachable or refused the TLS handshake; `host` is where. */
export class ConnectionError extends ImgError {
  static override readonly code: string = 'IMG_CONNECTION';
  constructor(
    readonly host: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`cannot reach ${host}: ${reason}`, options);
  }
}
