import { blobCacheDirEnv } from '@img/blobcache';
import type { CopyResult } from '@img/core';
import { Args, Flags } from '@oclif/core';
import { BaseCommand, retryFlags } from '../base-command.js';
import { manifestFormats, multiArchValues } from '../copy-options.js';
import { runCopy } from '../copy-run.js';
import { authfileFlag, dockerFlags } from '../docker-flags.js';
import { progressFlagValues } from '../progress.js';

/**
 * `img copy SRC DEST`: copies an image between any two transports. The work is runCopy's, which the
 * fast path (fast-path/) also runs, with these flags parsed by a table generated from this class.
 */
export default class Copy extends BaseCommand<typeof Copy> {
  static override summary = 'Copy an image from one location to another.';

  static override description =
    `Copies the image SOURCE-IMAGE to DESTINATION-IMAGE, each written transport:reference (see "img transports").
Blobs the destination already holds are not moved again, and when the destination already holds the whole image nothing is moved at all.
The trust policy (--policy, or the default policy.json) must accept the source image; --insecure-policy skips it.`;

  static override examples = [
    {
      description: 'Copy an image from an OCI layout to a directory.',
      command: '<%= config.bin %> <%= command.id %> oci:/srv/layouts/app:v1 dir:/tmp/app',
    },
    {
      description: 'Copy every platform of a multi-arch image, writing OCI manifests, and record the digest.',
      command:
        '<%= config.bin %> <%= command.id %> --all --format oci --digestfile /tmp/digest oci:/srv/app:v1 oci:/srv/mirror:v1',
    },
    {
      description:
        'Skip the trust policy and print one line per blob (global flags may also come first, as in skopeo).',
      command:
        '<%= config.bin %> --insecure-policy <%= command.id %> --progress lines dir:/tmp/app oci:/tmp/layout:app',
    },
  ];

  static override args = {
    source: Args.string({
      name: 'SOURCE-IMAGE',
      required: true,
      description: 'The image to copy (transport:reference).',
    }),
    destination: Args.string({
      name: 'DESTINATION-IMAGE',
      required: true,
      description: 'Where to write it (transport:reference).',
    }),
  };

  static override flags = {
    all: Flags.boolean({
      char: 'a',
      description: 'Copy every image of a manifest list (same as --multi-arch all).',
      exclusive: ['multi-arch'],
    }),
    'multi-arch': Flags.string({
      description:
        'What to copy from a manifest list: the image for this platform, every image, or only the list.',
      options: [...multiArchValues],
      helpValue: 'system|all|index-only',
    }),
    format: Flags.string({
      char: 'f',
      description: 'Write manifests of this type (converting if needed).',
      options: Object.keys(manifestFormats),
      helpValue: 'oci|v2s2',
    }),
    quiet: Flags.boolean({ char: 'q', description: 'Print nothing but errors.' }),
    'src-shared-blob-dir': Flags.string({
      description: "oci: source only: read blobs from this directory instead of the layout's blobs/.",
      helpValue: 'DIR',
    }),
    'dest-shared-blob-dir': Flags.string({
      description: "oci: destination only: store blobs in this directory instead of the layout's blobs/.",
      helpValue: 'DIR',
    }),
    'src-daemon-host': Flags.string({
      description: 'docker-daemon: source only: the Engine API address (unix:///path, tcp://host:port).',
      helpValue: 'HOST',
    }),
    'dest-daemon-host': Flags.string({
      description: 'docker-daemon: destination only: the Engine API address (unix:///path, tcp://host:port).',
      helpValue: 'HOST',
    }),
    'dest-oci-accept-uncompressed-layers': Flags.boolean({
      description:
        'oci:, oci-archive: destination only: keep uncompressed layers as they are instead of compressing them.',
    }),
    digestfile: Flags.string({
      description: 'Write the digest of the written manifest to this file.',
      helpValue: 'PATH',
    }),
    'remove-signatures': Flags.boolean({ description: 'Do not copy the signatures of the source image.' }),
    'preserve-digests': Flags.boolean({
      description: 'Fail rather than change the manifest (and so its digest).',
    }),
    'image-parallel-copies': Flags.integer({
      description: 'How many blobs to copy at once (0: the default, 6).',
      min: 0,
      helpValue: 'N',
    }),
    ...authfileFlag,
    ...dockerFlags('src-'),
    ...dockerFlags('dest-'),
    ...retryFlags('the copy'),
    'blob-cache-dir': Flags.string({
      description:
        "Keep the blob-info cache (which blobs are where, which digests belong together) in this directory instead of skopeo's cache directory.",
      helpValue: 'DIR',
      env: blobCacheDirEnv,
    }),
    progress: Flags.string({
      description:
        'How to show progress: bars on a terminal and lines otherwise (auto), JSON events on stdout (json), or none.',
      options: [...progressFlagValues],
      default: 'auto',
    }),
  };

  async run(): Promise<CopyResult> {
    return runCopy(this.session, this.flags, this.args);
  }
}
