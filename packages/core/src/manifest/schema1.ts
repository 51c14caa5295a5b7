import { type Digest, isDigest } from '../digest.js';
import { InvalidManifestError } from '../errors.js';

/** The fields of a `v1Compatibility` entry that conversion and validation use. */
export interface V1Compatibility {
  id: string;
  parent: string;
  comment: string;
  /** As Go writes the parsed time (RFC 3339 with trimmed nanoseconds). */
  created: string;
  author: string;
  /** `container_config.Cmd`. */
  cmd: string[];
  throwaway: boolean;
}

/** The zero `time.Time` as Go's encoding/json writes it. */
const zeroTime = '0001-01-01T00:00:00Z';
const rfc3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/;

/**
 * An RFC 3339 timestamp as Go's `time.Time` writes it back after parsing: fractional seconds cut to
 * nanoseconds with trailing zeros trimmed, a zero offset written `Z`.
 */
export function goTime(value: unknown, where: string): string {
  if (value === undefined || value === null) return zeroTime;
  const match = typeof value === 'string' ? rfc3339.exec(value) : null;
  if (!match) throw new InvalidManifestError(`${where} is not an RFC 3339 time: ${JSON.stringify(value)}`);
  const [, seconds, fraction = '', offset] = match as unknown as [string, string, string | undefined, string];
  const nanos = fraction.slice(0, 9).replace(/0+$/, '');
  const zone = offset === 'Z' || offset === '+00:00' || offset === '-00:00' ? 'Z' : offset;
  return `${seconds}${nanos ? `.${nanos}` : ''}${zone}`;
}

function optionalString(json: Record<string, unknown>, key: string, where: string): string {
  const value = json[key];
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw new InvalidManifestError(`${where}.${key} is not a string`);
  return value;
}

/** Parses one `history[].v1Compatibility` string (Docker image manifest V2, schema 1). */
export function parseV1Compatibility(text: unknown, where: string): V1Compatibility {
  if (typeof text !== 'string') throw new InvalidManifestError(`${where}.v1Compatibility is not a string`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InvalidManifestError(`${where}.v1Compatibility is not JSON`, { cause: error });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InvalidManifestError(`${where}.v1Compatibility is not a JSON object`);
  }
  const v1 = json as Record<string, unknown>;
  const w = `${where}.v1Compatibility`;
  let cmd: string[] = [];
  const containerConfig = v1.container_config;
  if (containerConfig !== undefined && containerConfig !== null) {
    if (typeof containerConfig !== 'object' || Array.isArray(containerConfig)) {
      throw new InvalidManifestError(`${w}.container_config is not an object`);
    }
    const c = (containerConfig as Record<string, unknown>).Cmd;
    if (c !== undefined && c !== null) {
      if (!Array.isArray(c) || !c.every((s) => typeof s === 'string')) {
        throw new InvalidManifestError(`${w}.container_config.Cmd is not an array of strings`);
      }
      cmd = c as string[];
    }
  }
  const throwaway = v1.throwaway;
  if (throwaway !== undefined && throwaway !== null && typeof throwaway !== 'boolean') {
    throw new InvalidManifestError(`${w}.throwaway is not a boolean`);
  }
  return {
    id: optionalString(v1, 'id', w),
    parent: optionalString(v1, 'parent', w),
    comment: optionalString(v1, 'comment', w),
    created: goTime(v1.created, `${w}.created`),
    author: optionalString(v1, 'author', w),
    cmd,
    throwaway: throwaway === true,
  };
}

/** A schema 1 manifest's layer entries after validation and fix-up, newest first. */
export interface Schema1Entries {
  fsLayers: Digest[];
  history: string[];
  compat: V1Compatibility[];
}

/**
 * Validates `fsLayers` and `history` and drops consecutive repeats of one v1 ID, as containers/image
 * does before using a schema 1 manifest (after docker's pull code): every ID is 64 hex digits, the
 * base has no parent, each entry's parent is the next entry, and an ID may repeat only in
 * consecutive entries, of which one is kept. Repeated `blobSum`s are kept: they are meaningful.
 */
export function fixSchema1Entries(fsLayers: unknown, history: unknown): Schema1Entries {
  if (!Array.isArray(fsLayers)) throw new InvalidManifestError('schema 1 manifest without "fsLayers"');
  if (!Array.isArray(history)) throw new InvalidManifestError('schema 1 manifest without "history"');
  if (fsLayers.length !== history.length) {
    throw new InvalidManifestError(
      `schema 1 manifest has ${fsLayers.length} fsLayers but ${history.length} history entries`,
    );
  }
  if (fsLayers.length === 0) throw new InvalidManifestError('schema 1 manifest has no fsLayers');
  const sums = fsLayers.map((l: unknown, i) => {
    const sum = typeof l === 'object' && l !== null ? (l as { blobSum?: unknown }).blobSum : undefined;
    if (typeof sum !== 'string' || !isDigest(sum)) {
      throw new InvalidManifestError(`fsLayers[${i}] has an invalid blobSum ${JSON.stringify(sum)}`);
    }
    return sum;
  });
  const texts = history.map((h: unknown, i) => {
    const text =
      typeof h === 'object' && h !== null ? (h as { v1Compatibility?: unknown }).v1Compatibility : undefined;
    if (typeof text !== 'string')
      throw new InvalidManifestError(`history[${i}].v1Compatibility is not a string`);
    return text;
  });
  const compat = texts.map((t, i) => parseV1Compatibility(t, `history[${i}]`));
  compat.forEach((c, i) => {
    if (!/^[a-f0-9]{64}$/.test(c.id))
      throw new InvalidManifestError(`history[${i}] has an invalid image ID "${c.id}"`);
  });
  if ((compat[compat.length - 1] as V1Compatibility).parent !== '') {
    throw new InvalidManifestError('the base layer of the schema 1 manifest has a parent ID');
  }
  const seen = new Set<string>();
  let last = '';
  for (const c of compat) {
    if (c.id !== last && seen.has(c.id))
      throw new InvalidManifestError(`image ID ${c.id} appears more than once`);
    last = c.id;
    seen.add(c.id);
  }
  // Walk from the base upwards so that removals keep the indexes still to visit valid.
  for (let i = compat.length - 2; i >= 0; i--) {
    const here = compat[i] as V1Compatibility;
    const below = compat[i + 1] as V1Compatibility;
    if (here.id === below.id) {
      sums.splice(i, 1);
      texts.splice(i, 1);
      compat.splice(i, 1);
    } else if (here.parent !== below.id) {
      throw new InvalidManifestError(`history[${i}] has parent ID "${here.parent}", expected ${below.id}`);
    }
  }
  return { fsLayers: sums, history: texts, compat };
}
