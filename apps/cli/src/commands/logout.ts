import {
  type DockerTransportOptions,
  findStoredCredentials,
  loginKey,
  NotLoggedInError,
  removeAllCredentials,
  removeCredentials,
} from '@img/transport-docker';
import { Args, Errors, Flags } from '@oclif/core';
import { BaseCommand } from '../base-command.js';
import { dockerFlags } from '../docker-flags.js';
import { dockerOptionsFromFlags } from '../docker-options.js';

const registryFlags = dockerFlags('');

/** `img logout REGISTRY` / `img logout --all`: removes stored credentials. */
export default class Logout extends BaseCommand<typeof Logout> {
  static override summary = 'Log out of a container registry.';

  static override description =
    `Removes the credentials for REGISTRY (as given to "img login") from the auth file img login writes (--authfile, else $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json) and from the credential helper its credHelpers names for the host. --all removes every credential in that file.`;

  static override examples = [
    '<%= config.bin %> <%= command.id %> registry.example.com',
    { description: 'Remove every stored credential.', command: '<%= config.bin %> <%= command.id %> --all' },
  ];

  static override args = {
    registry: Args.string({
      name: 'REGISTRY',
      required: false,
      description: 'The registry (host[:port], optionally /namespace) to log out of.',
    }),
  };

  static override flags = {
    all: Flags.boolean({ char: 'a', description: 'Remove the credentials of every registry.' }),
    authfile: registryFlags.authfile,
    // skopeo accepts it, and ignores it, on logout.
    'tls-verify': Flags.boolean({ description: 'Ignored.', allowNo: true, hidden: true }),
  };

  async run(): Promise<void> {
    const { flags } = this;
    const options: DockerTransportOptions = dockerOptionsFromFlags({ authfile: flags.authfile }, '');
    if (flags.all) {
      if (this.args.registry !== undefined)
        throw new Errors.CLIError('--all takes no REGISTRY argument', { exit: 2 });
      await removeAllCredentials(options, this.signal);
      this.write('Removed login credentials for all registries\n');
      return;
    }
    if (this.args.registry === undefined)
      throw new Errors.CLIError('a REGISTRY argument is required, or --all', { exit: 2 });
    const key = loginKey(this.args.registry);
    try {
      await removeCredentials(key, options, this.signal);
    } catch (error) {
      if (!(error instanceof NotLoggedInError)) throw error;
      // Credentials that another file holds (docker's config.json) are used but not ours to remove.
      const elsewhere = flags.authfile ? undefined : await findStoredCredentials(key, options, this.signal);
      if (elsewhere)
        throw new Errors.CLIError(
          `not logged into ${key} with img: the credentials in use are in ${elsewhere.file}`,
        );
      throw error;
    }
    this.write(`Removed login credentials for ${key}\n`);
  }
}
