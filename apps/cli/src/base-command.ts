import {
  type ImageReference,
  insecureAcceptAnythingPolicy,
  loadPolicy,
  PolicyContext,
  parseImageName,
  type SystemContext,
} from '@img/core';
import { Command, Errors, Flags, type Interfaces } from '@oclif/core';
import { formatGoDuration, parseGoDuration } from './duration.js';
import { retryIfNecessary } from './retry.js';
import { loadTransports } from './transports.js';

/** The longest delay a Node timer can hold. */
export const maxTimerMs = 2 ** 31 - 1;
/** A flag taking a Go duration (`30s`, `1m30s`), parsed to milliseconds. */
export const durationFlag = Flags.custom<number>({
  helpValue: 'DURATION',
  async parse(input) {
    let ms: number;
    try {
      ms = parseGoDuration(input);
    } catch (error) {
      throw new Errors.CLIError((error as Error).message);
    }
    if (ms < 0) throw new Errors.CLIError(`invalid duration "${input}": must not be negative`);
    return ms;
  },
});

/**
 * skopeo's `--retry-times` and `--retry-delay`, for commands that talk to servers. `subject` names
 * what is retried in the help ("the copy"); the default says nothing more.
 */
export function retryFlags(subject?: string) {
  return {
    'retry-times': Flags.integer({
      description: `Retry ${subject ? `${subject} ` : ''}this many times on a failure that may pass.`,
      min: 0,
      default: 0,
      helpValue: 'N',
    }),
    'retry-delay': durationFlag({
      description: 'Wait this long between retries (default: 1s, 2s, 4s… doubling).',
    }),
  };
}

/** The flags of a command class, the global ones included. */
export type CommandFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof BaseCommand)['baseFlags'] & T['flags']
>;
/** The arguments of a command class. */
export type CommandArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>;

const globalGroup = 'GLOBAL';

/** Exit code after Ctrl-C, as shells report a SIGINT death. */
const interruptedExitCode = 130;

/** Removes what could be a credential from text that is about to be printed. */
export function redactCredentials(text: string): string {
  return text
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, '$1***@')
    .replace(/((?:authorization|proxy-authorization)\s*[:=]\s*)(?:(?:bearer|basic)\s+)?\S+/gi, '$1***')
    .replace(/([?&](?:access_token|token|password|secret)=)[^&\s]+/gi, '$1***');
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** An error's message on one line, credentials removed: what the CLI prints of an error. */
export function errorMessage(error: unknown): string {
  const text = error instanceof Error ? error.message || error.name : String(error);
  return redactCredentials(oneLine(text));
}

/**
 * The base of every `img` command: skopeo's global flags (which `bin/run.js` also accepts before
 * the command), the abort signal for `--command-timeout` and Ctrl-C, the SystemContext and policy
 * built from the flags, and the error path: one `Error: …` line on stderr and exit code 1 (oclif's
 * usage errors keep theirs, 2); `--debug` adds the stack and the chain of causes.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override baseFlags = {
    debug: Flags.boolean({
      description: 'Print the stack and the causes of an error.',
      helpGroup: globalGroup,
    }),
    policy: Flags.string({
      description:
        'Trust policy file (default: ~/.config/containers/policy.json, then /etc/containers/policy.json).',
      helpValue: 'PATH',
      helpGroup: globalGroup,
    }),
    'insecure-policy': Flags.boolean({
      description: 'Accept any image, without reading a trust policy.',
      helpGroup: globalGroup,
    }),
    'override-os': Flags.string({
      description: 'Use OS instead of the running OS to choose from manifest lists.',
      helpValue: 'OS',
      helpGroup: globalGroup,
    }),
    'override-arch': Flags.string({
      description: 'Use ARCH instead of the machine architecture to choose from manifest lists.',
      helpValue: 'ARCH',
      helpGroup: globalGroup,
    }),
    'override-variant': Flags.string({
      description: 'Use VARIANT instead of the machine CPU variant to choose from manifest lists.',
      helpValue: 'VARIANT',
      helpGroup: globalGroup,
    }),
    tmpdir: Flags.string({
      description: 'Directory for big temporary files (archives, spooled streams).',
      helpValue: 'PATH',
      helpGroup: globalGroup,
    }),
    'registries-conf': Flags.string({
      description: 'Read registry settings (mirrors, insecure, blocked) from this registries.conf.',
      helpValue: 'PATH',
      helpGroup: globalGroup,
    }),
    'command-timeout': durationFlag({
      description: 'Give up on the whole command after this long (Go duration: 30s, 1m30s).',
      helpGroup: globalGroup,
    }),
  };

  /** The parsed flags, global ones included. */
  protected flags!: CommandFlags<T>;
  /** The parsed arguments. */
  protected args!: CommandArgs<T>;
  /** Aborted on --command-timeout and on Ctrl-C; pass it to every library call. */
  protected signal!: AbortSignal;

  private timeoutSignal: AbortSignal | undefined;
  private readonly interrupt = new AbortController();
  private readonly onSigint = () => {
    if (this.interrupt.signal.aborted) process.exit(interruptedExitCode);
    this.interrupt.abort(new Error('interrupted'));
  };

  override async init(): Promise<void> {
    await super.init();
    const { args, flags } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (this.ctor as typeof BaseCommand).baseFlags,
      args: this.ctor.args,
      strict: this.ctor.strict,
    });
    this.flags = flags as CommandFlags<T>;
    this.args = args as CommandArgs<T>;
    const timeout = this.flags['command-timeout'];
    const signals = [this.interrupt.signal];
    // Node's timers hold at most 2^31-1 ms (~24.8 days); a longer deadline (Go allows ~290 years,
    // and scripts write 9999h for "none") sets no timer rather than one that fires at once.
    if (timeout && timeout <= maxTimerMs) {
      this.timeoutSignal = AbortSignal.timeout(Math.ceil(timeout));
      signals.push(this.timeoutSignal);
    }
    this.signal = signals.length === 1 ? this.interrupt.signal : AbortSignal.any(signals);
    process.on('SIGINT', this.onSigint);
  }

  /** The SystemContext for one side of an operation, from the global flags. */
  protected systemContext(): SystemContext {
    return systemContextFromFlags(this.flags);
  }

  /** The policy to check images against: --insecure-policy, else the --policy file or the default ones. */
  protected async policyContext(): Promise<PolicyContext> {
    if (this.flags['insecure-policy']) return new PolicyContext(insecureAcceptAnythingPolicy);
    return new PolicyContext(await loadPolicy({ path: this.flags.policy, signal: this.signal }));
  }

  /** Parses `transport:reference` once its transport (built-in, else any plugin's) is registered. */
  protected async parseImageName(name: string): Promise<ImageReference> {
    const colon = name.indexOf(':');
    await loadTransports(this.config, undefined, colon > 0 ? name.slice(0, colon) : undefined);
    return parseImageName(name);
  }

  /**
   * Runs `attempt`, again after failures that may pass, as `--retry-times`/`--retry-delay` say (see
   * retryFlags), with one warning line per retry naming `what` failed.
   */
  protected retrying<R>(
    what: string,
    retry: { 'retry-times': number; 'retry-delay'?: number | undefined },
    attempt: () => Promise<R>,
  ): Promise<R> {
    return retryIfNecessary(attempt, {
      times: retry['retry-times'],
      delayMs: retry['retry-delay'],
      signal: this.signal,
      onRetry: (error, n, delayMs) => {
        this.warnLine(
          `${what} failed, retrying in ${formatGoDuration(delayMs)} (${n}/${retry['retry-times']}): ${errorMessage(error)}`,
        );
      },
    });
  }

  /** Writes one `Warning: …` line to stderr. */
  protected warnLine(message: string): void {
    process.stderr.write(`Warning: ${redactCredentials(oneLine(message))}\n`);
  }

  /** Writes text to stdout as is (no newline added). */
  protected write(text: string | Uint8Array): void {
    process.stdout.write(text);
  }

  override async catch(error: Interfaces.CommandError): Promise<unknown> {
    // this.exit() stays oclif's; its parser's usage errors become one line and exit 2.
    if (error instanceof Errors.ExitError) throw error;
    if (error instanceof Errors.CLIError && error.oclif?.exit === 2) {
      process.stderr.write(`Error: ${usageErrorLine(error, this.config.bin, this.id)}\n`);
      // The parse did run (and failed): without this, oclif's development mode warns that it did not.
      this.parsed = true;
      process.exitCode = 2;
      return undefined;
    }
    const debug = this.flags?.debug ?? this.argv.includes('--debug');
    let message = errorMessage(error);
    let exitCode = 1;
    if (this.interrupt.signal.aborted) {
      message = 'interrupted';
      exitCode = interruptedExitCode;
    } else if (this.timeoutSignal?.aborted) {
      message = `command timed out after ${formatGoDuration(this.flags['command-timeout'] ?? 0)}`;
    }
    process.stderr.write(`Error: ${message}\n`);
    if (debug) process.stderr.write(redactCredentials(describeError(error)));
    process.exitCode = exitCode;
    return undefined;
  }

  override async finally(error: Error | undefined): Promise<unknown> {
    process.removeListener('SIGINT', this.onSigint);
    return super.finally(error);
  }
}

/**
 * One line for an oclif usage error: its first line (oclif appends the argument list and a hint on
 * more lines, and prints the whole help for some), the names of missing arguments, and where help is.
 */
export function usageErrorLine(error: Error, bin: string, commandId: string | undefined): string {
  const [first = error.message] = error.message.split('\n');
  let line = first.replace(/:$/, '');
  const args = (error as { args?: unknown }).args;
  if (line.startsWith('Missing') && Array.isArray(args)) {
    const names = args.map((a: { name?: string }) => a.name).filter(Boolean);
    if (names.length > 0) line += `: ${names.join(', ')}`;
  }
  const help = commandId ? `${bin} ${commandId.replaceAll(':', ' ')} --help` : `${bin} --help`;
  return `${line} (see "${help}")`;
}

/** The SystemContext the global flags describe (the same for both sides of a copy, as in skopeo). */
export function systemContextFromFlags(flags: {
  'override-os'?: string | undefined;
  'override-arch'?: string | undefined;
  'override-variant'?: string | undefined;
  tmpdir?: string | undefined;
}): SystemContext {
  const ctx: SystemContext = {};
  if (flags['override-os']) ctx.osChoice = flags['override-os'];
  if (flags['override-arch']) ctx.architectureChoice = flags['override-arch'];
  if (flags['override-variant']) ctx.variantChoice = flags['override-variant'];
  if (flags.tmpdir) ctx.tmpDir = flags.tmpdir;
  return ctx;
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
