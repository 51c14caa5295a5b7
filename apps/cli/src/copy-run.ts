import { writeFile } from 'node:fs/promises';
import { openBlobInfoCache } from '@img/blobcache';
import { type CopyResult, copyImage } from '@img/core';
import { type CopyFlags, copyOptionsFromFlags, withOciOptions } from './copy-options.js';
import { withDaemonHost } from './daemon-host.js';
import { dockerOptionsFromFlags, type ParsedDockerFlags, withDockerOptions } from './docker-options.js';
import {
  lazyProcessStream,
  ProgressRenderer,
  resolveProgressMode,
  stderrIsTTY,
  stderrStream,
} from './progress.js';
import type { CommandSession, GlobalFlags, RetryFlags } from './session.js';

/** The parsed flags of `img copy` that {@link runCopy} reads (commands/copy.ts declares them). */
export type CopyRunFlags = GlobalFlags &
  CopyFlags &
  RetryFlags &
  ParsedDockerFlags & {
    quiet?: boolean | undefined;
    progress?: string | undefined;
    'src-shared-blob-dir'?: string | undefined;
    'dest-shared-blob-dir'?: string | undefined;
    'src-daemon-host'?: string | undefined;
    'dest-daemon-host'?: string | undefined;
    'dest-oci-accept-uncompressed-layers'?: boolean | undefined;
    digestfile?: string | undefined;
    'blob-cache-dir'?: string | undefined;
  };

/** The two images of `img copy`, as written on the command line (`transport:reference`). */
export interface CopyRunArgs {
  source: string;
  destination: string;
}

/**
 * The work of `img copy SRC DEST`, for the oclif command and the fast path alike: parses both
 * names, loads the trust policy, builds each side's SystemContext (oci:, docker://, docker-daemon:
 * options), and copies with progress output and retries, remembering blobs in the blob-info cache
 * (opened only if the copy asks it anything); then writes --digestfile.
 */
export async function runCopy(
  session: CommandSession,
  flags: CopyRunFlags,
  args: CopyRunArgs,
): Promise<CopyResult> {
  const srcRef = await session.parseImageName(args.source);
  const destRef = await session.parseImageName(args.destination);
  const policy = await session.policyContext();
  const ctx = session.systemContext();
  const srcDocker = dockerOptionsFromFlags(flags, 'src-');
  const destDocker = dockerOptionsFromFlags(flags, 'dest-');
  const mode = resolveProgressMode(flags.progress, {
    quiet: flags.quiet === true,
    isTTY: stderrIsTTY,
  });
  const stderr = stderrStream();
  const stdout = lazyProcessStream('stdout');

  // One renderer per attempt, so that a retry starts with fresh bars.
  const attempt = async () => {
    const progress = new ProgressRenderer({ mode, stderr, stdout });
    const options = copyOptionsFromFlags(flags, {
      policy,
      sourceCtx: withDaemonHost(
        withDockerOptions(withOciOptions(ctx, { sharedBlobDir: flags['src-shared-blob-dir'] }), srcDocker),
        flags['src-daemon-host'],
      ),
      destinationCtx: withDaemonHost(
        withDockerOptions(
          withOciOptions(ctx, {
            sharedBlobDir: flags['dest-shared-blob-dir'],
            acceptUncompressedLayers: flags['dest-oci-accept-uncompressed-layers'],
          }),
          destDocker,
        ),
        flags['dest-daemon-host'],
      ),
      signal: session.signal,
      onEvent: (event) => progress.onEvent(event),
    });
    options.cache = cache;
    try {
      const result = await copyImage(destRef, srcRef, options);
      progress.finish(result);
      return result;
    } catch (error) {
      progress.finish();
      throw error;
    }
  };
  // One cache for every attempt: a retry finds what the failed attempt stored. Opened on first use:
  // a copy the destination already holds asks it nothing, and loading SQLite would cost more.
  const cache = await openBlobInfoCache({
    dir: flags['blob-cache-dir'],
    onWarning: (message) => session.warnLine(message),
    lazy: true,
  });
  let result: CopyResult;
  try {
    result = await session.retrying('copy', flags, attempt);
  } finally {
    cache.close();
  }
  if (flags.digestfile) await writeFile(flags.digestfile, result.manifestDigest);
  return result;
}
