/**
 * A small evaluator for the part of Go's text/template that `--format` users write in scripts:
 * field chains (`{{.Labels.version}}`), variables, pipelines, `if`/`else`/`with`/`range`, and the
 * functions index, len, json, join, split, lower, upper, print, printf, println, not, and, or, eq,
 * ne, lt, le, gt, ge. Anything else fails with a {@link TemplateError} naming what is unsupported.
 */
import { GoTime, goJson, goKeys, goPrint, goStructName } from './go-value.js';

/** A template that cannot be parsed or executed; the message says where and why. */
export class TemplateError extends Error {
  override name = 'TemplateError';
}

type Operand =
  | { kind: 'field'; base: Operand | undefined; fields: string[] } // base undefined = dot
  | { kind: 'dot' }
  | { kind: 'var'; name: string; fields: string[] }
  | { kind: 'literal'; value: unknown }
  | { kind: 'func'; name: string }
  | { kind: 'pipe'; pipe: Pipeline; fields: string[] };

interface Pipeline {
  decl: string[];
  commands: Operand[][];
  source: string;
}

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipe: Pipeline }
  | { kind: 'if' | 'with'; pipe: Pipeline; body: Node[]; otherwise: Node[] | undefined }
  | { kind: 'range'; pipe: Pipeline; body: Node[]; otherwise: Node[] | undefined };

/** A parsed template, ready for {@link executeGoTemplate}. */
export interface GoTemplate {
  readonly nodes: readonly Node[];
}

// ---------------------------------------------------------------------------------------------
// Lexing: the template into text and actions, an action into tokens.

interface RawAction {
  text: string;
  column: number;
}

function splitTemplate(source: string): Array<string | RawAction> {
  const parts: Array<string | RawAction> = [];
  let i = 0;
  let trimNextText = false;
  while (i < source.length) {
    const open = source.indexOf('{{', i);
    let text = open < 0 ? source.slice(i) : source.slice(i, open);
    if (trimNextText) text = text.replace(/^\s+/, '');
    trimNextText = false;
    if (open < 0) {
      if (text) parts.push(text);
      break;
    }
    let start = open + 2;
    if (
      source.startsWith('- ', start) ||
      source.startsWith('-\t', start) ||
      source.startsWith('-\n', start)
    ) {
      text = text.replace(/\s+$/, '');
      start += 1;
    }
    if (text) parts.push(text);
    const close = findClose(source, start);
    if (close < 0) throw new TemplateError(`invalid format template: unclosed action at column ${open + 1}`);
    let end = close;
    if (/\s-$/.test(source.slice(start, close))) {
      end = close - 1;
      trimNextText = true;
    }
    parts.push({ text: source.slice(start, end), column: open + 1 });
    i = close + 2;
  }
  return parts;
}

// The `}}` that closes an action, skipping any inside string literals.
function findClose(source: string, from: number): number {
  let i = from;
  while (i < source.length) {
    const c = source[i];
    if (c === '"') {
      i++;
      while (i < source.length && source[i] !== '"') i += source[i] === '\\' ? 2 : 1;
      i++;
    } else if (c === '`') {
      const end = source.indexOf('`', i + 1);
      if (end < 0) return -1;
      i = end + 1;
    } else if (source.startsWith('}}', i)) {
      return i;
    } else {
      i++;
    }
  }
  return -1;
}

type Token =
  | { t: 'field'; name: string; joined: boolean } // .Name; joined: no space before it (a chain)
  | { t: 'dot' }
  | { t: 'var'; name: string } // $ or $name
  | { t: 'ident'; name: string }
  | { t: 'string'; value: string }
  | { t: 'number'; value: number }
  | { t: 'pipe' }
  | { t: 'open' }
  | { t: 'close' }
  | { t: 'declare' }
  | { t: 'comma' };

function tokenize(action: RawAction): Token[] {
  const s = action.text;
  const fail = (why: string): never => {
    throw new TemplateError(`invalid format template: ${why} in "{{${s}}}" at column ${action.column}`);
  };
  const tokens: Token[] = [];
  let i = 0;
  const identAt = (j: number) => /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(j))?.[0] ?? '';
  while (i < s.length) {
    const c = s[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '.') {
      const name = identAt(i + 1);
      if (name) {
        tokens.push({ t: 'field', name, joined: i > 0 && !/\s/.test(s[i - 1]!) });
        i += 1 + name.length;
      } else if (/[0-9]/.test(s[i + 1] ?? '')) {
        const num = /^\.[0-9]+/.exec(s.slice(i))![0];
        tokens.push({ t: 'number', value: Number(num) });
        i += num.length;
      } else {
        tokens.push({ t: 'dot' });
        i++;
      }
    } else if (c === '$') {
      const name = identAt(i + 1);
      tokens.push({ t: 'var', name: `$${name}` });
      i += 1 + name.length;
    } else if (c === '"') {
      let j = i + 1;
      while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
      if (j >= s.length) fail('unterminated string');
      try {
        tokens.push({ t: 'string', value: JSON.parse(s.slice(i, j + 1)) as string });
      } catch {
        fail(`unsupported escape in string ${s.slice(i, j + 1)}`);
      }
      i = j + 1;
    } else if (c === '`') {
      const end = s.indexOf('`', i + 1);
      if (end < 0) fail('unterminated raw string');
      tokens.push({ t: 'string', value: s.slice(i + 1, end) });
      i = end + 1;
    } else if (/[0-9-+]/.test(c)) {
      const num = /^[-+]?(?:0[xX][0-9a-fA-F]+|[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)/.exec(s.slice(i))?.[0];
      if (!num) fail(`unexpected "${c}"`);
      tokens.push({ t: 'number', value: Number(num) });
      i += num!.length;
    } else if (c === '|') {
      tokens.push({ t: 'pipe' });
      i++;
    } else if (c === '(') {
      tokens.push({ t: 'open' });
      i++;
    } else if (c === ')') {
      tokens.push({ t: 'close' });
      i++;
    } else if (c === ',') {
      tokens.push({ t: 'comma' });
      i++;
    } else if (s.startsWith(':=', i)) {
      tokens.push({ t: 'declare' });
      i += 2;
    } else if (c === '=') {
      fail('variable assignment with "=" is not supported');
    } else if (c === "'") {
      fail('character constants are not supported');
    } else {
      const name = identAt(i);
      if (!name) fail(`unexpected "${c}"`);
      tokens.push({ t: 'ident', name });
      i += name.length;
    }
  }
  return tokens;
}

// ---------------------------------------------------------------------------------------------
// Parsing.

const functions: Record<string, (...args: unknown[]) => unknown> = {
  index: goIndex,
  len: goLen,
  json: (v) => goJson(v, { escapeHtml: false }),
  join: (list, sep) => {
    if (!Array.isArray(list)) throw new TemplateError(`join: expected a list, got ${typeName(list)}`);
    return list.map(goPrint).join(String(sep ?? ''));
  },
  split: (s, sep) => String(s).split(String(sep)),
  lower: (s) => goPrint(s).toLowerCase(),
  upper: (s) => goPrint(s).toUpperCase(),
  print: (...args) => goSprint(args),
  println: (...args) => `${args.map(goPrint).join(' ')}\n`,
  printf: (format, ...args) => goSprintf(String(format), args),
  not: (v) => !truthy(v),
  and: (...args) => args.find((a) => !truthy(a)) ?? args[args.length - 1],
  or: (...args) => args.find((a) => truthy(a)) ?? args[args.length - 1],
  eq: (a, ...bs) => bs.some((b) => comparable(a) === comparable(b)),
  ne: (a, b) => comparable(a) !== comparable(b),
  lt: (a, b) => ordered(a, b) < 0,
  le: (a, b) => ordered(a, b) <= 0,
  gt: (a, b) => ordered(a, b) > 0,
  ge: (a, b) => ordered(a, b) >= 0,
};

const unsupportedKeywords = new Set(['define', 'template', 'block', 'break', 'continue']);

class Parser {
  private tokens: Token[] = [];
  private pos = 0;
  private index = 0;
  private action: RawAction = { text: '', column: 0 };

  constructor(private readonly parts: Array<string | RawAction>) {}

  parse(): Node[] {
    const { nodes, end } = this.parseList();
    if (end) this.fail(`unexpected {{${end}}}`);
    return nodes;
  }

  private fail(why: string): never {
    throw new TemplateError(`invalid format template: ${why} at column ${this.action.column}`);
  }

  // Parses nodes up to an {{end}} or {{else …}} (returned as `end`) or the end of the template.
  private parseList(): { nodes: Node[]; end: string | undefined } {
    const nodes: Node[] = [];
    while (this.index < this.parts.length) {
      const part = this.parts[this.index++]!;
      if (typeof part === 'string') {
        nodes.push({ kind: 'text', text: part });
        continue;
      }
      this.action = part;
      const trimmed = part.text.trim();
      if (trimmed.startsWith('/*')) {
        if (!trimmed.endsWith('*/')) this.fail('unterminated comment');
        continue;
      }
      this.tokens = tokenize(part);
      this.pos = 0;
      if (this.tokens.length === 0) this.fail('empty action');
      const first = this.tokens[0]!;
      if (first.t === 'ident') {
        if (unsupportedKeywords.has(first.name)) {
          this.fail(
            `"${first.name}" is not supported (img supports fields, variables, if, with, range and functions)`,
          );
        }
        if (first.name === 'end') {
          if (this.tokens.length > 1) this.fail('unexpected text after end');
          return { nodes, end: 'end' };
        }
        if (first.name === 'else') return { nodes, end: 'else' };
        if (first.name === 'if' || first.name === 'with' || first.name === 'range') {
          this.pos = 1;
          nodes.push(this.parseControl(first.name));
          continue;
        }
      }
      nodes.push({ kind: 'action', pipe: this.parsePipeline(false) });
    }
    return { nodes, end: undefined };
  }

  private parseControl(keyword: 'if' | 'with' | 'range'): Node {
    const pipe = this.parsePipeline(keyword === 'range');
    const body = this.parseList();
    let otherwise: Node[] | undefined;
    if (body.end === 'else') {
      // `{{else}}`, or `{{else if …}}` / `{{else with …}}` which nest a control in the else branch.
      const next = this.tokens[1];
      if (next && next.t === 'ident' && (next.name === 'if' || next.name === 'with') && keyword !== 'range') {
        this.pos = 2;
        otherwise = [this.parseControl(next.name)];
        return { kind: keyword, pipe, body: body.nodes, otherwise };
      }
      if (this.tokens.length > 1) this.fail('unexpected text after else');
      const rest = this.parseList();
      if (rest.end !== 'end') this.fail(`missing {{end}} for {{${keyword}}}`);
      otherwise = rest.nodes;
    } else if (body.end !== 'end') {
      this.fail(`missing {{end}} for {{${keyword}}}`);
    }
    return { kind: keyword, pipe, body: body.nodes, otherwise };
  }

  private peek(): Token | undefined {
    return this.tokens[this.pos];
  }

  private parsePipeline(allowTwoVars: boolean, inParens = false): Pipeline {
    const decl: string[] = [];
    // `$x :=` or, in range, `$i, $x :=`.
    const t0 = this.tokens[this.pos];
    const t1 = this.tokens[this.pos + 1];
    if (t0?.t === 'var' && t1?.t === 'declare') {
      decl.push(t0.name);
      this.pos += 2;
    } else if (t0?.t === 'var' && t1?.t === 'comma' && allowTwoVars) {
      const t2 = this.tokens[this.pos + 2];
      const t3 = this.tokens[this.pos + 3];
      if (t2?.t !== 'var' || t3?.t !== 'declare') this.fail('expected "$key, $value :="');
      decl.push(t0.name, t2.name);
      this.pos += 4;
    }
    const commands: Operand[][] = [];
    let command: Operand[] = [];
    for (;;) {
      const token = this.peek();
      if (!token || (inParens && token.t === 'close')) break;
      this.pos++;
      if (token.t === 'pipe') {
        if (command.length === 0) this.fail('missing command before "|"');
        commands.push(command);
        command = [];
        continue;
      }
      command.push(this.parseOperand(token));
    }
    if (command.length === 0) this.fail(commands.length ? 'missing command after "|"' : 'missing value');
    commands.push(command);
    return { decl, commands, source: this.action.text.trim() };
  }

  private fieldsAfter(): string[] {
    const fields: string[] = [];
    for (let t = this.peek(); t?.t === 'field' && t.joined; t = this.peek()) {
      fields.push(t.name);
      this.pos++;
    }
    return fields;
  }

  private parseOperand(token: Token): Operand {
    switch (token.t) {
      case 'field':
        return { kind: 'field', base: undefined, fields: [token.name, ...this.fieldsAfter()] };
      case 'dot':
        return { kind: 'dot' };
      case 'var':
        return { kind: 'var', name: token.name, fields: this.fieldsAfter() };
      case 'string':
      case 'number':
        return { kind: 'literal', value: token.value };
      case 'open': {
        const pipe = this.parsePipeline(false, true);
        if (this.peek()?.t !== 'close') this.fail('missing ")"');
        this.pos++;
        return { kind: 'pipe', pipe, fields: this.fieldsAfter() };
      }
      case 'ident':
        if (token.name === 'true' || token.name === 'false')
          return { kind: 'literal', value: token.name === 'true' };
        if (token.name === 'nil') return { kind: 'literal', value: null };
        if (token.name in functions) return { kind: 'func', name: token.name };
        if (
          ['if', 'with', 'range', 'else', 'end'].includes(token.name) ||
          unsupportedKeywords.has(token.name)
        ) {
          this.fail(`unexpected "${token.name}"`);
        }
        return this.fail(`function "${token.name}" not defined`);
      default:
        return this.fail(`unexpected "${token.t === 'comma' ? ',' : token.t === 'close' ? ')' : ':='}"`);
    }
  }
}

/** Parses a Go text/template; throws TemplateError on a syntax error or unsupported construct. */
export function parseGoTemplate(source: string): GoTemplate {
  return { nodes: new Parser(splitTemplate(source)).parse() };
}

// ---------------------------------------------------------------------------------------------
// Evaluation.

function typeName(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'string') return 'string';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float64';
  if (typeof value === 'boolean') return 'bool';
  if (value instanceof GoTime) return 'time.Time';
  if (Array.isArray(value)) return value.every((v) => typeof v === 'string') ? '[]string' : '[]interface {}';
  return goStructName(value) ?? 'map[string]interface {}';
}

function truthy(value: unknown): boolean {
  if (value === undefined || value === null || value === false || value === 0 || value === '') return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object' && !(value instanceof GoTime) && !goStructName(value))
    return Object.keys(value).length > 0;
  return true;
}

function comparable(value: unknown): unknown {
  if (value instanceof GoTime) return value.rfc3339;
  if (value !== null && typeof value === 'object')
    throw new TemplateError(`cannot compare values of type ${typeName(value)}`);
  return value;
}

function ordered(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  throw new TemplateError(`cannot compare ${typeName(a)} with ${typeName(b)}`);
}

function goIndex(collection: unknown, ...keys: unknown[]): unknown {
  let value = collection;
  for (const key of keys) {
    if (Array.isArray(value) || typeof value === 'string') {
      if (typeof key !== 'number' || !Number.isInteger(key))
        throw new TemplateError(`index: cannot index a list with ${typeName(key)}`);
      if (key < 0 || key >= value.length) throw new TemplateError(`index: index out of range: ${key}`);
      value = typeof value === 'string' ? value.charCodeAt(key) : value[key];
    } else if (value === null || value === undefined) {
      // A nil map yields the zero value.
      value = '';
    } else if (typeof value === 'object' && !goStructName(value) && !(value instanceof GoTime)) {
      if (typeof key !== 'string')
        throw new TemplateError(`index: map key must be a string, got ${typeName(key)}`);
      // A missing key yields the element type's zero value, for Labels and Annotations an empty string.
      value = Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : '';
    } else {
      throw new TemplateError(`index: cannot index value of type ${typeName(value)}`);
    }
  }
  return value;
}

function goLen(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (Array.isArray(value)) return value.length;
  if (value === null) return 0;
  if (typeof value === 'object' && !goStructName(value) && !(value instanceof GoTime))
    return Object.keys(value).length;
  throw new TemplateError(`len of type ${typeName(value)}`);
}

function goSprint(args: unknown[]): string {
  // Go's Sprint puts a space between operands when neither is a string.
  let out = '';
  args.forEach((arg, i) => {
    if (i > 0 && typeof arg !== 'string' && typeof args[i - 1] !== 'string') out += ' ';
    out += goPrint(arg);
  });
  return out;
}

function goSprintf(format: string, args: unknown[]): string {
  let next = 0;
  return format.replace(
    /%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])/g,
    (whole, flags: string, width?: string, precision?: string, verb?: string) => {
      if (verb === '%') return '%';
      if (next >= args.length) return `%!${verb}(MISSING)`;
      const arg = args[next++];
      let text: string;
      switch (verb) {
        case 'v':
        case 's':
          text = goPrint(arg);
          if (precision !== undefined) text = text.slice(0, Number(precision));
          break;
        case 'q':
          text = JSON.stringify(goPrint(arg));
          break;
        case 'd':
          text = typeof arg === 'number' ? String(Math.trunc(arg)) : `%!d(${typeName(arg)}=${goPrint(arg)})`;
          break;
        case 'x':
          text = typeof arg === 'number' ? arg.toString(16) : Buffer.from(goPrint(arg)).toString('hex');
          break;
        case 't':
          text = String(arg);
          break;
        default:
          throw new TemplateError(`printf: unsupported verb ${whole}`);
      }
      const w = Number(width ?? 0);
      if (text.length < w)
        text = flags.includes('-') ? text.padEnd(w) : text.padStart(w, flags.includes('0') ? '0' : ' ');
      return text;
    },
  );
}

class Scope {
  private readonly vars: Array<Map<string, unknown>>;

  constructor(root: unknown) {
    this.vars = [new Map([['$', root]])];
  }

  push(): void {
    this.vars.push(new Map());
  }

  pop(): void {
    this.vars.pop();
  }

  set(name: string, value: unknown): void {
    this.vars[this.vars.length - 1]!.set(name, value);
  }

  get(name: string): unknown {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      const frame = this.vars[i]!;
      if (frame.has(name)) return frame.get(name);
    }
    throw new TemplateError(`undefined variable "${name}"`);
  }
}

function field(value: unknown, name: string, source: string): unknown {
  const structType = goStructName(value);
  if (structType) {
    if (!Object.hasOwn(value as object, name)) {
      throw new TemplateError(
        `template error at <${source}>: can't evaluate field ${name} in type ${structType}`,
      );
    }
    return (value as Record<string, unknown>)[name];
  }
  if (value === undefined || value === null) return undefined; // a nil map or a missing entry: <no value>
  if (typeof value === 'object' && !Array.isArray(value) && !(value instanceof GoTime)) {
    return (value as Record<string, unknown>)[name];
  }
  throw new TemplateError(
    `template error at <${source}>: can't evaluate field ${name} in type ${typeName(value)}`,
  );
}

function fields(value: unknown, names: readonly string[], source: string): unknown {
  let v = value;
  for (const name of names) v = field(v, name, source);
  return v;
}

function evalOperand(op: Operand, dot: unknown, scope: Scope, source: string): unknown {
  switch (op.kind) {
    case 'dot':
      return dot;
    case 'field':
      return fields(dot, op.fields, source);
    case 'var':
      return fields(scope.get(op.name), op.fields, source);
    case 'literal':
      return op.value;
    case 'pipe':
      return fields(evalPipeline(op.pipe, dot, scope), op.fields, source);
    case 'func':
      throw new TemplateError(
        `template error at <${source}>: function "${op.name}" needs its arguments in a pipeline or parentheses`,
      );
  }
}

function evalPipeline(pipe: Pipeline, dot: unknown, scope: Scope): unknown {
  let value: unknown;
  let hasValue = false;
  for (const command of pipe.commands) {
    const [head, ...rest] = command;
    if (head!.kind === 'func') {
      const args = rest.map((op) => evalOperand(op, dot, scope, pipe.source));
      if (hasValue) args.push(value);
      value = functions[head!.name]!(...args);
    } else {
      if (rest.length > 0 || hasValue) {
        throw new TemplateError(
          `template error at <${pipe.source}>: can't give an argument to a non-function`,
        );
      }
      value = evalOperand(head!, dot, scope, pipe.source);
    }
    hasValue = true;
  }
  for (const name of pipe.decl) scope.set(name, value);
  return value;
}

function run(nodes: readonly Node[], dot: unknown, scope: Scope, out: string[]): void {
  for (const node of nodes) {
    switch (node.kind) {
      case 'text':
        out.push(node.text);
        break;
      case 'action': {
        const value = evalPipeline(node.pipe, dot, scope);
        if (node.pipe.decl.length === 0) out.push(goPrint(value));
        break;
      }
      case 'if':
      case 'with': {
        scope.push();
        const value = evalPipeline(node.pipe, dot, scope);
        if (truthy(value)) run(node.body, node.kind === 'with' ? value : dot, scope, out);
        else if (node.otherwise) run(node.otherwise, dot, scope, out);
        scope.pop();
        break;
      }
      case 'range': {
        scope.push();
        const decl = node.pipe.decl;
        const value = evalPipeline({ ...node.pipe, decl: [] }, dot, scope);
        let entries: Array<[unknown, unknown]>;
        if (Array.isArray(value)) entries = value.map((v, i) => [i, v]);
        else if (value === null || value === undefined) entries = [];
        else if (typeof value === 'object' && !goStructName(value) && !(value instanceof GoTime)) {
          entries = goKeys(value).map((k) => [k, (value as Record<string, unknown>)[k]]);
        } else {
          throw new TemplateError(
            `template error at <${node.pipe.source}>: range can't iterate over ${goPrint(value)}`,
          );
        }
        if (entries.length === 0) {
          if (node.otherwise) run(node.otherwise, dot, scope, out);
        } else {
          for (const [key, element] of entries) {
            if (decl.length === 1) scope.set(decl[0]!, element);
            if (decl.length === 2) {
              scope.set(decl[0]!, key);
              scope.set(decl[1]!, element);
            }
            run(node.body, element, scope, out);
          }
        }
        scope.pop();
        break;
      }
    }
  }
}

/** Runs a parsed template against `data` (the template's dot and `$`). */
export function executeGoTemplate(template: GoTemplate, data: unknown): string {
  const out: string[] = [];
  run(template.nodes, data, new Scope(data), out);
  return out.join('');
}

/** Parses and runs a template in one step. */
export function renderGoTemplate(source: string, data: unknown): string {
  return executeGoTemplate(parseGoTemplate(source), data);
}

/**
 * Whether a `--format` value asks for JSON rather than a template: `json` or `{{json .}}`, as
 * containers/common's report.IsJSON decides.
 */
export function isJsonFormat(format: string): boolean {
  return /^\s*(json|\{\{\s*json\s*\.?\s*\}\})\s*$/i.test(format);
}

/**
 * Renders a user's `--format` as skopeo does through containers/common's report package: the
 * escapes `\t` and `\n` typed literally become a tab and a newline, and the output ends with one
 * newline.
 */
export function renderUserTemplate(format: string, data: unknown): string {
  const normalized = format.replaceAll('\\t', '\t').replaceAll('\\n', '\n');
  // skopeo (containers/common's report package) drops a leading "table " and adds a newline when
  // the format itself does not end with one, whatever the output ends with.
  const body = normalized.startsWith('table ') ? normalized.slice('table '.length) : normalized;
  const text = renderGoTemplate(body, data);
  return body.endsWith('\n') ? text : `${text}\n`;
}
