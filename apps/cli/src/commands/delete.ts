import { NotSupportedError } from '@img/core';
import { Args } from '@oclif/core';
import { BaseCommand, retryFlags } from '../base-command.js';
import { dockerFlags } from '../docker-flags.js';
import { dockerOptionsFromFlags, withDockerOptions } from '../docker-options.js';

/** `img delete IMAGE`: deletes an image from any transport that can. */
export default class Delete extends BaseCommand<typeof Delete> {
  static override summary = 'Delete an image.';

  static override description =
    `Deletes IMAGE-NAME (transport:reference). In a registry (docker://) a tag is resolved to its manifest digest and the manifest is deleted, which removes every tag pointing at it, as skopeo does; the registry must allow deletes.
An OCI layout loses the image's index entry and the blobs nothing else uses.`;

  static override examples = [
    '<%= config.bin %> <%= command.id %> docker://127.0.0.1:5000/app:v1',
    '<%= config.bin %> <%= command.id %> oci:/srv/layouts/app:v1',
  ];

  static override args = {
    image: Args.string({
      name: 'IMAGE-NAME',
      required: true,
      description: 'The image to delete (transport:reference).',
    }),
  };

  static override flags = {
    ...dockerFlags(''),
    ...retryFlags(),
  };

  async run(): Promise<void> {
    const { flags } = this;
    const ref = await this.parseImageName(this.args.image);
    if (!ref.deleteImage) {
      throw new NotSupportedError(`${ref.transport.name}: images cannot be deleted (${ref})`);
    }
    const ctx = withDockerOptions(this.systemContext(), dockerOptionsFromFlags(flags, ''));
    await this.retrying('delete', flags, () => ref.deleteImage!(ctx, { signal: this.signal }));
  }
}
