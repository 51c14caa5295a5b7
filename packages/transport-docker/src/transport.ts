import type { Transport } from '@img/core';
import { type DockerReference, parseDockerReference } from './reference.js';

/** The `docker:` transport: images in container registries (`docker://host/repo:tag`). */
export interface DockerTransport extends Transport {
  readonly name: 'docker';
  parseReference(reference: string): DockerReference;
}

/**
 * The `docker:` transport. Registered with @img/core when this package is imported.
 *
 * @example
 * const ref = dockerTransport.parseReference('//127.0.0.1:5000/app:v1');
 */
export const dockerTransport: DockerTransport = {
  name: 'docker',
  parseReference: (reference) => parseDockerReference(reference),
  // containers/image accepts any scope here: a docker scope is a name, a namespace or a
  // `*.domain` wildcard, and a scope that matches nothing is harmless.
  validatePolicyConfigurationScope: () => {},
  capabilities: {
    source: true,
    destination: true,
    deleteImage: true,
    signatures: true,
    alreadyContainsManifest: true,
    supportsOutOfOrderPuts: true,
  },
};
