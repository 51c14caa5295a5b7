// STUB: policy.json parsing and evaluation.
export {};
