/**
 * The global flags as `bin/run.js` must know them before oclif is loaded: those that take a value
 * and those that do not. base-command.test.ts checks this against BaseCommand.baseFlags.
 */
export const globalFlagNames = {
  boolean: ['debug', 'insecure-policy'],
  valued: [
    'policy',
    'override-os',
    'override-arch',
    'override-variant',
    'tmpdir',
    'registries-conf',
    'command-timeout',
  ],
} as const;

/**
 * Moves the global flags a skopeo user writes before the command (`img --debug copy a b`) to
 * after the command and its leading arguments (`img copy a b --debug`), where oclif parses them.
 * Stops at the first token that is not a known global flag; returns argv unchanged when there is
 * no command after the flags, so `img --debug --help` still reaches oclif as typed.
 */
export function hoistGlobalFlags(argv: readonly string[], names = globalFlagNames): string[] {
  const booleans = new Set<string>(names.boolean);
  const valued = new Set<string>(names.valued);
  const hoisted: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i]!;
    if (!arg.startsWith('--') || arg === '--') break;
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (booleans.has(name)) {
      hoisted.push(arg);
      i += 1;
    } else if (valued.has(name)) {
      if (eq >= 0) {
        hoisted.push(arg);
        i += 1;
      } else {
        if (i + 1 >= argv.length) break;
        hoisted.push(arg, argv[i + 1]!);
        i += 2;
      }
    } else {
      break;
    }
  }
  if (hoisted.length === 0 || i >= argv.length || argv[i]!.startsWith('-')) return [...argv];
  // The command id (one word, or several with the space topic separator) and its positional
  // arguments run up to the next flag or `--`; the global flags go right after them.
  let end = i;
  while (end < argv.length && !argv[end]!.startsWith('-')) end++;
  return [...argv.slice(i, end), ...hoisted, ...argv.slice(end)];
}

/**
 * The boolean flags that may be written with a value, as Go's flag package (and so skopeo) accepts
 * them: negatable ones (`--tls-verify=false`) and plain ones (`--no-creds=true`).
 */
export const booleanValueFlagNames: { negatable: readonly string[]; plain: readonly string[] } = {
  negatable: ['tls-verify', 'src-tls-verify', 'dest-tls-verify'],
  plain: ['no-creds', 'src-no-creds', 'dest-no-creds', 'password-stdin', 'get-login', 'all', 'verbose'],
};

/**
 * Rewrites `--flag=true|false` (any case, and Go's 1/0, t/f) for the known boolean flags into what
 * oclif parses: `--flag`, `--no-flag` for negatable ones, nothing for a plain flag set to false.
 * Leaves everything after `--` alone.
 */
export function normalizeBooleanValues(argv: readonly string[], names = booleanValueFlagNames): string[] {
  const negatable = new Set(names.negatable);
  const plain = new Set(names.plain);
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const match = /^--([a-z0-9-]+)=(.*)$/i.exec(arg);
    const name = match?.[1];
    const value = parseGoBool(match?.[2]);
    if (name === undefined || value === undefined || !(negatable.has(name) || plain.has(name))) {
      out.push(arg);
    } else if (value) {
      out.push(`--${name}`);
    } else if (negatable.has(name)) {
      out.push(`--no-${name}`);
    }
  }
  return out;
}

/** Go's strconv.ParseBool. */
function parseGoBool(text: string | undefined): boolean | undefined {
  if (text === undefined) return undefined;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return undefined;
}
