import type { SystemContext } from '@img/core';
import type { DockerTransportOptions } from '@img/transport-docker';
import { Errors, Flags } from '@oclif/core';

/** Which side a family of registry flags is for: one image (`inspect`), or a copy's source or destination. */
export type DockerFlagPrefix = '' | 'src-' | 'dest-';

const sides: Record<DockerFlagPrefix, string> = {
  '': 'the registry',
  'src-': 'the source registry',
  'dest-': 'the destination registry',
};

function unprefixedDockerFlags(prefix: DockerFlagPrefix) {
  const registry = sides[prefix];
  const p = (name: string) => `${prefix}${name}`;
  return {
    creds: Flags.string({
      description: `Use USERNAME[:PASSWORD] to access ${registry}.`,
      helpValue: 'USERNAME[:PASSWORD]',
      exclusive: [p('no-creds'), p('username'), p('password')],
      // skopeo copy's old spellings, kept hidden as skopeo keeps them.
      ...(prefix === 'src-' ? { aliases: ['screds'] } : prefix === 'dest-' ? { aliases: ['dcreds'] } : {}),
    }),
    username: Flags.string({
      description: `Username to access ${registry} (with --${p('password')}).`,
      helpValue: 'USERNAME',
      dependsOn: [p('password')],
      exclusive: [p('no-creds')],
    }),
    password: Flags.string({
      description: `Password to access ${registry} (with --${p('username')}).`,
      helpValue: 'PASSWORD',
      dependsOn: [p('username')],
    }),
    'no-creds': Flags.boolean({
      description: `Access ${registry} anonymously, ignoring every stored credential.`,
    }),
    'registry-token': Flags.string({
      description: `Send this bearer token to ${registry} as it is.`,
      helpValue: 'TOKEN',
    }),
    authfile: Flags.string({
      description: `Read credentials for ${registry} from this auth.json (default: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json, ~/.docker/config.json).`,
      helpValue: 'PATH',
    }),
    'tls-verify': Flags.boolean({
      description: `Require HTTPS and verify certificates for ${registry} (default: true, unless registries.conf marks it insecure; --${p('tls-verify')}=false also allows plain HTTP).`,
      allowNo: true,
    }),
    'cert-dir': Flags.string({
      description: `Use the certificates in this directory (*.crt, *.cert, *.key) for ${registry}.`,
      helpValue: 'PATH',
    }),
  };
}

type UnprefixedDockerFlags = ReturnType<typeof unprefixedDockerFlags>;

/** The registry flags for one side, their names prefixed as skopeo's are (`--src-creds`, `--dest-tls-verify`). */
export type DockerFlags<P extends DockerFlagPrefix> = {
  [K in keyof UnprefixedDockerFlags as `${P}${K & string}`]: UnprefixedDockerFlags[K];
};

/**
 * skopeo's registry flags for one side: `--creds`, `--username`, `--password`, `--no-creds`,
 * `--registry-token`, `--authfile`, `--tls-verify` (and `--no-tls-verify`), `--cert-dir`, each with
 * the prefix (`src-`, `dest-`) when the command has two sides. `copy` also takes an unprefixed
 * `--authfile` for both sides: add {@link authfileFlag} for it.
 *
 * @example
 * static override flags = { ...dockerFlags(''), ...retryFlags };
 */
export function dockerFlags<P extends DockerFlagPrefix>(prefix: P): DockerFlags<P> {
  const out: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(unprefixedDockerFlags(prefix))) out[`${prefix}${name}`] = flag;
  return out as DockerFlags<P>;
}

/** skopeo copy's `--authfile`, used for both sides unless `--src-authfile` / `--dest-authfile` says otherwise. */
export const authfileFlag = {
  authfile: Flags.string({
    description:
      'Read registry credentials from this auth.json (default: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json, ~/.docker/config.json).',
    helpValue: 'PATH',
  }),
};

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
  if (value === '') throw new Errors.CLIError(`invalid --${flagName}: credentials must not be empty`);
  const colon = value.indexOf(':');
  if (colon === 0) throw new Errors.CLIError(`invalid --${flagName}: the username must not be empty`);
  if (colon < 0 || colon === value.length - 1)
    throw new Errors.CLIError(`invalid --${flagName}: a password is required (USERNAME:PASSWORD)`);
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
    throw new Errors.CLIError(`--${name('creds')} and --${name('no-creds')} cannot be used together`);
  if (creds !== undefined && username !== undefined)
    throw new Errors.CLIError(`--${name('creds')} and --${name('username')} cannot be used together`);
  if ((username === undefined) !== (password === undefined)) {
    throw new Errors.CLIError(
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
