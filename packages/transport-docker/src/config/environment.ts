import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ConfigEnvironment, DockerTransportOptions } from '../options.js';

/** A ConfigEnvironment with every default filled in. */
export interface ResolvedEnvironment {
  env: Readonly<Record<string, string | undefined>>;
  homeDir: string;
  systemConfigDir: string;
}

/** The environment configuration is read from: the options' override, else the process's. */
export function resolveEnvironment(
  options: Pick<DockerTransportOptions, 'environment'>,
): ResolvedEnvironment {
  const environment: ConfigEnvironment = options.environment ?? {};
  return {
    env: environment.env ?? process.env,
    homeDir: environment.homeDir ?? homedir(),
    systemConfigDir: environment.systemConfigDir ?? '/etc',
  };
}

/** An environment variable, treating an empty value as unset (as Go's os.Getenv callers do). */
export function envValue(env: ResolvedEnvironment, name: string): string | undefined {
  const value = env.env[name];
  return value === undefined || value === '' ? undefined : value;
}

/** `$XDG_CONFIG_HOME`, else `~/.config`. */
export function xdgConfigHome(env: ResolvedEnvironment): string {
  return envValue(env, 'XDG_CONFIG_HOME') ?? join(env.homeDir, '.config');
}
