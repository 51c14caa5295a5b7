import { Flags } from '@oclif/core';
import type { DockerFlagPrefix } from './docker-options.js';

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
