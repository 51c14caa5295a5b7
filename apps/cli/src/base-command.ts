import type { ImageReference, PolicyContext, SystemContext } from '@img/core';
import { Command, Errors, Flags, type Interfaces } from '@oclif/core';
import { parseGoDuration } from './duration.js';
import { commandErrorReport } from './error-output.js';
import { CommandSession, type RetryFlags } from './session.js';
import { loadTransports } from './transports.js';

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

/**
 * The base of every `img` command: skopeo's global flags (which `bin/run.js` also accepts before
 * the command), and, through a {@link CommandSession} that the fast path (fast-path/) uses too, the
 * abort signal for `--command-timeout` and Ctrl-C, the SystemContext and policy built from the
 * flags, and the error path: one `Error: …` line on stderr and exit code 1 (usage errors, oclif's
 * and `UsageError`, 2); `--debug` adds the stack and the chain of causes.
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
  private runSession: CommandSession | undefined;

  /** The run's signal, policy, SystemContext, retries and error output (shared with the fast path). */
  protected get session(): CommandSession {
    if (!this.runSession) throw new Error(`${this.id ?? 'command'}: used before init()`);
    return this.runSession;
  }

  /** Aborted on --command-timeout and on Ctrl-C; pass it to every library call. */
  protected get signal(): AbortSignal {
    return this.session.signal;
  }

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
    this.runSession = new CommandSession(this.flags, {
      loadTransports: (name) => loadTransports(this.config, undefined, name),
      bin: this.config.bin,
      commandId: this.id,
    });
    this.runSession.start();
  }

  /** The SystemContext for one side of an operation, from the global flags. */
  protected systemContext(): SystemContext {
    return this.session.systemContext();
  }

  /** The policy to check images against: --insecure-policy, else the --policy file or the default ones. */
  protected policyContext(): Promise<PolicyContext> {
    return this.session.policyContext();
  }

  /** Parses `transport:reference` once its transport (built-in, else any plugin's) is registered. */
  protected parseImageName(name: string): Promise<ImageReference> {
    return this.session.parseImageName(name);
  }

  /**
   * Runs `attempt`, again after failures that may pass, as `--retry-times`/`--retry-delay` say (see
   * retryFlags), with one warning line per retry naming `what` failed.
   */
  protected retrying<R>(what: string, retry: RetryFlags, attempt: () => Promise<R>): Promise<R> {
    return this.session.retrying(what, retry, attempt);
  }

  /** Writes one `Warning: …` line to stderr. */
  protected warnLine(message: string): void {
    this.session.warnLine(message);
  }

  /** Writes text to stdout as is (no newline added). */
  protected write(text: string | Uint8Array): void {
    process.stdout.write(text);
  }

  override async catch(error: Interfaces.CommandError): Promise<unknown> {
    // this.exit() stays oclif's; its parser's usage errors become one line and exit 2.
    if (error instanceof Errors.ExitError) throw error;
    const usage = error instanceof Errors.CLIError && error.oclif?.exit === 2;
    // The parse did run (and failed): without this, oclif's development mode warns that it did not.
    if (usage) this.parsed = true;
    if (this.runSession) {
      process.exitCode = this.runSession.fail(error, usage);
      return undefined;
    }
    // The parse failed, so there are no flags to read --debug from.
    const { text, exitCode } = commandErrorReport(error, {
      usage,
      debug: this.argv.includes('--debug'),
      interrupted: false,
      bin: this.config.bin,
      commandId: this.id,
    });
    process.stderr.write(text);
    process.exitCode = exitCode;
    return undefined;
  }

  override async finally(error: Error | undefined): Promise<unknown> {
    this.runSession?.stop();
    return super.finally(error);
  }
}
