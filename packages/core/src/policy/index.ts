export { PolicyContext } from './context.js';
export type { LoadPolicyOptions } from './load.js';
export { loadPolicy } from './load.js';
export { parsePolicy } from './parse.js';
export type {
  InsecureAcceptAnythingRequirement,
  Policy,
  PolicyReferenceMatch,
  PolicyRequirement,
  RejectRequirement,
  SignedBaseLayerRequirement,
  SignedByKeyType,
  SignedByRequirement,
  SigstoreFulcio,
  SigstorePKI,
  SigstoreSignedRequirement,
} from './policy.js';
export { insecureAcceptAnythingPolicy } from './policy.js';
