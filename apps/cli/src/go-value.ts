/**
 * JavaScript stand-ins for the Go values skopeo prints, so that JSON output and templates behave as
 * skopeo's do: a plain object is a Go map (keys sorted when written) unless marked as a struct
 * (fields in declaration order, unknown fields an error in templates); a {@link GoTime} is a
 * time.Time.
 */

const structName = Symbol('img.goStruct');

/** Marks `value` as a Go struct of type `name` (fields in insertion order) and returns it. */
export function goStruct<T extends object>(value: T, name: string): T {
  Object.defineProperty(value, structName, { value: name, enumerable: false });
  return value;
}

/** The Go type name of a struct made by {@link goStruct}, or undefined for anything else. */
export function goStructName(value: unknown): string | undefined {
  return typeof value === 'object' && value !== null
    ? (value as { [structName]?: string })[structName]
    : undefined;
}

const rfc3339 = /^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/;

/** A Go time.Time: JSON as RFC 3339, printed in templates as Go's `Time.String()`. */
export class GoTime {
  /** The time as Go's MarshalJSON writes it: nanoseconds with trailing zeros trimmed, a zero offset as `Z`. */
  readonly rfc3339: string;

  constructor(text: string) {
    const m = rfc3339.exec(text);
    if (!m) {
      this.rfc3339 = text;
      return;
    }
    const fraction = (m[3] ?? '').slice(0, 9).replace(/0+$/, '');
    const zone = /^(?:[Zz]|[+-]00:00)$/.test(m[4]!) ? 'Z' : m[4]!;
    this.rfc3339 = `${m[1]}T${m[2]}${fraction ? `.${fraction}` : ''}${zone}`;
  }

  /** `2023-01-02 03:04:05.123456789 +0000 UTC`, as Go prints a time parsed from `…Z`. */
  goString(): string {
    const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2}(?:\.\d+)?)(Z|[+-]\d{2}:\d{2})$/.exec(this.rfc3339);
    if (!m) return this.rfc3339;
    if (m[3] === 'Z') return `${m[1]} ${m[2]} +0000 UTC`;
    const offset = m[3]!.replace(':', '');
    return `${m[1]} ${m[2]} ${offset} ${offset}`;
  }

  toJSON(): string {
    return this.rfc3339;
  }
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The keys of an object in Go's order: declaration order for structs, byte-wise sorted for maps. */
export function goKeys(value: object): string[] {
  const keys = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined);
  return goStructName(value) ? keys : keys.sort(compareUtf8);
}

/** Formats a value as Go's fmt `%v` does (what a template action prints). */
export function goPrint(value: unknown): string {
  if (value === undefined) return '<no value>';
  if (value === null) return '<nil>';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (value instanceof GoTime) return value.goString();
  if (Array.isArray(value)) return `[${value.map(goPrint).join(' ')}]`;
  if (typeof value === 'object') {
    if (goStructName(value))
      return `{${goKeys(value)
        .map((k) => goPrint((value as Record<string, unknown>)[k]))
        .join(' ')}}`;
    return `map[${goKeys(value)
      .map((k) => `${k}:${goPrint((value as Record<string, unknown>)[k])}`)
      .join(' ')}]`;
  }
  return String(value);
}

const htmlUnsafe = /[<>&\u2028\u2029]/g;

/**
 * Serialises as Go's encoding/json does: struct fields in order, map keys sorted byte-wise, and
 * `<`, `>`, `&`, U+2028, U+2029 escaped. With `indent`, as `json.MarshalIndent(v, "", indent)`.
 * `escapeHtml: false` is an Encoder with SetEscapeHTML(false), as containers/common's `json`
 * template function uses.
 */
export function goJson(value: unknown, options: { indent?: string; escapeHtml?: boolean } = {}): string {
  const indent = options.indent ?? '';
  const escapeHtml = options.escapeHtml ?? true;
  const quote = (s: string) => {
    const json = JSON.stringify(s);
    return escapeHtml
      ? json.replace(htmlUnsafe, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
      : json;
  };
  const write = (v: unknown, depth: number): string => {
    if (v === null || v === undefined) return 'null';
    if (v instanceof GoTime) return quote(v.rfc3339);
    if (typeof v === 'string') return quote(v);
    if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : 'null';
    if (typeof v === 'boolean') return String(v);
    const open = indent ? `\n${indent.repeat(depth + 1)}` : '';
    const close = indent ? `\n${indent.repeat(depth)}` : '';
    const colon = indent ? ': ' : ':';
    if (Array.isArray(v)) {
      if (v.length === 0) return '[]';
      return `[${open}${v.map((x) => write(x, depth + 1)).join(`,${open}`)}${close}]`;
    }
    if (typeof v === 'object') {
      const keys = goKeys(v);
      if (keys.length === 0) return '{}';
      const members = keys.map(
        (k) => `${quote(k)}${colon}${write((v as Record<string, unknown>)[k], depth + 1)}`,
      );
      return `{${open}${members.join(`,${open}`)}${close}}`;
    }
    return 'null';
  };
  return write(value, 0);
}
