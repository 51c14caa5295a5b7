import {
  type ImageReference,
  insecureAcceptAnythingPolicy,
  loadPolicy,
  PolicyContext,
  parseImageName,
  type SystemContext,
} from '@img/core';
import { formatGoDuration } from './duration.js';
import {
  commandErrorReport,
  errorMessage,
  interruptedExitCode,
  UsageError,
  warningLine,
} from './error-output.js';
import { retryIfNecessary } from './retry.js';

/** The longest delay a Node timer can hold. */
export const maxTimerMs = 2 ** 31 - 1;

/** The global flags every command takes (BaseCommand.baseFlags), as parsed. */
export interface GlobalFlags {
  debug?: boolean | undefined;
  policy?: string | undefined;
  'insecure-policy'?: boolean | undefined;
  'override-os'?: string | undefined;
  'override-arch'?: string | undefined;
  'override-variant'?: string | undefined;
  tmpdir?: string | undefined;
  'registries-conf'?: string | undefined;
  /** Milliseconds. */
  'command-timeout'?: number | undefined;
}

/** skopeo's `--retry-times` and `--retry-delay` (milliseconds), as parsed. */
export interface RetryFlags {
  'retry-times': number;
  'retry-delay'?: number | undefined;
}

/** The SystemContext the global flags describe (the same for both sides of a copy, as in skopeo). */
export function systemContextFromFlags(flags: GlobalFlags): SystemContext {
  const ctx: SystemContext = {};
  if (flags['override-os']) ctx.osChoice = flags['override-os'];
  if (flags['override-arch']) ctx.architectureChoice = flags['override-arch'];
  if (flags['override-variant']) ctx.variantChoice = flags['override-variant'];
  if (flags.tmpdir) ctx.tmpDir = flags.tmpdir;
  return ctx;
}

/** Options of {@link CommandSession}. */
export interface CommandSessionOptions {
  /**
   * Makes the transport of an image name available to parseImageName: the built-in package that
   * provides `transportName`, else (a plugin's name, an unknown one, or none) every transport.
   */
  loadTransports: (transportName: string | undefined) => Promise<void>;
  /** The binary (`img`) and the command id (`copy`), for where a usage error points. */
  bin: string;
  commandId: string | undefined;
}

/**
 * What one run of a command shares, without oclif, so that the oclif command and the fast path
 * (fast-path/) behave the same: the abort signal for `--command-timeout` and Ctrl-C (a second
 * Ctrl-C exits at once with 130), the SystemContext and trust policy the global flags ask for, image
 * names parsed once their transport is loaded, retries with one warning line each, and the error
 * the command ends with, printed as one line.
 *
 * @example
 * const session = new CommandSession(flags, { loadTransports, bin: 'img', commandId: 'copy' });
 * session.start();
 * try {
 *   await work(session);
 * } catch (error) {
 *   process.exitCode = session.fail(error);
 * } finally {
 *   session.stop();
 * }
 */
export class CommandSession {
  /** Aborted on --command-timeout and on Ctrl-C; pass it to every library call. */
  readonly signal: AbortSignal;
  private readonly interrupt = new AbortController();
  private readonly timeoutSignal: AbortSignal | undefined;
  private readonly onSigint = () => {
    if (this.interrupt.signal.aborted) process.exit(interruptedExitCode);
    this.interrupt.abort(new Error('interrupted'));
  };

  constructor(
    readonly flags: GlobalFlags,
    private readonly options: CommandSessionOptions,
  ) {
    const timeout = flags['command-timeout'];
    const signals = [this.interrupt.signal];
    // Node's timers hold at most 2^31-1 ms (~24.8 days); a longer deadline (Go allows ~290 years,
    // and scripts write 9999h for "none") sets no timer rather than one that fires at once.
    if (timeout && timeout <= maxTimerMs) {
      this.timeoutSignal = AbortSignal.timeout(Math.ceil(timeout));
      signals.push(this.timeoutSignal);
    }
    this.signal = signals.length === 1 ? this.interrupt.signal : AbortSignal.any(signals);
  }

  /** Starts listening for Ctrl-C. */
  start(): void {
    process.on('SIGINT', this.onSigint);
  }

  /** Stops listening for Ctrl-C. */
  stop(): void {
    process.removeListener('SIGINT', this.onSigint);
  }

  /** The SystemContext for one side of an operation, from the global flags. */
  systemContext(): SystemContext {
    return systemContextFromFlags(this.flags);
  }

  /** The policy to check images against: --insecure-policy, else the --policy file or the default ones. */
  async policyContext(): Promise<PolicyContext> {
    if (this.flags['insecure-policy']) return new PolicyContext(insecureAcceptAnythingPolicy);
    return new PolicyContext(await loadPolicy({ path: this.flags.policy, signal: this.signal }));
  }

  /** Parses `transport:reference` once its transport (built-in, else any plugin's) is registered. */
  async parseImageName(name: string): Promise<ImageReference> {
    const colon = name.indexOf(':');
    await this.options.loadTransports(colon > 0 ? name.slice(0, colon) : undefined);
    return parseImageName(name);
  }

  /**
   * Runs `attempt`, again after failures that may pass, as `--retry-times`/`--retry-delay` say,
   * with one warning line per retry naming `what` failed.
   */
  retrying<R>(what: string, retry: RetryFlags, attempt: () => Promise<R>): Promise<R> {
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
  warnLine(message: string): void {
    process.stderr.write(warningLine(message));
  }

  /**
   * Writes the error that ended the command to stderr (see commandErrorReport) and returns the exit
   * code. `usage` marks a usage error found by a parser that does not throw {@link UsageError}.
   */
  fail(error: unknown, usage = false): number {
    const { text, exitCode } = commandErrorReport(error, {
      usage: usage || error instanceof UsageError,
      debug: this.flags.debug === true,
      interrupted: this.interrupt.signal.aborted,
      timedOutAfter: this.timeoutSignal?.aborted
        ? formatGoDuration(this.flags['command-timeout'] ?? 0)
        : undefined,
      bin: this.options.bin,
      commandId: this.options.commandId,
    });
    process.stderr.write(text);
    return exitCode;
  }
}
