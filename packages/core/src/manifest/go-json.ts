/**
 * JSON output byte-compatible with Go's encoding/json `Marshal`, which containers/image uses to write
 * every manifest and config it produces: compact, struct fields in declaration order, map keys sorted
 * byte-wise, and `<`, `>`, `&`, U+2028 and U+2029 escaped inside strings. Producing the same bytes
 * gives the same digests as skopeo for the same conversion.
 */

/** A Go `map[string]…`: encoding/json writes its keys sorted, whatever order they were inserted in. */
export class GoMap {
  constructor(readonly entries: Readonly<Record<string, unknown>>) {}
}

/** Raw JSON text, written compacted as Go does for a `json.RawMessage`. */
export class RawJson {
  constructor(readonly text: string) {}
}

/** What {@link goMarshal} accepts: plain objects are structs, written in insertion order without undefined fields. */
export type GoValue =
  | string
  | number
  | boolean
  | null
  | undefined
  | GoMap
  | RawJson
  | readonly GoValue[]
  | { readonly [key: string]: GoValue };

const htmlUnsafe = /[<>&\u2028\u2029]/g;

function escapeHtml(text: string): string {
  return text.replace(htmlUnsafe, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A string as encoding/json writes it (Go ≥ 1.22 uses the same short escapes as JSON.stringify). */
export function goString(text: string): string {
  return escapeHtml(JSON.stringify(text));
}

/** Byte-wise order of the UTF-8 encodings, as Go's `strings.Compare`. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Serialises a value as Go's `json.Marshal` would serialise the equivalent Go value. */
export function goMarshal(value: GoValue): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return goString(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`cannot encode ${value} as JSON`);
    return JSON.stringify(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value instanceof RawJson) return goCompact(value.text);
  if (value instanceof GoMap) {
    const keys = Object.keys(value.entries).sort(compareUtf8);
    return `{${keys.map((k) => `${goString(k)}:${goMarshal(value.entries[k] as GoValue)}`).join(',')}}`;
  }
  if (Array.isArray(value)) return `[${value.map((v: GoValue) => goMarshal(v)).join(',')}]`;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(value as Record<string, GoValue>)) {
    if (v !== undefined) parts.push(`${goString(k)}:${goMarshal(v)}`);
  }
  return `{${parts.join(',')}}`;
}

/** {@link goMarshal} as UTF-8 bytes. */
export function goMarshalBytes(value: GoValue): Uint8Array {
  return new Uint8Array(Buffer.from(goMarshal(value), 'utf8'));
}

function isJsonSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r';
}

/**
 * Valid JSON text with insignificant whitespace removed and HTML-unsafe characters escaped inside
 * strings; numbers and key order stay as written (Go's `json.Compact` with HTML escaping, applied
 * by `Marshal` to a `json.RawMessage`).
 */
export function goCompact(text: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (inString) {
      if (c === '\\') {
        out += c + (text[i + 1] ?? '');
        i++;
      } else {
        if (c === '"') inString = false;
        out += c;
      }
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (!isJsonSpace(c)) {
      out += c;
    }
  }
  return escapeHtml(out);
}

function skipSpace(text: string, i: number): number {
  let j = i;
  while (isJsonSpace(text[j])) j++;
  return j;
}

function endOfString(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i + 1;
  }
  throw new SyntaxError('unterminated string');
}

function endOfValue(text: string, start: number): number {
  const first = text[start];
  if (first === '"') return endOfString(text, start);
  if (first === '{' || first === '[') {
    let depth = 0;
    for (let i = start; i < text.length; i++) {
      const c = text[i];
      if (c === '"') i = endOfString(text, i) - 1;
      else if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
    throw new SyntaxError('unterminated value');
  }
  let i = start;
  while (i < text.length && !isJsonSpace(text[i]) && text[i] !== ',' && text[i] !== '}' && text[i] !== ']')
    i++;
  return i;
}

/**
 * The members of a JSON object as raw text, in document order (duplicates kept). The text MUST
 * already be known to be a valid JSON object.
 */
export function rawMembers(text: string): Array<[key: string, raw: string]> {
  const members: Array<[string, string]> = [];
  let i = skipSpace(text, 0);
  if (text[i] !== '{') throw new SyntaxError('not a JSON object');
  i = skipSpace(text, i + 1);
  if (text[i] === '}') return members;
  for (;;) {
    const keyEnd = endOfString(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    i = skipSpace(text, keyEnd) + 1; // the colon
    i = skipSpace(text, i);
    const valueEnd = endOfValue(text, i);
    members.push([key, text.slice(i, valueEnd)]);
    i = skipSpace(text, valueEnd);
    if (text[i] !== ',') return members;
    i = skipSpace(text, i + 1);
  }
}
