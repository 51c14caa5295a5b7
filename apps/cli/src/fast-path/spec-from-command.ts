import { Args, Flags } from '@oclif/core';
import { durationFlag } from '../base-command.js';
import type { FastCommandSpec, FastFlagKind, FastFlagSpec } from './spec.js';

// This module reads oclif command classes: the build (scripts/build-fast-path.mjs) and the tests use
// it, never the fast path itself, which must not load @oclif/core.

/** The parts of an oclif command class the generator reads. */
export interface CommandClassLike {
  flags?: Readonly<Record<string, unknown>> | undefined;
  baseFlags?: Readonly<Record<string, unknown>> | undefined;
  args?: Readonly<Record<string, unknown>> | undefined;
  enableJsonFlag?: boolean | undefined;
  state?: string | undefined;
}

/** The hooks oclif runs around a command: a plugin with one of them keeps every command off the fast path. */
export const commandHooks: readonly string[] = [
  'init',
  'prerun',
  'preparse',
  'postrun',
  'finally',
  'command_not_found',
  'command_incomplete',
];

interface OclifFlagLike {
  type?: unknown;
  parse?: unknown;
  char?: unknown;
  aliases?: unknown;
  charAliases?: unknown;
  deprecateAliases?: unknown;
  allowNo?: unknown;
  options?: unknown;
  default?: unknown;
  env?: unknown;
  exclusive?: unknown;
  dependsOn?: unknown;
  min?: unknown;
  max?: unknown;
  multiple?: unknown;
  delimiter?: unknown;
  allowStdin?: unknown;
  relationships?: unknown;
  combinable?: unknown;
  deprecated?: unknown;
  required?: unknown;
  exactlyOne?: unknown;
  atLeastOne?: unknown;
}

/** A flag the spec cannot describe in a way that matters even when the flag is not given. */
class CommandNotFast extends Error {}

const stringParse = String(Flags.string().parse);
const booleanParse = String(Flags.boolean().parse);
const integerParse = Flags.integer().parse;
const durationParse = durationFlag().parse;
const argStringParse = String(Args.string().parse);

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

/** How the fast parser can read this flag's value, if it can at all. */
function kindOf(flag: OclifFlagLike): FastFlagKind {
  if (flag.relationships !== undefined || flag.combinable !== undefined || flag.deprecated)
    return 'unsupported';
  if (flag.type === 'boolean') {
    return String(flag.parse) === booleanParse && flag.env === undefined ? 'boolean' : 'unsupported';
  }
  if (flag.type !== 'option' || flag.multiple || flag.delimiter !== undefined || flag.allowStdin) {
    return 'unsupported';
  }
  if (flag.parse === integerParse) return 'integer';
  if (flag.parse === durationParse) return 'duration';
  if (String(flag.parse) === stringParse) return 'string';
  return 'unsupported';
}

function flagSpec(name: string, flag: OclifFlagLike): FastFlagSpec {
  // Checks that run, or values that appear, when the flag is not given: the fast parser does not
  // model them, so the command as a whole stays with oclif.
  if (flag.required || flag.exactlyOne !== undefined || flag.atLeastOne !== undefined) {
    throw new CommandNotFast(`--${name} is required or in a required group`);
  }
  const spec: FastFlagSpec = { kind: kindOf(flag) };
  if (flag.default !== undefined) {
    if (!['string', 'number', 'boolean'].includes(typeof flag.default)) {
      throw new CommandNotFast(`--${name} has a computed default`);
    }
    spec.default = flag.default as string | number | boolean;
  }
  if (typeof flag.env === 'string') spec.env = flag.env;
  if (typeof flag.char === 'string') spec.char = flag.char;
  // An alias that oclif warns about when used is left out: using it makes the flag unknown, so oclif
  // takes the command and prints the warning.
  if (!flag.deprecateAliases) {
    if (isStringList(flag.aliases) && flag.aliases.length > 0) spec.aliases = flag.aliases;
    if (isStringList(flag.charAliases) && flag.charAliases.length > 0) spec.charAliases = flag.charAliases;
  }
  if (flag.allowNo === true) spec.allowNo = true;
  if (flag.options !== undefined) {
    if (!isStringList(flag.options)) throw new CommandNotFast(`--${name} has options that are not strings`);
    spec.options = flag.options;
  }
  for (const relation of ['exclusive', 'dependsOn'] as const) {
    const list = flag[relation];
    if (list === undefined) continue;
    if (!isStringList(list)) throw new CommandNotFast(`--${name} has a conditional ${relation}`);
    spec[relation] = list;
  }
  if (spec.kind === 'integer') {
    if (typeof flag.min === 'number') spec.min = flag.min;
    if (typeof flag.max === 'number') spec.max = flag.max;
  }
  return spec;
}

/**
 * The fast parser's table for an oclif command class, from the command's own static flags (its
 * base flags first, as oclif aggregates them) and arguments; or why the fast path must not take
 * the command at all (a required flag, a computed default, an argument that is not a required
 * plain string, JSON output, a deprecated command).
 */
export function fastCommandSpec(command: CommandClassLike): { spec: FastCommandSpec } | { reason: string } {
  if (command.enableJsonFlag) return { reason: 'the command has a --json flag' };
  if (command.state === 'deprecated') return { reason: 'the command is deprecated' };
  const flags: Record<string, FastFlagSpec> = {};
  const args: string[] = [];
  try {
    for (const [name, flag] of Object.entries({ ...command.baseFlags, ...command.flags })) {
      flags[name] = flagSpec(name, flag as OclifFlagLike);
    }
    for (const [name, arg] of Object.entries(command.args ?? {})) {
      const a = arg as {
        required?: unknown;
        multiple?: unknown;
        options?: unknown;
        default?: unknown;
        parse?: unknown;
      };
      if (a.required !== true || a.multiple || a.options !== undefined || a.default !== undefined) {
        throw new CommandNotFast(`argument ${name} is not a required single value`);
      }
      if (String(a.parse) !== argStringParse) throw new CommandNotFast(`argument ${name} has its own parse`);
      args.push(name);
    }
  } catch (error) {
    if (error instanceof CommandNotFast) return { reason: error.message };
    throw error;
  }
  return { spec: { flags, args } };
}
