import { InvalidReferenceError, parseNormalizedNamed } from '@img/core';
import { type DockerReference, listTags } from '@img/transport-docker';
import { Args } from '@oclif/core';
import { BaseCommand, retryFlags } from '../base-command.js';
import { dockerFlags } from '../docker-flags.js';
import { dockerOptionsFromFlags, withDockerOptions } from '../docker-options.js';

/** `img list-tags docker://REPOSITORY`: the tags of a registry repository, as skopeo prints them. */
export default class ListTags extends BaseCommand<typeof ListTags> {
  static override summary = 'List the tags of a repository.';

  static override description =
    `Lists the tags of the registry repository REPOSITORY-NAME, written docker://host/repository without a tag or digest.
Prints {"Repository": ..., "Tags": [...]} as skopeo does; pages of a large list are followed.`;

  static override examples = [
    '<%= config.bin %> <%= command.id %> docker://docker.io/library/busybox',
    {
      description: 'A local registry over plain HTTP.',
      command: '<%= config.bin %> <%= command.id %> --tls-verify=false docker://127.0.0.1:5000/app',
    },
  ];

  static override args = {
    repository: Args.string({
      name: 'REPOSITORY-NAME',
      required: true,
      description: 'The repository: docker://host/repository, without a tag or digest.',
    }),
  };

  static override flags = {
    ...dockerFlags(''),
    ...retryFlags(),
  };

  async run(): Promise<{ Repository: string; Tags: string[] }> {
    const { flags } = this;
    const input = this.args.repository;
    const ref = await this.parseImageName(input);
    if (ref.transport.name !== 'docker') {
      throw new InvalidReferenceError(
        input,
        `list-tags needs a docker:// repository, not a ${ref.transport.name}: reference`,
      );
    }
    // The parsed reference has `latest` added; what the user wrote must name neither tag nor digest.
    const named = parseNormalizedNamed(input.slice('docker://'.length));
    if (named.tag !== undefined || named.digest !== undefined) {
      throw new InvalidReferenceError(input, 'a repository to list must not name a tag or digest');
    }
    const ctx = withDockerOptions(this.systemContext(), dockerOptionsFromFlags(flags, ''));
    const tags = await this.retrying('list-tags', flags, async () => {
      const out: string[] = [];
      for await (const tag of listTags(ref as DockerReference, ctx, { signal: this.signal })) out.push(tag);
      return out;
    });
    const result = { Repository: named.name(), Tags: tags };
    this.write(`${JSON.stringify(result, null, 4)}\n`);
    return result;
  }
}
