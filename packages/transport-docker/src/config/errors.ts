import { ImgError } from '@img/core';

/**
 * A configuration file (auth.json, registries.conf, a certs.d directory) that cannot be used. The
 * message names the file and what is wrong, never the file's content: it may hold credentials.
 */
export class InvalidConfigError extends ImgError {
  static override readonly code: string = 'IMG_INVALID_CONFIG';
  constructor(
    readonly path: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`invalid configuration "${path}": ${reason}`, options);
  }
}

/** A docker-credential-<name> helper that could not be run or failed; its output is never quoted. */
export class CredentialHelperError extends ImgError {
  static override readonly code: string = 'IMG_CREDENTIAL_HELPER';
  constructor(
    readonly helper: string,
    readonly operation: 'get' | 'store' | 'erase' | 'list',
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`credential helper docker-credential-${helper} ${operation} failed: ${reason}`, options);
  }
}

/** logout (or login --get-login) for a registry with no stored credentials. */
export class NotLoggedInError extends ImgError {
  static override readonly code: string = 'IMG_NOT_LOGGED_IN';
  constructor(readonly key: string) {
    super(`not logged into ${key}`);
  }
}
