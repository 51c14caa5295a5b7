import { stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { commands } from '@oclif/plugin-plugins';

const PluginsInstall: (typeof commands)['plugins:install'] = commands['plugins:install'];
type ParsedPlugin = Awaited<ReturnType<InstanceType<typeof PluginsInstall>['parsePlugin']>>;

/**
 * The absolute path of a plugin given as a local directory or packed tarball, or undefined for a
 * package name. As npm reads a spec: a path starts with `.`, `/` or `~/`, or ends in `.tgz`,
 * `.tar.gz` or `.tar`; a `file:` spec is a path too. It must exist.
 */
export async function localPluginPath(input: string, cwd = process.cwd()): Promise<string | undefined> {
  let path = input.startsWith('file:') ? input.slice('file:'.length) : input;
  const looksLikePath =
    input.startsWith('file:') ||
    /^(?:\.{1,2}(?:\/|$)|\/|~\/)/.test(path) ||
    /\.(?:tgz|tar\.gz|tar)$/.test(path);
  if (!looksLikePath) return undefined;
  if (path.startsWith('~/')) path = `${homedir()}${path.slice(1)}`;
  const absolute = resolve(cwd, path);
  try {
    await stat(absolute);
  } catch {
    return undefined;
  }
  return absolute;
}

/**
 * `img plugins install`: @oclif/plugin-plugins' command, which also takes a local path (a packed
 * `.tgz` or a plugin directory), relative to the working directory. oclif's own reads `./x.tgz`
 * as a GitHub `user/repo` and a relative `file:` spec against img's data directory.
 */
export default class Install extends PluginsInstall {
  static override summary = 'Install a plugin (a transport package) into img.';

  static override description =
    `Installs a plugin with npm into img's data directory ($IMG_DATA_DIR, default ~/.local/share/img), from the npm registry, a packed tarball or a directory.
A name NAME is looked up as @img/transport-NAME first, then as NAME: give third-party transports their full package name (img-transport-NAME).
Use IMG_NPM_REGISTRY to install from another registry, and "img plugins link" to use a plugin in development without installing it.`;

  static override examples = [
    {
      description: 'Install a transport from the npm registry.',
      command: '<%= config.bin %> <%= command.id %> img-transport-s3',
    },
    {
      description: 'Install a packed plugin (npm pack / pnpm pack).',
      command: '<%= config.bin %> <%= command.id %> ./img-transport-tarball-0.1.0.tgz',
    },
    {
      description: 'Install from a plugin directory.',
      command: '<%= config.bin %> <%= command.id %> ../img-transport-tarball',
    },
  ];

  override async parsePlugin(
    plugins: Parameters<InstanceType<typeof PluginsInstall>['parsePlugin']>[0],
    input: string,
  ): Promise<ParsedPlugin> {
    const local = await localPluginPath(input);
    if (local) return { type: 'repo', url: `file:${local}` };
    return super.parsePlugin(plugins, input);
  }
}
