import { InvalidPolicyError } from '../errors.js';
import { isNameOnly, parseNormalizedNamed } from '../reference/docker-reference.js';
import { transports as registeredTransports } from '../transports.js';
import type {
  Policy,
  PolicyReferenceMatch,
  PolicyRequirement,
  SignedByKeyType,
  SignedByRequirement,
  SigstoreFulcio,
  SigstorePKI,
  SigstoreSignedRequirement,
} from './policy.js';
import { findDuplicateKey, formatJsonPath, type JsonPathSegment } from './strict-json.js';

type Path = readonly JsonPathSegment[];
type JsonObject = Record<string, unknown>;

const signedByKeyTypes: readonly SignedByKeyType[] = [
  'GPGKeys',
  'signedByGPGKeys',
  'X509Certificates',
  'signedByX509CAs',
];

const requirementTypes: readonly PolicyRequirement['type'][] = [
  'insecureAcceptAnything',
  'reject',
  'signedBy',
  'sigstoreSigned',
  'signedBaseLayer',
];

const referenceMatchTypes: readonly PolicyReferenceMatch['type'][] = [
  'matchExact',
  'matchRepoDigestOrExact',
  'matchRepository',
  'exactReference',
  'exactRepository',
  'remapIdentity',
];

// A registry host with an optional port, as the docker reference grammar (distribution/reference,
// "domain") defines it: dot-separated labels or a bracketed IPv6 address.
const domainLabel = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domain = `(?:${domainLabel}(?:\\.${domainLabel})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const domainOnly = new RegExp(`^${domain}$`);
const domainThenPath = new RegExp(`^${domain}/`);

/**
 * Parses a containers-policy.json(5) document strictly: unknown, duplicated, missing or mistyped
 * fields, unknown requirement types and empty requirement lists are refused, because a typo in a
 * security policy must not silently widen it. Scopes of registered transports are checked by the
 * transport; scopes of transports not registered (yet: a plugin may add one later) are kept as they are.
 * Throws InvalidPolicyError naming `source` (a path, for messages) and the offending location.
 *
 * @example
 * const policy = parsePolicy('{"default": [{"type": "reject"}]}', '/etc/containers/policy.json');
 */
export function parsePolicy(text: string | Uint8Array, source?: string): Policy {
  return new PolicyParser(source).parse(text);
}

class PolicyParser {
  readonly #source: string | undefined;

  constructor(source: string | undefined) {
    this.#source = source;
  }

  parse(input: string | Uint8Array): Policy {
    let text: string;
    if (typeof input === 'string') {
      text = input;
    } else {
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(input);
      } catch (err) {
        this.fail([], 'not valid UTF-8', err);
      }
    }
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch (err) {
      this.fail([], `not valid JSON: ${(err as Error).message}`, err);
    }
    const duplicate = findDuplicateKey(text);
    if (duplicate) this.fail(duplicate.path, `duplicate key ${JSON.stringify(duplicate.key)}`);

    const top = this.object(document, []);
    this.checkKeys(top, [], ['default', 'transports'], ['default']);
    const policyDefault = this.requirements(top.default, ['default']);
    const transports = new Map<string, ReadonlyMap<string, readonly PolicyRequirement[]>>();
    if (has(top, 'transports')) {
      const byTransport = this.object(top.transports, ['transports']);
      for (const [transportName, value] of Object.entries(byTransport)) {
        transports.set(transportName, this.scopes(transportName, value, ['transports', transportName]));
      }
    }
    return { default: policyDefault, transports };
  }

  scopes(transportName: string, value: unknown, path: Path): Map<string, readonly PolicyRequirement[]> {
    const byScope = this.object(value, path);
    const transport = registeredTransports.get(transportName);
    const scopes = new Map<string, readonly PolicyRequirement[]>();
    for (const [scope, requirements] of Object.entries(byScope)) {
      // The empty scope is the transport default and is valid for every transport.
      if (scope !== '' && transport) {
        try {
          transport.validatePolicyConfigurationScope(scope);
        } catch (err) {
          this.fail([...path, scope], `invalid scope for transport "${transportName}": ${message(err)}`, err);
        }
      }
      scopes.set(scope, this.requirements(requirements, [...path, scope]));
    }
    return scopes;
  }

  requirements(value: unknown, path: Path): PolicyRequirement[] {
    if (!Array.isArray(value)) this.fail(path, `expected an array of requirements, got ${typeName(value)}`);
    // An empty list states no rule at all, which containers/image refuses rather than guess a meaning.
    if (value.length === 0) this.fail(path, 'a list of requirements must not be empty');
    return value.map((item, index) => this.requirement(item, [...path, index]));
  }

  requirement(value: unknown, path: Path): PolicyRequirement {
    const obj = this.object(value, path);
    const type = this.typeField(obj, path, requirementTypes, 'requirement type');
    switch (type) {
      case 'insecureAcceptAnything':
      case 'reject':
        this.checkKeys(obj, path, ['type'], ['type']);
        return { type };
      case 'signedBy':
        return this.signedBy(obj, path);
      case 'sigstoreSigned':
        return this.sigstoreSigned(obj, path);
      case 'signedBaseLayer':
        this.checkKeys(obj, path, ['type', 'baseLayerIdentity'], ['type', 'baseLayerIdentity']);
        return {
          type,
          baseLayerIdentity: this.referenceMatch(obj.baseLayerIdentity, [...path, 'baseLayerIdentity']),
        };
    }
  }

  signedBy(obj: JsonObject, path: Path): SignedByRequirement {
    this.checkKeys(
      obj,
      path,
      ['type', 'keyType', 'keyPath', 'keyPaths', 'keyData', 'signedIdentity'],
      ['type', 'keyType'],
    );
    const keyType = this.string(obj, 'keyType', path);
    if (!(signedByKeyTypes as readonly string[]).includes(keyType)) {
      this.fail(
        [...path, 'keyType'],
        `unknown key type ${JSON.stringify(keyType)} (known: ${signedByKeyTypes.join(', ')})`,
      );
    }
    this.exactlyOne(obj, path, ['keyPath', 'keyPaths', 'keyData']);
    return {
      type: 'signedBy',
      keyType: keyType as SignedByKeyType,
      ...(has(obj, 'keyPath') && { keyPath: this.string(obj, 'keyPath', path) }),
      // containers/image accepts an empty keyPaths here (it then accepts no signature), so do we.
      ...(has(obj, 'keyPaths') && { keyPaths: this.stringArray(obj, 'keyPaths', path, true) }),
      ...(has(obj, 'keyData') && { keyData: this.bytes(obj, 'keyData', path) }),
      signedIdentity: this.signedIdentity(obj, path),
    };
  }

  sigstoreSigned(obj: JsonObject, path: Path): SigstoreSignedRequirement {
    const keySources = ['keyPath', 'keyPaths', 'keyData', 'keyDatas', 'fulcio', 'pki'];
    const rekorSources = [
      'rekorPublicKeyPath',
      'rekorPublicKeyPaths',
      'rekorPublicKeyData',
      'rekorPublicKeyDatas',
    ];
    this.checkKeys(obj, path, ['type', ...keySources, ...rekorSources, 'signedIdentity'], ['type']);
    this.exactlyOne(obj, path, keySources);
    const rekorGiven = rekorSources.filter((key) => has(obj, key));
    if (rekorGiven.length > 1) {
      this.fail(
        path,
        `at most one of ${listOf(rekorSources, 'and')} may be set, found ${listOf(rekorGiven, 'and')}`,
      );
    }
    if (has(obj, 'fulcio') && rekorGiven.length === 0) {
      this.fail(path, `one of ${listOf(rekorSources, 'or')} must be set with fulcio`);
    }
    return {
      type: 'sigstoreSigned',
      ...(has(obj, 'keyPath') && { keyPath: this.string(obj, 'keyPath', path) }),
      ...(has(obj, 'keyPaths') && { keyPaths: this.stringArray(obj, 'keyPaths', path) }),
      ...(has(obj, 'keyData') && { keyData: this.bytes(obj, 'keyData', path) }),
      ...(has(obj, 'keyDatas') && { keyDatas: this.bytesArray(obj, 'keyDatas', path) }),
      ...(has(obj, 'fulcio') && { fulcio: this.fulcio(obj.fulcio, [...path, 'fulcio']) }),
      ...(has(obj, 'pki') && { pki: this.pki(obj.pki, [...path, 'pki']) }),
      ...(has(obj, 'rekorPublicKeyPath') && {
        rekorPublicKeyPath: this.string(obj, 'rekorPublicKeyPath', path),
      }),
      ...(has(obj, 'rekorPublicKeyPaths') && {
        rekorPublicKeyPaths: this.stringArray(obj, 'rekorPublicKeyPaths', path),
      }),
      ...(has(obj, 'rekorPublicKeyData') && {
        rekorPublicKeyData: this.bytes(obj, 'rekorPublicKeyData', path),
      }),
      ...(has(obj, 'rekorPublicKeyDatas') && {
        rekorPublicKeyDatas: this.bytesArray(obj, 'rekorPublicKeyDatas', path),
      }),
      signedIdentity: this.signedIdentity(obj, path),
    };
  }

  fulcio(value: unknown, path: Path): SigstoreFulcio {
    const obj = this.object(value, path);
    this.checkKeys(
      obj,
      path,
      ['caPath', 'caData', 'oidcIssuer', 'subjectEmail'],
      ['oidcIssuer', 'subjectEmail'],
    );
    this.exactlyOne(obj, path, ['caPath', 'caData']);
    return {
      ...(has(obj, 'caPath') && { caPath: this.string(obj, 'caPath', path) }),
      ...(has(obj, 'caData') && { caData: this.bytes(obj, 'caData', path) }),
      oidcIssuer: this.string(obj, 'oidcIssuer', path),
      subjectEmail: this.string(obj, 'subjectEmail', path),
    };
  }

  pki(value: unknown, path: Path): SigstorePKI {
    const obj = this.object(value, path);
    this.checkKeys(
      obj,
      path,
      [
        'caRootsPath',
        'caRootsData',
        'caIntermediatesPath',
        'caIntermediatesData',
        'subjectEmail',
        'subjectHostname',
      ],
      [],
    );
    this.exactlyOne(obj, path, ['caRootsPath', 'caRootsData']);
    if (has(obj, 'caIntermediatesPath') && has(obj, 'caIntermediatesData')) {
      this.fail(path, 'at most one of caIntermediatesPath and caIntermediatesData may be set, found both');
    }
    if (!has(obj, 'subjectEmail') && !has(obj, 'subjectHostname')) {
      this.fail(path, 'one of subjectEmail or subjectHostname must be set');
    }
    return {
      ...(has(obj, 'caRootsPath') && { caRootsPath: this.string(obj, 'caRootsPath', path) }),
      ...(has(obj, 'caRootsData') && { caRootsData: this.bytes(obj, 'caRootsData', path) }),
      ...(has(obj, 'caIntermediatesPath') && {
        caIntermediatesPath: this.string(obj, 'caIntermediatesPath', path),
      }),
      ...(has(obj, 'caIntermediatesData') && {
        caIntermediatesData: this.bytes(obj, 'caIntermediatesData', path),
      }),
      ...(has(obj, 'subjectEmail') && { subjectEmail: this.string(obj, 'subjectEmail', path) }),
      ...(has(obj, 'subjectHostname') && { subjectHostname: this.string(obj, 'subjectHostname', path) }),
    };
  }

  signedIdentity(obj: JsonObject, path: Path): PolicyReferenceMatch {
    // containers-policy.json(5), "signedBy": a missing signedIdentity means matchRepoDigestOrExact.
    if (!has(obj, 'signedIdentity')) return { type: 'matchRepoDigestOrExact' };
    return this.referenceMatch(obj.signedIdentity, [...path, 'signedIdentity']);
  }

  referenceMatch(value: unknown, path: Path): PolicyReferenceMatch {
    const obj = this.object(value, path);
    const type = this.typeField(obj, path, referenceMatchTypes, 'identity match type');
    switch (type) {
      case 'matchExact':
      case 'matchRepoDigestOrExact':
      case 'matchRepository':
        this.checkKeys(obj, path, ['type'], ['type']);
        return { type };
      case 'exactReference': {
        this.checkKeys(obj, path, ['type', 'dockerReference'], ['type', 'dockerReference']);
        const dockerReference = this.string(obj, 'dockerReference', path);
        const named = this.dockerName(dockerReference, [...path, 'dockerReference']);
        if (isNameOnly(named)) {
          this.fail([...path, 'dockerReference'], `"${dockerReference}" has neither a tag nor a digest`);
        }
        return { type, dockerReference };
      }
      case 'exactRepository': {
        this.checkKeys(obj, path, ['type', 'dockerRepository'], ['type', 'dockerRepository']);
        const dockerRepository = this.string(obj, 'dockerRepository', path);
        this.dockerName(dockerRepository, [...path, 'dockerRepository']);
        return { type, dockerRepository };
      }
      case 'remapIdentity': {
        this.checkKeys(obj, path, ['type', 'prefix', 'signedPrefix'], ['type', 'prefix', 'signedPrefix']);
        const prefix = this.remapPrefix(obj, 'prefix', path);
        const signedPrefix = this.remapPrefix(obj, 'signedPrefix', path);
        return { type, prefix, signedPrefix };
      }
    }
  }

  /**
   * A remapIdentity prefix is a registry host[:port], or a repository or namespace in the fully
   * expanded form (host first), without tag or digest (containers-policy.json(5), "Prefix remapping").
   */
  remapPrefix(obj: JsonObject, key: string, path: Path): string {
    const value = this.string(obj, key, path);
    if (domainOnly.test(value)) return value;
    if (domainThenPath.test(value)) {
      try {
        const named = parseNormalizedNamed(value);
        if (isNameOnly(named)) return value;
      } catch {
        // Reported below with the rule the value breaks.
      }
    }
    this.fail(
      [...path, key],
      `prefix ${JSON.stringify(value)} is not a host[:port] nor a repository or namespace with its host`,
    );
  }

  dockerName(text: string, path: Path): ReturnType<typeof parseNormalizedNamed> {
    try {
      return parseNormalizedNamed(text);
    } catch (err) {
      this.fail(path, message(err), err);
    }
  }

  typeField<T extends string>(obj: JsonObject, path: Path, known: readonly T[], what: string): T {
    if (!has(obj, 'type')) this.fail(path, 'missing key "type"');
    const type = this.string(obj, 'type', path);
    if (!(known as readonly string[]).includes(type)) {
      this.fail([...path, 'type'], `unknown ${what} ${JSON.stringify(type)} (known: ${known.join(', ')})`);
    }
    return type as T;
  }

  /** Refuses keys outside `allowed` first (a typo is the likeliest mistake), then missing `required` ones. */
  checkKeys(obj: JsonObject, path: Path, allowed: readonly string[], required: readonly string[]): void {
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) this.fail(path, `unknown key ${JSON.stringify(key)}`);
    }
    for (const key of required) {
      if (!has(obj, key)) this.fail(path, `missing key ${JSON.stringify(key)}`);
    }
  }

  exactlyOne(obj: JsonObject, path: Path, keys: readonly string[]): void {
    const given = keys.filter((key) => has(obj, key));
    if (given.length === 1) return;
    this.fail(
      path,
      `exactly one of ${listOf(keys, 'and')} must be set, found ${given.length === 0 ? 'none' : listOf(given, 'and')}`,
    );
  }

  object(value: unknown, path: Path): JsonObject {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(path, `expected an object, got ${typeName(value)}`);
    }
    return value as JsonObject;
  }

  /** A present string field; empty strings are refused, as containers/image treats them as absent. */
  string(obj: JsonObject, key: string, path: Path): string {
    return this.stringValue(obj[key], [...path, key]);
  }

  stringValue(value: unknown, path: Path): string {
    if (typeof value !== 'string') this.fail(path, `expected a string, got ${typeName(value)}`);
    if (value === '') this.fail(path, 'must not be empty');
    return value;
  }

  stringArray(obj: JsonObject, key: string, path: Path, allowEmpty = false): string[] {
    return this.array(obj, key, path, allowEmpty, 'strings').map((item, index) =>
      this.stringValue(item, [...path, key, index]),
    );
  }

  bytes(obj: JsonObject, key: string, path: Path): Uint8Array {
    return this.bytesValue(obj[key], [...path, key]);
  }

  /** Binary fields are base64 (standard alphabet, padded), as Go's encoding/json writes []byte. */
  bytesValue(value: unknown, path: Path): Uint8Array {
    if (typeof value !== 'string') this.fail(path, `expected a base64 string, got ${typeName(value)}`);
    // Go's decoder skips line breaks inside base64; anything else outside the alphabet is an error.
    const compact = value.replace(/[\r\n]/g, '');
    if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(compact)) {
      this.fail(path, 'not valid base64');
    }
    return Uint8Array.from(Buffer.from(compact, 'base64'));
  }

  bytesArray(obj: JsonObject, key: string, path: Path): Uint8Array[] {
    return this.array(obj, key, path, false, 'base64 strings').map((item, index) =>
      this.bytesValue(item, [...path, key, index]),
    );
  }

  array(obj: JsonObject, key: string, path: Path, allowEmpty: boolean, of: string): unknown[] {
    const value = obj[key];
    if (!Array.isArray(value))
      this.fail([...path, key], `expected an array of ${of}, got ${typeName(value)}`);
    if (value.length === 0 && !allowEmpty) this.fail([...path, key], 'must not be empty');
    return value;
  }

  fail(path: Path, problem: string, cause?: unknown): never {
    const where = this.#source === undefined ? 'invalid policy' : `invalid policy in "${this.#source}"`;
    const location = formatJsonPath(path);
    throw new InvalidPolicyError(
      `${where}: ${location === '' ? '' : `${location}: `}${problem}`,
      cause === undefined ? undefined : { cause },
    );
  }
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

function listOf(items: readonly string[], conjunction: 'and' | 'or'): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} ${conjunction} ${items[items.length - 1]}`;
}

function has(obj: JsonObject, key: string): boolean {
  return Object.hasOwn(obj, key);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
