/** Exit code after Ctrl-C, as shells report a SIGINT death. */
export const interruptedExitCode = 130;

/** Exit code of a usage error (a bad flag or argument), as oclif's parser gives it. */
export const usageExitCode = 2;

/**
 * A mistake in how the command was called that only the command's own checks find (contradictory
 * flags, a malformed flag value): printed as oclif prints its parser's usage errors, one line that
 * points at the command's help, and exit code 2.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  /** The exit code the CLI ends with. */
  readonly exitCode = usageExitCode;
}

/** Removes what could be a credential from text that is about to be printed. */
export function redactCredentials(text: string): string {
  return text
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, '$1***@')
    .replace(/((?:authorization|proxy-authorization)\s*[:=]\s*)(?:(?:bearer|basic)\s+)?\S+/gi, '$1***')
    .replace(/([?&](?:access_token|token|password|secret)=)[^&\s]+/gi, '$1***');
}

/** Text on one line: line breaks and the spaces around them become one space. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** An error's message on one line, credentials removed: what the CLI prints of an error. */
export function errorMessage(error: unknown): string {
  const text = error instanceof Error ? error.message || error.name : String(error);
  return redactCredentials(oneLine(text));
}

/** One `Warning: …` line, credentials removed. */
export function warningLine(message: string): string {
  return `Warning: ${redactCredentials(oneLine(message))}\n`;
}

/** A credential flag with its value, as a parse error may quote it (`--src-creds=user:secret`). */
const secretFlagValue = /(--(?:(?:src|dest)-)?(?:creds|password|registry-token))=\S+/g;

/**
 * One line for a usage error: its first line (oclif appends the argument list and a hint on more
 * lines, and prints the whole help for some), the names of missing arguments, and where help is.
 */
export function usageErrorLine(error: Error, bin: string, commandId: string | undefined): string {
  const lines = error.message.split('\n');
  const [first = error.message] = lines;
  let line = first.replace(/:$/, '');
  // A failed flag relationship (exclusive, dependsOn) is a header line with the reasons below it,
  // which quote flag values: the reasons are the line, with secret values removed.
  if (/^The following errors? occurred:?$/.test(first)) {
    const reasons = lines
      .slice(1)
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('See more help'));
    if (reasons.length > 0) line = reasons.join('; ');
  }
  line = redactCredentials(line).replace(secretFlagValue, '$1=***');
  const args = (error as { args?: unknown }).args;
  if (line.startsWith('Missing') && Array.isArray(args)) {
    const names = args.map((a: { name?: string }) => a.name).filter(Boolean);
    if (names.length > 0) line += `: ${names.join(', ')}`;
  }
  const help = commandId ? `${bin} ${commandId.replaceAll(':', ' ')} --help` : `${bin} --help`;
  return `${line} (see "${help}")`;
}

/** The stack of an error and of each of its causes (and of an AggregateError's errors), for --debug. */
export function describeError(error: unknown): string {
  const lines: string[] = [];
  const seen = new Set<unknown>();
  const visit = (e: unknown, prefix: string) => {
    if (seen.has(e)) return;
    seen.add(e);
    if (e instanceof Error) {
      const code = (e as { code?: unknown }).code;
      lines.push(
        `${prefix}${e.stack ?? `${e.name}: ${e.message}`}${typeof code === 'string' ? ` [${code}]` : ''}`,
      );
      if (e instanceof AggregateError) for (const inner of e.errors) visit(inner, 'Including: ');
      if (e.cause !== undefined) visit(e.cause, 'Caused by: ');
    } else {
      lines.push(`${prefix}${String(e)}`);
    }
  };
  visit(error, '');
  return `${lines.join('\n')}\n`;
}

/** Why a command ended, besides the error itself: what {@link commandErrorReport} needs. */
export interface CommandErrorContext {
  /** The error is a usage error (a {@link UsageError}, or one of oclif's parser). */
  usage: boolean;
  /** --debug was given: add the stacks and causes. */
  debug: boolean;
  /** Ctrl-C aborted the command. */
  interrupted: boolean;
  /** --command-timeout expired, after this long (what the message names). */
  timedOutAfter?: string | undefined;
  /** The binary and the command id, for where a usage error points. */
  bin: string;
  commandId: string | undefined;
}

/**
 * What the CLI writes to stderr for the error that ended a command, and its exit code: one
 * `Error: …` line with credentials removed and exit 1; for a usage error the line points at the
 * help and the exit code is 2; after Ctrl-C `interrupted` and 130; after --command-timeout the
 * timeout. `--debug` adds the stack and the chain of causes.
 */
export function commandErrorReport(
  error: unknown,
  context: CommandErrorContext,
): { text: string; exitCode: number } {
  if (context.usage) {
    const usageError = error instanceof Error ? error : new Error(String(error));
    return {
      text: `Error: ${usageErrorLine(usageError, context.bin, context.commandId)}\n`,
      exitCode: usageExitCode,
    };
  }
  let message = errorMessage(error);
  let exitCode = 1;
  if (context.interrupted) {
    message = 'interrupted';
    exitCode = interruptedExitCode;
  } else if (context.timedOutAfter !== undefined) {
    message = `command timed out after ${context.timedOutAfter}`;
  }
  let text = `Error: ${message}\n`;
  if (context.debug) text += redactCredentials(describeError(error));
  return { text, exitCode };
}
