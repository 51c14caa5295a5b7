import { spawn } from 'node:child_process';
import type { ResolvedEnvironment } from './environment.js';
import { CredentialHelperError } from './errors.js';

/** What a credential helper stores for one server: `username` `<token>` marks an identity token. */
export interface HelperCredentials {
  username: string;
  secret: string;
}

/** The helper's reply when it has nothing for the server (docker-credential-helpers' `ErrCredentialsNotFound`). */
const notFoundMessage = 'credentials not found in native keychain';

/** Helper output is small JSON; anything larger is cut off here rather than buffered without bound. */
const outputLimit = 1024 * 1024;

interface HelperRun {
  code: number;
  stdout: string;
  stderr: string;
}

function checkName(name: string, operation: CredentialHelperError['operation']): void {
  // The name becomes part of a program name looked up on PATH; a path would run anything.
  if (name === '' || /[/\\\0]/.test(name))
    throw new CredentialHelperError(name, operation, 'the helper name must be a plain word');
}

/** The first line of what a helper said about a failure, with the given secrets removed. */
function helperMessage(run: HelperRun, secrets: readonly string[]): string {
  let text = (run.stderr.trim() || run.stdout.trim()).split('\n')[0] ?? '';
  for (const secret of secrets) if (secret) text = text.split(secret).join('***');
  if (text.length > 200) text = `${text.slice(0, 200)}…`;
  return text ? `exit status ${run.code}: ${text}` : `exit status ${run.code}`;
}

function runHelper(
  name: string,
  operation: CredentialHelperError['operation'],
  input: string,
  env: ResolvedEnvironment,
  signal?: AbortSignal,
): Promise<HelperRun> {
  checkName(name, operation);
  const program = `docker-credential-${name}`;
  return new Promise((resolve, reject) => {
    const child = spawn(program, [operation], {
      env: env.env as NodeJS.ProcessEnv,
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(signal ? { signal } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      size += chunk.length;
      if (size <= outputLimit) into.push(chunk);
    };
    child.stdout.on('data', collect(out));
    child.stderr.on('data', collect(err));
    // A helper that exits without reading its input must not crash us with EPIPE.
    child.stdin.on('error', () => {});
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (error.name === 'AbortError') reject(error);
      else if (error.code === 'ENOENT')
        reject(new CredentialHelperError(name, operation, `${program} was not found on PATH`));
      else reject(new CredentialHelperError(name, operation, error.code ?? error.message));
    });
    child.on('close', (code) => {
      resolve({
        code: code ?? -1,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    child.stdin.end(input);
  });
}

function isNotFound(run: HelperRun): boolean {
  return run.stdout.trim() === notFoundMessage || run.stderr.trim() === notFoundMessage;
}

/**
 * Runs `docker-credential-<name> get` with `serverUrl` on stdin: the stored username and secret, or
 * undefined when the helper has none for that server.
 */
export async function helperGet(
  name: string,
  serverUrl: string,
  env: ResolvedEnvironment,
  signal?: AbortSignal,
): Promise<HelperCredentials | undefined> {
  const run = await runHelper(name, 'get', serverUrl, env, signal);
  if (run.code !== 0) {
    if (isNotFound(run)) return undefined;
    throw new CredentialHelperError(name, 'get', helperMessage(run, []));
  }
  let reply: unknown;
  try {
    reply = JSON.parse(run.stdout);
  } catch {
    // The output may be a secret: say only that it is not JSON.
    throw new CredentialHelperError(name, 'get', 'the reply is not JSON');
  }
  const { Username, Secret } = (reply ?? {}) as { Username?: unknown; Secret?: unknown };
  if (typeof Username !== 'string' || typeof Secret !== 'string')
    throw new CredentialHelperError(name, 'get', 'the reply lacks Username or Secret');
  if (Username === '' && Secret === '') return undefined;
  return { username: Username, secret: Secret };
}

/** Runs `docker-credential-<name> store` with `{ServerURL, Username, Secret}` on stdin. */
export async function helperStore(
  name: string,
  serverUrl: string,
  credentials: HelperCredentials,
  env: ResolvedEnvironment,
  signal?: AbortSignal,
): Promise<void> {
  const input = JSON.stringify({
    ServerURL: serverUrl,
    Username: credentials.username,
    Secret: credentials.secret,
  });
  const run = await runHelper(name, 'store', input, env, signal);
  if (run.code !== 0)
    throw new CredentialHelperError(name, 'store', helperMessage(run, [credentials.secret]));
}

/** Runs `docker-credential-<name> erase` with `serverUrl` on stdin; false if the helper had nothing for it. */
export async function helperErase(
  name: string,
  serverUrl: string,
  env: ResolvedEnvironment,
  signal?: AbortSignal,
): Promise<boolean> {
  const run = await runHelper(name, 'erase', serverUrl, env, signal);
  if (run.code === 0) return true;
  if (isNotFound(run)) return false;
  throw new CredentialHelperError(name, 'erase', helperMessage(run, []));
}
