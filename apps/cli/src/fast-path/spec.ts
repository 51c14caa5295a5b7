/**
 * How the fast parser reads a flag's value, one kind per oclif flag builder img uses: `boolean`
 * (Flags.boolean), `string` (Flags.string), `integer` (Flags.integer, with `min`/`max`),
 * `duration` (base-command's durationFlag: a Go duration, in milliseconds). `unsupported`: a flag
 * whose parsing or checks the generator does not know; when it gets a value (given, from its
 * environment variable, or a default) the fast path leaves the command to oclif.
 */
export type FastFlagKind = 'boolean' | 'string' | 'integer' | 'duration' | 'unsupported';

/** One flag of a command as the fast parser knows it, generated from the oclif flag at build time. */
export interface FastFlagSpec {
  kind: FastFlagKind;
  /** The single-letter form (`-q`). */
  char?: string | undefined;
  /** Other long names (`--screds`). */
  aliases?: readonly string[] | undefined;
  /** Other single-letter names. */
  charAliases?: readonly string[] | undefined;
  /** A boolean that also takes `--no-NAME`. */
  allowNo?: boolean | undefined;
  /** The values an option flag accepts. */
  options?: readonly string[] | undefined;
  /** The value when the flag is not given (oclif does not parse or check it). */
  default?: string | number | boolean | undefined;
  /** The environment variable that gives the value when the flag is not. */
  env?: string | undefined;
  /** Flags that must not have a value (other than a default) with this one. */
  exclusive?: readonly string[] | undefined;
  /** Flags that must have a value when this one has. */
  dependsOn?: readonly string[] | undefined;
  /** Bounds of an integer flag. */
  min?: number | undefined;
  max?: number | undefined;
}

/**
 * A command the fast path can parse: its flags (the global ones included, as oclif aggregates them)
 * and its positional arguments, in order, every one a required plain string.
 */
export interface FastCommandSpec {
  flags: Readonly<Record<string, FastFlagSpec>>;
  args: readonly string[];
}

/** The specs of every command the fast path may take, by command id. */
export type FastCommandSpecs = Readonly<Record<string, FastCommandSpec>>;

/** What the build gives the fast path: the CLI's names (from package.json) and the command specs. */
export interface FastPathManifest {
  /** The binary (`img`): usage errors point at `img copy --help`; oclif's env vars start `IMG_`. */
  bin: string;
  /** The directory name under the XDG data home where oclif keeps user plugins (`img`). */
  dirname: string;
  /** The flags that make oclif print help wherever they are (`--help` and package.json's additionalHelpFlags). */
  helpFlags: readonly string[];
  commands: FastCommandSpecs;
}
