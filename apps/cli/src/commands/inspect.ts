import {
  getImageConfig,
  type ImageReference,
  inspectImage,
  RegistryError,
  type SystemContext,
} from '@img/core';
import type { DockerReference } from '@img/transport-docker';
import { Args, Errors, Flags } from '@oclif/core';
import { BaseCommand, retryFlags } from '../base-command.js';
import { withOciOptions } from '../copy-options.js';
import { withDaemonHost } from '../daemon-host.js';
import { dockerFlags } from '../docker-flags.js';
import { dockerOptionsFromFlags, withDockerOptions } from '../docker-options.js';
import { isJsonFormat, parseGoTemplate } from '../go-template.js';
import { formatOutput, inspectJsonView, inspectTemplateData } from '../inspect-output.js';
import { ociConfigTemplateData, ociConfigView } from '../oci-config.js';

/** `img inspect IMAGE`: what skopeo inspect prints. */
export default class Inspect extends BaseCommand<typeof Inspect> {
  static override summary = 'Inspect an image: digest, platform, labels, layers.';

  static override description =
    `Prints what is known of IMAGE (transport:reference) as JSON: Name, Digest, RepoTags, Created, DockerVersion, Labels, Architecture, Variant, Os, Layers, LayersData and Env, as skopeo inspect does.
For a manifest list, Digest is the list's and the rest describes the image chosen for this platform (see --override-os, --override-arch).
--raw prints the manifest exactly as stored; --config prints the image config; --format renders a Go template instead of JSON.`;

  static override examples = [
    '<%= config.bin %> <%= command.id %> oci:/srv/layouts/app:v1',
    {
      description: 'Print the manifest as stored, byte for byte.',
      command: '<%= config.bin %> <%= command.id %> --raw dir:/tmp/app',
    },
    {
      description: 'Print the image config.',
      command: '<%= config.bin %> <%= command.id %> --config oci:/srv/layouts/app:v1',
    },
    {
      description: 'Print selected fields with a Go template.',
      command: `<%= config.bin %> <%= command.id %> --format '{{.Digest}} {{.Os}}/{{.Architecture}} {{index .Labels "org.opencontainers.image.version"}}' oci:/srv/layouts/app:v1`,
    },
  ];

  static override args = {
    image: Args.string({
      name: 'IMAGE',
      required: true,
      description: 'The image to inspect (transport:reference).',
    }),
  };

  static override flags = {
    'daemon-host': Flags.string({
      description: 'docker-daemon: only: the Engine API address (unix:///path, tcp://host:port).',
      helpValue: 'HOST',
    }),
    'shared-blob-dir': Flags.string({
      description: "oci: only: read blobs from this directory instead of the layout's blobs/.",
      helpValue: 'DIR',
    }),
    raw: Flags.boolean({
      description: 'Print the manifest (with --config: the config blob) exactly as stored.',
    }),
    config: Flags.boolean({ description: 'Print the image config instead of the summary.' }),
    format: Flags.string({
      char: 'f',
      description: 'Render this Go template instead of printing JSON.',
      helpValue: 'TEMPLATE',
    }),
    'no-tags': Flags.boolean({
      char: 'n',
      description: 'Do not list the tags of the repository (registries only).',
    }),
    ...dockerFlags(''),
    ...retryFlags(),
  };

  async run(): Promise<void> {
    const { flags } = this;
    if (flags.raw && flags.format !== undefined) {
      throw new Errors.CLIError('--raw output does not support the --format option', { exit: 2 });
    }
    const ref = await this.parseImageName(this.args.image);
    const ctx = withDaemonHost(
      withDockerOptions(
        withOciOptions(this.systemContext(), { sharedBlobDir: flags['shared-blob-dir'] }),
        dockerOptionsFromFlags(flags, ''),
      ),
      flags['daemon-host'],
    );
    const options = { ctx, signal: this.signal };

    // A template that cannot be parsed fails before the image is opened.
    if (flags.format !== undefined && !isJsonFormat(flags.format)) parseGoTemplate(flags.format);

    const result = await this.retrying(
      'inspect',
      flags,
      async (): Promise<Uint8Array | { json: unknown; data: unknown }> => {
        const source = await ref.newImageSource(ctx, { signal: this.signal });
        try {
          if (flags.raw && !flags.config)
            return (await source.getManifest(undefined, { signal: this.signal })).bytes;
          if (flags.config) {
            const { bytes, config } = await getImageConfig(source, options);
            return flags.raw ? bytes : { json: ociConfigView(config), data: ociConfigTemplateData(config) };
          }
          const out = await inspectImage(source, options);
          // As skopeo: the repository's tags for registry references, unless --no-tags.
          if (ref.transport.name === 'docker' && !flags['no-tags'])
            out.RepoTags = await this.repoTags(ref, ctx);
          return { json: inspectJsonView(out), data: inspectTemplateData(out) };
        } finally {
          await source.close();
        }
      },
    );
    const output =
      result instanceof Uint8Array ? result : formatOutput(result.json, result.data, flags.format);
    this.write(output);
  }

  /**
   * The tags of a registry reference's repository. A registry that refuses to list them (401/403, as
   * ECR and Quay do) costs a warning, not the inspect, as in skopeo.
   */
  private async repoTags(ref: ImageReference, ctx: SystemContext): Promise<string[]> {
    const { listTags } = await import('@img/transport-docker');
    const tags: string[] = [];
    try {
      for await (const tag of listTags(ref as DockerReference, ctx, { signal: this.signal })) tags.push(tag);
    } catch (error) {
      if (error instanceof RegistryError && (error.status === 401 || error.status === 403)) {
        this.warnLine('registry disallows tag list retrieval; skipping');
        return [];
      }
      throw error;
    }
    return tags;
  }
}
