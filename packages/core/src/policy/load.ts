import { open } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { AbortedError, InvalidPolicyError } from '../errors.js';
import { parsePolicy } from './parse.js';
import type { Policy } from './policy.js';

/** Where the system-wide policy lives unless a distribution moved it. */
const defaultSystemPath = '/etc/containers/policy.json';

/** A policy is a small hand-written file; anything larger is not one (e.g. `--policy /dev/zero`). */
const maxPolicyBytes = 4 * 1024 * 1024;

/** Options of {@link loadPolicy}. */
export interface LoadPolicyOptions {
  /** An explicit policy file (skopeo's `--policy`); when set, nothing else is tried. */
  path?: string | undefined;
  /** The home directory whose `.config/containers/policy.json` is tried first; default `os.homedir()`. */
  home?: string | undefined;
  /** The system-wide file tried last; default `/etc/containers/policy.json` (tests point it elsewhere). */
  systemPath?: string | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Reads and parses the signature policy as skopeo finds it: the explicit `path` if given, else
 * `$HOME/.config/containers/policy.json` if it exists, else `/etc/containers/policy.json`.
 * Throws InvalidPolicyError when the file is missing (naming the paths tried), unreadable or invalid.
 *
 * @example
 * const policy = await loadPolicy({ path: flags.policy, signal });
 * await copyImage(destRef, srcRef, { policy: new PolicyContext(policy) });
 */
export async function loadPolicy(options: LoadPolicyOptions = {}): Promise<Policy> {
  const { signal } = options;
  if (options.path !== undefined) {
    const bytes = await readPolicyFile(options.path, signal);
    if (bytes === undefined) {
      throw new InvalidPolicyError(
        `policy file "${options.path}" does not exist: pass --policy with an existing file, or --insecure-policy to accept any image`,
      );
    }
    return parsePolicy(bytes, options.path);
  }
  const userPath = join(options.home ?? homedir(), '.config', 'containers', 'policy.json');
  const systemPath = options.systemPath ?? defaultSystemPath;
  for (const path of [userPath, systemPath]) {
    const bytes = await readPolicyFile(path, signal);
    if (bytes !== undefined) return parsePolicy(bytes, path);
  }
  throw new InvalidPolicyError(
    `no policy file found (tried "${userPath}" and "${systemPath}"): pass --policy with a policy file, or --insecure-policy to accept any image`,
  );
}

/** The file's bytes, or undefined when it does not exist; other failures throw InvalidPolicyError. */
async function readPolicyFile(
  path: string,
  signal: AbortSignal | undefined,
): Promise<Uint8Array | undefined> {
  if (signal?.aborted) throw new AbortedError({ cause: signal.reason });
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ENOTDIR: a component of the path is a file (e.g. ~/.config is one), so the policy is not there either.
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new InvalidPolicyError(`cannot read policy file "${path}": ${(err as Error).message}`, {
      cause: err,
    });
  }
  try {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      if (signal?.aborted) throw new AbortedError({ cause: signal.reason });
      const chunk = new Uint8Array(64 * 1024);
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > maxPolicyBytes) {
        throw new InvalidPolicyError(
          `invalid policy in "${path}": larger than the ${maxPolicyBytes}-byte limit`,
        );
      }
      chunks.push(chunk.subarray(0, bytesRead));
    }
    return Buffer.concat(chunks);
  } catch (err) {
    if (err instanceof InvalidPolicyError || err instanceof AbortedError) throw err;
    throw new InvalidPolicyError(`cannot read policy file "${path}": ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    await handle.close();
  }
}
