import { parseGoDuration } from '../duration.js';
import type { FastCommandSpec, FastFlagSpec } from './spec.js';

/** A command line's flags and arguments, as oclif's parser gives them to the command. */
export interface FastParseResult {
  /** Only the flags that have a value (given, from their environment variable, or a default). */
  flags: Record<string, unknown>;
  args: Record<string, string>;
}

/** The environment the parser reads flag values from (a flag's `env`). */
export type Environment = Readonly<Record<string, string | undefined>>;

const negation = '--no-';

/** Name lookups as oclif's parser makes them: names, then aliases; chars after char aliases. */
class FlagTable {
  private readonly aliases = new Map<string, string>();

  constructor(readonly spec: FastCommandSpec) {
    for (const [name, flag] of Object.entries(spec.flags)) {
      for (const alias of [...(flag.aliases ?? []), ...(flag.charAliases ?? [])])
        this.aliases.set(alias, name);
    }
  }

  flag(name: string): FastFlagSpec {
    return this.spec.flags[name]!;
  }

  /** The flag `--text` names (`text` without the dashes), and whether it is `--no-` of a boolean. */
  long(text: string): string | undefined {
    if (Object.hasOwn(this.spec.flags, text)) return text;
    const alias = this.aliases.get(text);
    if (alias !== undefined) return alias;
    if (`--${text}`.startsWith(negation)) {
      const base = text.slice(negation.length - 2);
      if (Object.hasOwn(this.spec.flags, base) && this.isNegatable(base)) return base;
      const aliased = this.aliases.get(base);
      if (aliased !== undefined && this.isNegatable(aliased)) return aliased;
    }
    return undefined;
  }

  /** The flag `-c` names. */
  short(char: string): string | undefined {
    const alias = this.aliases.get(char);
    if (alias !== undefined) return alias;
    return Object.keys(this.spec.flags).find((name) => this.spec.flags[name]!.char === char);
  }

  private isNegatable(name: string): boolean {
    const flag = this.spec.flags[name]!;
    return flag.kind === 'boolean' && flag.allowNo === true;
  }
}

/**
 * A boolean's value from the token that set it, as oclif decides it: false for `--no-NAME` (or
 * `--no-ALIAS`), true for anything else.
 */
function booleanFromToken(name: string, flag: FastFlagSpec, token: string): boolean {
  return ![name, ...(flag.aliases ?? [])].some((n) => token === `${negation}${n}`);
}

/**
 * An option flag's value parsed as oclif parses it, after checking it against the flag's options;
 * undefined when oclif would refuse it (it then prints the error).
 */
function optionValue(flag: FastFlagSpec, input: string): string | number | undefined {
  if (flag.options && !flag.options.includes(input)) return undefined;
  switch (flag.kind) {
    case 'string':
      return input;
    case 'integer': {
      // oclif's Flags.integer: an optional minus and digits, Number.parseInt, then the bounds.
      if (!/^-?\d+$/.test(input)) return undefined;
      const n = Number.parseInt(input, 10);
      if (flag.min !== undefined && n < flag.min) return undefined;
      if (flag.max !== undefined && n > flag.max) return undefined;
      return n;
    }
    case 'duration': {
      // base-command's durationFlag: a Go duration, never negative.
      let ms: number;
      try {
        ms = parseGoDuration(input);
      } catch {
        return undefined;
      }
      return ms < 0 ? undefined : ms;
    }
    default:
      return undefined;
  }
}

/**
 * Parses a command line (what follows the command id) as oclif's parser and its checks would, for
 * the command `spec` describes, or returns undefined whenever the result is not certain to be
 * oclif's: an unknown flag, `--`, a value that starts with `-` or is refused (oclif then prints its
 * error), an option flag given twice, `--boolean=value`, a flag the spec marks unsupported that
 * gets a value, a broken exclusive or dependsOn rule, or not exactly the command's arguments.
 * Defaults and environment values come out as oclif gives them.
 */
export function parseFast(
  spec: FastCommandSpec,
  argv: readonly string[],
  env: Environment,
): FastParseResult | undefined {
  const table = new FlagTable(spec);
  // Per flag, the tokens that set it: a boolean's token as typed, an option's value.
  const given = new Map<string, string[]>();
  const positionals: string[] = [];
  const queue = [...argv];
  const record = (name: string, value: string) => {
    given.set(name, [...(given.get(name) ?? []), value]);
  };
  // An option's value: inline, or the next token; anything starting with `-` could be read as a flag.
  const takeValue = (name: string, inline: string | undefined): boolean => {
    if (given.has(name)) return false; // oclif: "can only be specified once"
    const value = inline ?? queue.shift();
    if (value === undefined || value.startsWith('-')) return false;
    record(name, value);
    return true;
  };

  while (queue.length > 0) {
    const token = queue.shift()!;
    if (!token.startsWith('-') || token === '-') {
      positionals.push(token);
      continue;
    }
    if (token === '--') return undefined;
    if (token.startsWith('--')) {
      let name = table.long(token.slice(2));
      let inline: string | undefined;
      if (name === undefined) {
        const eq = token.indexOf('=');
        if (eq < 0) return undefined;
        name = table.long(token.slice(2, eq));
        inline = token.slice(eq + 1);
        if (name === undefined) return undefined;
      }
      const flag = table.flag(name);
      if (flag.kind === 'unsupported') return undefined;
      if (flag.kind === 'boolean') {
        // oclif reads `--bool=x` as `--bool` and `x` as an argument; bin/run.js has already
        // rewritten the values it knows.
        if (inline !== undefined) return undefined;
        record(name, token);
      } else if (!takeValue(name, inline)) {
        return undefined;
      }
      continue;
    }
    // Single letters: booleans may be grouped (`-aq`), an option takes the rest or the next token.
    const name = table.short(token[1]!);
    if (name === undefined) return undefined;
    const flag = table.flag(name);
    if (flag.kind === 'unsupported') return undefined;
    if (flag.kind === 'boolean') {
      record(name, token);
      const rest = token.slice(2);
      if (rest.startsWith('-')) return undefined;
      if (rest !== '') queue.unshift(`-${rest}`);
      continue;
    }
    const inline = token.length < 3 ? undefined : token.slice(token[2] === '=' ? 3 : 2);
    if (!takeValue(name, inline)) return undefined;
  }

  if (positionals.length !== spec.args.length) return undefined;

  const flags: Record<string, unknown> = {};
  const fromDefault = new Set<string>();
  for (const [name, flag] of Object.entries(spec.flags)) {
    const tokens = given.get(name);
    const fromEnv = flag.env === undefined ? undefined : env[flag.env] || undefined;
    if (flag.kind === 'unsupported') {
      if (tokens || fromEnv !== undefined || flag.default !== undefined) return undefined;
      continue;
    }
    if (tokens) {
      const last = tokens[tokens.length - 1]!;
      const value = flag.kind === 'boolean' ? booleanFromToken(name, flag, last) : optionValue(flag, last);
      if (value === undefined) return undefined;
      flags[name] = value;
    } else if (fromEnv !== undefined && flag.kind !== 'boolean') {
      const value = optionValue(flag, fromEnv);
      if (value === undefined) return undefined;
      flags[name] = value;
    } else if (flag.default !== undefined) {
      flags[name] = flag.default;
      fromDefault.add(name);
    }
  }

  // oclif's checks of flags that have a value; a default neither breaks nor is broken by `exclusive`.
  for (const [name, flag] of Object.entries(spec.flags)) {
    if (flags[name] === undefined) continue;
    for (const other of flag.exclusive ?? []) {
      if (fromDefault.has(name) || fromDefault.has(other)) continue;
      if (flags[other] !== undefined) return undefined;
    }
    for (const other of flag.dependsOn ?? []) {
      if (flags[other] === undefined) return undefined;
    }
  }

  const args: Record<string, string> = {};
  spec.args.forEach((name, i) => {
    args[name] = positionals[i]!;
  });
  return { flags, args };
}
