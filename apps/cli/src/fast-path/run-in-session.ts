import { loadBuiltinTransport } from '../builtin-loader.js';
import { CommandSession, type GlobalFlags } from '../session.js';
import { scopedEnvKey } from './eligibility.js';

// As oclif's Command module does when loaded: a reader that closes stdout (`img … | head`) is not an error.
function ignoreClosedStdout(error: NodeJS.ErrnoException): void {
  if (error.code === 'EPIPE') return;
  throw error;
}

/**
 * Calls `listen` with process.stdout when something first uses it. Node creates the stream on first
 * access, which costs a few milliseconds that a command printing nothing need not pay; oclif's
 * listener is added at that moment instead of now.
 */
function whenStdoutCreated(listen: (stdout: NodeJS.WriteStream) => void): void {
  const lazy = Object.getOwnPropertyDescriptor(process, 'stdout');
  const create = lazy?.get;
  if (!lazy?.configurable || !create) {
    listen(process.stdout);
    return;
  }
  Object.defineProperty(process, 'stdout', {
    configurable: true,
    enumerable: lazy.enumerable ?? true,
    get() {
      Object.defineProperty(process, 'stdout', lazy);
      const stdout = create.call(process) as NodeJS.WriteStream;
      listen(stdout);
      return stdout;
    },
  });
}

/**
 * Runs a command's work as BaseCommand runs it under oclif, minus oclif: a CommandSession (abort
 * signal, Ctrl-C, retries) whose image names load built-in transports only, the error that ends the
 * work printed as one line and turned into the exit code.
 */
export async function runInSession(
  flags: GlobalFlags,
  names: { bin: string; commandId: string },
  work: (session: CommandSession) => Promise<unknown>,
): Promise<void> {
  whenStdoutCreated((stdout) => stdout.on('error', ignoreClosedStdout));
  // oclif's Command removes this variable before every run (it marks a redirected invocation).
  delete process.env[scopedEnvKey(names.bin, 'REDIRECTED')];
  const session = new CommandSession(flags, {
    loadTransports: (name) => loadBuiltinTransport(name),
    bin: names.bin,
    commandId: names.commandId,
  });
  session.start();
  try {
    await work(session);
  } catch (error) {
    process.exitCode = session.fail(error);
  } finally {
    session.stop();
  }
}
