import { readFile } from 'node:fs/promises';
import { ImgError, manifestDigest } from '@img/core';
import { Args } from '@oclif/core';
import { BaseCommand } from '../base-command.js';

/** `img manifest-digest FILE`: the digest a registry would give the manifest in FILE. */
export default class ManifestDigest extends BaseCommand<typeof ManifestDigest> {
  static override summary = 'Print the digest of a manifest file.';

  static override description =
    `Prints the canonical (sha256) digest of the manifest in MANIFEST-FILE, the digest by which registries address it.
For a signed Docker schema 1 manifest, that is the digest of the manifest without its signatures.`;

  static override examples = [
    '<%= config.bin %> <%= command.id %> /tmp/app/manifest.json',
    {
      description: 'Check that a copied manifest kept its digest.',
      command: '<%= config.bin %> <%= command.id %> /tmp/app/manifest.json | diff - /tmp/digest',
    },
  ];

  static override args = {
    file: Args.string({ name: 'MANIFEST-FILE', required: true, description: 'A file holding a manifest.' }),
  };

  async run(): Promise<void> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(this.args.file, { signal: this.signal });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOENT'
          ? 'no such file'
          : code === 'EISDIR'
            ? 'is a directory'
            : ((error as Error).message ?? String(error));
      throw new ManifestFileError(`cannot read manifest file "${this.args.file}": ${why}`, { cause: error });
    }
    this.write(`${manifestDigest(bytes)}\n`);
  }
}

/** A manifest file that cannot be read. */
class ManifestFileError extends ImgError {
  static override readonly code = 'IMG_MANIFEST_FILE';
}
