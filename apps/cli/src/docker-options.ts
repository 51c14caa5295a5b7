import type { SystemContext } from '@img/core';
import type { DockerTransportOptions } from '@img/transport-docker';
import { UsageError } from './error-output.js';

/** Which side a family of registry flags is for: one image (`inspect`), or a copy's source or destination. */
export type DockerFlagPrefix = '' | 'src-' | 'dest-';

/** The parsed flags `dockerOptionsFromFlags` reads; any command's flags object fits. */
export type ParsedDockerFlags = Readonly<Record<string, unknown>>;

function stringFlag(flags: ParsedDockerFlags, name: string): string | undefined {
  const value = flags[name];
  return typeof value === 'string' ? value : undefined;
}

/**
 * Splits skopeo's `USERNAME[:PASSWORD]` at the first colon. skopeo prompts for a missing password on
 * a terminal; img asks for it to be written out, so scripts never hang on a prompt.
 */
export function parseCreds(flagName: string, value: string): { username: string; password: string } {
  if (value === '') throw new UsageError(`invalid --${flagName}: credentials must not be empty`);
  const colon = value.indexOf(':');
  if (colon === 0) throw new UsageError(`invalid --${flagName}: the username must not be empty`);
  if (colon < 0 || colon === value.length - 1)
    throw new UsageError(`invalid --${flagName}: a password is required (USERNAME:PASSWORD)`);
  return { username: value.slice(0, colon), password: value.slice(colon + 1) };
}

/**
 * The docker:// transport options one side's flags ask for, to put in that side's
 * `SystemContext.transportOptions.docker`. Reads the prefixed flags, the shared `--authfile` (when
 * the prefixed one is not given), the global `--registries-conf`, and `--retry-times` /
 * `--retry-delay` (a retry count of 0, the flag's default, leaves the transport's own default).
 * Fails as skopeo does on contradictory flags that oclif's flag relations do not catch.
 */
export function dockerOptionsFromFlags(
  flags: ParsedDockerFlags,
  prefix: DockerFlagPrefix,
): DockerTransportOptions {
  const name = (n: string) => `${prefix}${n}`;
  const options: DockerTransportOptions = {};
  const creds = stringFlag(flags, name('creds'));
  const username = stringFlag(flags, name('username'));
  const password = stringFlag(flags, name('password'));
  const noCreds = flags[name('no-creds')] === true;
  if (creds !== undefined && noCreds)
    throw new UsageError(`--${name('creds')} and --${name('no-creds')} cannot be used together`);
  if (creds !== undefined && username !== undefined)
    throw new UsageError(`--${name('creds')} and --${name('username')} cannot be used together`);
  if ((username === undefined) !== (password === undefined)) {
    throw new UsageError(
      username === undefined
        ? `--${name('username')} is required with --${name('password')}`
        : `--${name('password')} is required with --${name('username')}`,
    );
  }
  if (creds !== undefined) options.credentials = parseCreds(name('creds'), creds);
  else if (username !== undefined && password !== undefined) options.credentials = { username, password };
  const token = stringFlag(flags, name('registry-token'));
  if (token !== undefined) options.registryToken = token;
  if (noCreds) {
    options.noCredentials = true;
    delete options.credentials;
  }
  const authFile = stringFlag(flags, name('authfile')) ?? stringFlag(flags, 'authfile');
  if (authFile !== undefined) options.authFile = authFile;
  const tlsVerify = flags[name('tls-verify')];
  if (typeof tlsVerify === 'boolean') options.tlsVerify = tlsVerify;
  const certDir = stringFlag(flags, name('cert-dir'));
  if (certDir !== undefined) options.certDir = certDir;
  const registriesConf = stringFlag(flags, 'registries-conf');
  if (registriesConf !== undefined) options.registriesConfPath = registriesConf;
  const retryTimes = flags['retry-times'];
  if (typeof retryTimes === 'number' && retryTimes > 0) options.retryTimes = retryTimes;
  const retryDelay = flags['retry-delay'];
  if (typeof retryDelay === 'number') options.retryDelayMs = retryDelay;
  return options;
}

/** The SystemContext of one side with the docker:// transport's options under `transportOptions.docker`, when any is set. */
export function withDockerOptions(ctx: SystemContext, docker: DockerTransportOptions): SystemContext {
  if (Object.keys(docker).length === 0) return { ...ctx };
  return { ...ctx, transportOptions: { ...ctx.transportOptions, docker } };
}
