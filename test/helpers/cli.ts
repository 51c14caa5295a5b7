import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runProgram } from '@img/testing';

/** The repository root. */
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
/** The built `img` binary. */
export const imgBin = join(repoRoot, 'apps/cli/bin/run.js');

export type { RunResult } from '@img/testing';
/** Runs a program to completion, capturing its output. */
export const run = runProgram;

/** A temp directory per test file, with `img` run in an isolated home and data dir. */
export class Sandbox {
  private constructor(readonly dir: string) {}

  static async create(): Promise<Sandbox> {
    return new Sandbox(await mkdtemp(join(tmpdir(), 'img-e2e-')));
  }

  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  env(): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      HOME: this.path('home'),
      XDG_CONFIG_HOME: this.path('home/.config'),
      XDG_DATA_HOME: this.path('home/.local/share'),
      XDG_CACHE_HOME: this.path('home/.cache'),
      XDG_RUNTIME_DIR: this.path('run'),
      IMG_DATA_DIR: this.path('img-data'),
      // As root the blob-info cache would be the machine's (/var/lib/containers/cache): keep it per sandbox.
      IMG_BLOB_CACHE_DIR: this.path('blob-cache'),
      TMPDIR: tmpdir(),
    };
  }

  /** Runs the built `img` with the sandbox's environment. */
  img(...args: string[]): Promise<RunResult> {
    return run(process.execPath, [imgBin, ...args], { env: this.env() });
  }

  async cleanup(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Runs skopeo with a permissive policy (it has no policy file in a sandbox). */
export function skopeo(...args: string[]): Promise<RunResult> {
  return run('skopeo', ['--insecure-policy', ...args]);
}
