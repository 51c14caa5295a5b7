import type { PolicyChecker } from '../copy/copy.js';
import { NotSupportedError, PolicyRejectedError } from '../errors.js';
import type { ImageReference, ImageSource, RawManifest } from '../types.js';
import type { Policy, PolicyRequirement } from './policy.js';

/**
 * Evaluates a policy for images about to be used (containers/image's PolicyContext). The policy
 * MUST NOT be changed while a context uses it.
 *
 * @example
 * const context = new PolicyContext(await loadPolicy());
 * await context.isRunningImageAllowed(source, await source.getManifest());
 */
export class PolicyContext implements PolicyChecker {
  /** The policy this context evaluates. */
  readonly policy: Policy;

  constructor(policy: Policy) {
    this.policy = policy;
  }

  /**
   * The requirements that apply to `ref`: those of the most specific scope of its transport that the
   * policy lists (the reference's identity, then each of its namespaces, most specific first, then the
   * transport default `""`), else the global default. Only that one list applies.
   */
  requirementsFor(ref: ImageReference): readonly PolicyRequirement[] {
    const scopes = this.policy.transports.get(ref.transport.name);
    if (scopes) {
      for (const scope of [ref.policyConfigurationIdentity(), ...ref.policyConfigurationNamespaces(), '']) {
        const requirements = scopes.get(scope);
        if (requirements) return requirements;
      }
    }
    return this.policy.default;
  }

  /**
   * Resolves when every requirement selected for `source.reference` accepts the image. Throws
   * PolicyRejectedError at the first requirement that rejects it, and NotSupportedError at the first
   * that needs signature verification, which this version does not do.
   */
  async isRunningImageAllowed(source: ImageSource, _manifest: RawManifest): Promise<void> {
    const ref = source.reference;
    const requirements = this.requirementsFor(ref);
    // Only a policy built in code can have an empty list (parsePolicy refuses one); it must not mean "accept".
    if (requirements.length === 0) {
      throw new PolicyRejectedError(
        `running image ${ref.toString()} is rejected by policy: no requirements apply`,
      );
    }
    for (const requirement of requirements) {
      switch (requirement.type) {
        case 'insecureAcceptAnything':
          break;
        case 'reject':
          throw new PolicyRejectedError(`running image ${ref.toString()} is rejected by policy`);
        case 'signedBy':
        case 'sigstoreSigned':
        case 'signedBaseLayer':
          throw new NotSupportedError(
            `signature verification ("${requirement.type}") is not supported yet: image "${ref.toString()}" requires it by policy`,
          );
        default:
          // A requirement type from a newer policy model than this switch knows must not pass.
          throw new PolicyRejectedError(
            `running image ${ref.toString()} is rejected by policy: unknown requirement type "${(requirement as { type: string }).type}"`,
          );
      }
    }
  }
}
