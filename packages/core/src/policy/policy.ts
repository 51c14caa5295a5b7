/**
 * A signature verification policy, as containers-policy.json(5) describes it: a global default and,
 * per transport, requirements for scopes. The most specific matching entry applies alone.
 */
export interface Policy {
  /** What applies when no transport scope matches; never empty in a parsed policy. */
  readonly default: readonly PolicyRequirement[];
  /**
   * Transport name → scope → requirements. The scope `""` is the transport's default; other scopes
   * are defined by each transport (an image identity or one of its namespaces).
   */
  readonly transports: ReadonlyMap<string, ReadonlyMap<string, readonly PolicyRequirement[]>>;
}

/** One rule of a policy; an image is accepted only when every requirement in the selected list accepts it. */
export type PolicyRequirement =
  | InsecureAcceptAnythingRequirement
  | RejectRequirement
  | SignedByRequirement
  | SigstoreSignedRequirement
  | SignedBaseLayerRequirement;

/** Accepts any image (other requirements of the same list still apply). */
export interface InsecureAcceptAnythingRequirement {
  readonly type: 'insecureAcceptAnything';
}

/** Rejects every image and every signature. */
export interface RejectRequirement {
  readonly type: 'reject';
}

/** The kinds of keys a `signedBy` requirement may name. */
export type SignedByKeyType = 'GPGKeys' | 'signedByGPGKeys' | 'X509Certificates' | 'signedByX509CAs';

/**
 * Requires a "simple signing" signature by one of the given keys, claiming an accepted identity.
 * Exactly one of `keyPath`, `keyPaths` and `keyData` is set.
 */
export interface SignedByRequirement {
  readonly type: 'signedBy';
  readonly keyType: SignedByKeyType;
  /** A keyring file. */
  readonly keyPath?: string;
  /** Several keyring files. */
  readonly keyPaths?: readonly string[];
  /** The keyring itself (base64 in the file, decoded here). */
  readonly keyData?: Uint8Array;
  /** Which identities a signature may claim; `matchRepoDigestOrExact` when the file omits it. */
  readonly signedIdentity: PolicyReferenceMatch;
}

/** Where a `sigstoreSigned` requirement finds Fulcio-issued certificates' trust root and expected subject. */
export interface SigstoreFulcio {
  /** The CA certificates file; exactly one of `caPath` and `caData` is set. */
  readonly caPath?: string;
  /** The CA certificates (base64 in the file, decoded here). */
  readonly caData?: Uint8Array;
  readonly oidcIssuer: string;
  readonly subjectEmail: string;
}

/** The private PKI a `sigstoreSigned` requirement trusts, and the subject it expects. */
export interface SigstorePKI {
  /** Exactly one of `caRootsPath` and `caRootsData` is set. */
  readonly caRootsPath?: string;
  readonly caRootsData?: Uint8Array;
  /** At most one of `caIntermediatesPath` and `caIntermediatesData` is set. */
  readonly caIntermediatesPath?: string;
  readonly caIntermediatesData?: Uint8Array;
  /** At least one of `subjectEmail` and `subjectHostname` is set. */
  readonly subjectEmail?: string;
  readonly subjectHostname?: string;
}

/**
 * Requires a sigstore signature made by one of the given keys (or a Fulcio or PKI certificate),
 * claiming an accepted identity. Exactly one key source is set; at most one Rekor key source, and one
 * is required with `fulcio`.
 */
export interface SigstoreSignedRequirement {
  readonly type: 'sigstoreSigned';
  readonly keyPath?: string;
  readonly keyPaths?: readonly string[];
  readonly keyData?: Uint8Array;
  readonly keyDatas?: readonly Uint8Array[];
  readonly fulcio?: SigstoreFulcio;
  readonly pki?: SigstorePKI;
  readonly rekorPublicKeyPath?: string;
  readonly rekorPublicKeyPaths?: readonly string[];
  readonly rekorPublicKeyData?: Uint8Array;
  readonly rekorPublicKeyDatas?: readonly Uint8Array[];
  /** Which identities a signature may claim; `matchRepoDigestOrExact` when the file omits it. */
  readonly signedIdentity: PolicyReferenceMatch;
}

/** Requires the base layer to be signed with the given identity (reserved by containers/image, never satisfied). */
export interface SignedBaseLayerRequirement {
  readonly type: 'signedBaseLayer';
  readonly baseLayerIdentity: PolicyReferenceMatch;
}

/** Which image identities a signature may claim, relative to the image's own identity or a fixed one. */
export type PolicyReferenceMatch =
  | { readonly type: 'matchExact' }
  | { readonly type: 'matchRepoDigestOrExact' }
  | { readonly type: 'matchRepository' }
  | { readonly type: 'exactReference'; readonly dockerReference: string }
  | { readonly type: 'exactRepository'; readonly dockerRepository: string }
  | { readonly type: 'remapIdentity'; readonly prefix: string; readonly signedPrefix: string };

/**
 * The policy `--insecure-policy` stands for: every image is accepted, whatever its signatures.
 */
export const insecureAcceptAnythingPolicy: Policy = Object.freeze({
  default: Object.freeze([Object.freeze({ type: 'insecureAcceptAnything' as const })]),
  transports: new Map(),
});
