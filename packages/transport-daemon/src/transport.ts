import { InvalidPolicyError, type Transport } from '@img/core';
import {
  type DockerArchiveReference,
  type DockerDaemonReference,
  parseDockerArchiveReference,
  parseDockerDaemonReference,
} from './reference.js';

/** The `docker-daemon:` transport: images of a Docker engine, through its Engine API. */
export interface DockerDaemonTransport extends Transport {
  readonly name: 'docker-daemon';
  parseReference(reference: string): DockerDaemonReference;
}

/** The `docker-archive:` transport: `docker save` / `docker load` tarballs. */
export interface DockerArchiveTransport extends Transport {
  readonly name: 'docker-archive';
  parseReference(reference: string): DockerArchiveReference;
}

/**
 * The `docker-daemon:` transport (`docker-daemon:name:tag`, `docker-daemon:sha256:<image ID>`).
 * Registered with @img/core when this package is imported.
 *
 * @example
 * const ref = dockerDaemonTransport.parseReference('busybox:latest');
 */
export const dockerDaemonTransport: DockerDaemonTransport = {
  name: 'docker-daemon',
  parseReference: (reference) => parseDockerDaemonReference(reference),
  // As containers/image: image IDs cannot be namespaced, so references have no policy identity.
  validatePolicyConfigurationScope: (scope) => {
    throw new InvalidPolicyError(
      `invalid scope "${scope}" for transport docker-daemon: only the default scope "" is supported`,
    );
  },
  capabilities: { alreadyContainsManifest: true, getBlobPath: true },
};

/**
 * The `docker-archive:` transport (`docker-archive:path[:name:tag]`, `docker-archive:path:@N`).
 * Registered with @img/core when this package is imported.
 *
 * @example
 * const ref = dockerArchiveTransport.parseReference('/tmp/app.tar:app:v1');
 */
export const dockerArchiveTransport: DockerArchiveTransport = {
  name: 'docker-archive',
  parseReference: (reference) => parseDockerArchiveReference(reference),
  validatePolicyConfigurationScope: (scope) => {
    throw new InvalidPolicyError(
      `invalid scope "${scope}" for transport docker-archive: only the default scope "" is supported`,
    );
  },
  capabilities: { alreadyContainsManifest: true },
};
