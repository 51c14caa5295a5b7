import { NotSupportedError } from '@img/core';
import { Args, Flags } from '@oclif/core';
import { BaseCommand, durationFlag, errorMessage } from '../base-command.js';
import { dockerFlags, dockerOptionsFromFlags, withDockerOptions } from '../docker-options.js';
import { formatGoDuration } from '../duration.js';
import { retryIfNecessary } from '../retry.js';

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
    'retry-times': Flags.integer({
      description: 'Retry this many times on a failure that may pass.',
      min: 0,
      default: 0,
      helpValue: 'N',
    }),
    'retry-delay': durationFlag({
      description: 'Wait this long between retries (default: 1s, 2s, 4s… doubling).',
    }),
  };

  async run(): Promise<void> {
    const { flags } = this;
    const ref = await this.parseImageName(this.args.image);
    if (!ref.deleteImage) {
      throw new NotSupportedError(`${ref.transport.name}: images cannot be deleted (${ref})`);
    }
    const ctx = withDockerOptions(this.systemContext(), dockerOptionsFromFlags(flags, ''));
    await retryIfNecessary(() => ref.deleteImage!(ctx, { signal: this.signal }), {
      times: flags['retry-times'],
      delayMs: flags['retry-delay'],
      signal: this.signal,
      onRetry: (error, n, delayMs) => {
        this.warnLine(
          `delete failed, retrying in ${formatGoDuration(delayMs)} (${n}/${flags['retry-times']}): ${errorMessage(error)}`,
        );
      },
    });
  }
}
