import { UnauthorizedError } from '@img/core';
import {
  checkRegistryLogin,
  type DockerTransportOptions,
  findStoredCredentials,
  loginKey,
  saveCredentials,
  storedUsername,
} from '@img/transport-docker';
import { Args, Errors, Flags } from '@oclif/core';
import { BaseCommand } from '../base-command.js';
import { dockerFlags } from '../docker-flags.js';
import { dockerOptionsFromFlags } from '../docker-options.js';
import { Prompter, readStdin } from '../prompt.js';

const registryFlags = dockerFlags('');

/** `img login REGISTRY`: checks credentials against a registry and stores them in auth.json. */
export default class Login extends BaseCommand<typeof Login> {
  static override summary = 'Log in to a container registry.';

  static override description =
    `Checks the username and password against REGISTRY (host[:port], or host[:port]/namespace for credentials used only there) and stores them in the auth file: --authfile, else $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json (mode 0600), or through the credential helper its credHelpers names for the host.
Without --username or --password, existing stored credentials are checked first, then both are asked for (from the terminal, or line by line from stdin).`;

  static override examples = [
    {
      description: 'Log in, reading the password from stdin.',
      command:
        'printf %s "$PASSWORD" | <%= config.bin %> <%= command.id %> --username alice --password-stdin registry.example.com',
    },
    {
      description: 'Print the username stored for a registry.',
      command: '<%= config.bin %> <%= command.id %> --get-login registry.example.com',
    },
  ];

  static override args = {
    registry: Args.string({
      name: 'REGISTRY',
      required: true,
      description: 'The registry (host[:port], optionally /namespace) to log in to.',
    }),
  };

  static override flags = {
    username: Flags.string({ char: 'u', description: 'Username for the registry.', helpValue: 'USERNAME' }),
    password: Flags.string({
      char: 'p',
      description:
        'Password for the registry (visible to other users of this machine: prefer --password-stdin).',
      helpValue: 'PASSWORD',
      exclusive: ['password-stdin'],
    }),
    'password-stdin': Flags.boolean({ description: 'Read the password from stdin.' }),
    'get-login': Flags.boolean({
      description: 'Print the username stored for REGISTRY, without logging in.',
      exclusive: ['username', 'password', 'password-stdin'],
    }),
    authfile: registryFlags.authfile,
    'tls-verify': registryFlags['tls-verify'],
    'cert-dir': registryFlags['cert-dir'],
    verbose: Flags.boolean({ char: 'v', description: 'Print the auth file that was written.' }),
  };

  async run(): Promise<void> {
    const { flags } = this;
    const key = loginKey(this.args.registry);
    const host = key.split('/')[0] ?? key;
    const options: DockerTransportOptions = dockerOptionsFromFlags(
      {
        authfile: flags.authfile,
        'tls-verify': flags['tls-verify'],
        'cert-dir': flags['cert-dir'],
        'registries-conf': flags['registries-conf'],
      },
      '',
    );

    if (flags['get-login']) {
      const username = await storedUsername(key, options, this.signal);
      if (username === undefined) throw new Errors.CLIError(`not logged into ${key}`);
      this.write(`${username}\n`);
      return;
    }
    if (flags['password-stdin'] && flags.username === undefined)
      throw new Errors.CLIError('--password-stdin needs --username', { exit: 2 });

    const prompter = new Prompter();
    try {
      if (flags.username === undefined && flags.password === undefined) {
        const existing = await findStoredCredentials(key, options, this.signal);
        if (existing) {
          this.write(`Authenticating with existing credentials for ${key}\n`);
          try {
            await checkRegistryLogin(host, existing.credentials, options, this.signal);
            this.write(`Existing credentials are valid. Already logged in to ${host}\n`);
            return;
          } catch (error) {
            if (!(error instanceof UnauthorizedError)) throw error;
            this.write('Existing credentials are invalid, please enter valid username and password\n');
          }
        }
      }
      const username = flags.username ?? (await prompter.ask('Username: '))?.trim();
      if (!username) throw new Errors.CLIError('the username must not be empty');
      let password: string | undefined;
      if (flags['password-stdin']) password = await readStdin();
      else password = flags.password ?? (await prompter.ask('Password: ', { secret: true }));
      if (!password) throw new Errors.CLIError('the password must not be empty');

      try {
        await checkRegistryLogin(host, { kind: 'basic', username, password }, options, this.signal);
      } catch (error) {
        throw new Error(`logging in to ${key}: ${(error as Error).message}`, { cause: error });
      }
      const saved = await saveCredentials(key, { username, password }, options, this.signal);
      if (flags.verbose)
        this.write(`Used: ${saved.helper ? `credential helper ${saved.helper}` : saved.file}\n`);
      this.write('Login Succeeded!\n');
    } finally {
      prompter.close();
    }
  }
}
