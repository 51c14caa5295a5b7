import { open, stat } from 'node:fs/promises';
import { addAbortSignal } from 'node:stream';
import {
  AbortedError,
  type BlobInfo,
  type BlobStream,
  BlobUnknownError,
  type Digest,
  type GetBlobOptions,
  guessMediaType,
  type ImageSource,
  InvalidLayoutError,
  ManifestUnknownError,
  maxManifestSize,
  NotSupportedError,
  type OperationOptions,
  type RawManifest,
  type Signature,
  TooLargeError,
} from '@img/core';
import {
  blobFileName,
  isNewerVersion,
  isNotFound,
  type LayoutVersion,
  layoutPath,
  manifestFileNameFor,
  maxSupportedVersion,
  parseVersion,
  readSmallFile,
  signatureFileName,
  versionFileName,
} from './layout.js';
import type { DirReference } from './reference.js';
import { signatureFromBlob } from './signature-blob.js';

/** Signatures are buffered whole; containers/image caps a signature at 4 MiB too. */
export const maxSignatureSize = 4 * 1024 * 1024;

/** A version file longer than this is not one. */
const maxVersionFileSize = 256;

/** Throws AbortedError when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError({ cause: signal.reason });
}

/**
 * Checks that `reference` names a directory (`verb`, "read" or "write", is for the error message);
 * returns false when the path does not exist, throws InvalidLayoutError when it is something else.
 */
export async function checkImageDirectory(reference: DirReference, verb: string): Promise<boolean> {
  const dir = reference.resolvedPath;
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(dir)).isDirectory();
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
  if (!isDirectory) {
    throw new InvalidLayoutError(`cannot ${verb} ${reference.toString()}: "${dir}" is not a directory`);
  }
  return true;
}

/**
 * Reads the version file: undefined when absent, else the parsed version. Throws InvalidLayoutError
 * when the file is not a version file and NotSupportedError when it is newer than this package reads.
 */
export async function readLayoutVersion(
  reference: DirReference,
  verb: string,
): Promise<LayoutVersion | undefined> {
  const path = layoutPath(reference.resolvedPath, versionFileName);
  const notAVersionFile = (cause?: unknown) =>
    new InvalidLayoutError(
      `cannot ${verb} ${reference.toString()}: "${path}" is not a dir: version file`,
      cause === undefined ? undefined : { cause },
    );
  let bytes: Buffer | undefined;
  try {
    bytes = await readSmallFile(path, maxVersionFileSize, `version file "${path}"`);
  } catch (error) {
    if (error instanceof TooLargeError || (error as NodeJS.ErrnoException).code === 'EISDIR') {
      throw notAVersionFile(error);
    }
    throw error;
  }
  if (bytes === undefined) return undefined;
  const version = parseVersion(bytes.toString('utf8'));
  if (version === undefined) throw notAVersionFile();
  if (isNewerVersion(version, maxSupportedVersion)) {
    const { major, minor } = maxSupportedVersion;
    throw new NotSupportedError(
      `cannot ${verb} ${reference.toString()}: its layout version ${version.major}.${version.minor} ` +
        `is newer than ${major}.${minor}, the newest this version of img reads`,
    );
  }
  return version;
}

/** Opens a dir: image for reading (see DirReference.newImageSource). */
export async function openDirImageSource(
  reference: DirReference,
  options: OperationOptions = {},
): Promise<ImageSource> {
  throwIfAborted(options.signal);
  if (!(await checkImageDirectory(reference, 'read'))) throw new ManifestUnknownError(reference.toString());
  await readLayoutVersion(reference, 'read');
  return new DirImageSource(reference);
}

/** Reads the signatures of the image or of one instance: `signature-1`, `signature-2`, … up to the first missing one. */
export async function readSignatures(dir: string, instanceDigest: Digest | undefined): Promise<Signature[]> {
  const signatures: Signature[] = [];
  for (let index = 1; ; index++) {
    const path = layoutPath(dir, signatureFileName(index, instanceDigest));
    const bytes = await readSmallFile(path, maxSignatureSize, `signature "${path}"`);
    if (bytes === undefined) return signatures;
    signatures.push(signatureFromBlob(bytes, path));
  }
}

/**
 * Reads a dir: image. Every method reads the files afresh, so concurrent calls are safe; the bytes are
 * returned raw and the caller verifies digests.
 */
class DirImageSource implements ImageSource {
  readonly hasThreadSafeGetBlob = true;

  constructor(readonly reference: DirReference) {}

  private get dir(): string {
    return this.reference.resolvedPath;
  }

  async getManifest(instanceDigest?: Digest, options: OperationOptions = {}): Promise<RawManifest> {
    throwIfAborted(options.signal);
    const path = layoutPath(this.dir, manifestFileNameFor(instanceDigest));
    const bytes = await readSmallFile(path, maxManifestSize, `manifest "${path}"`);
    if (bytes === undefined) {
      const name = this.reference.toString();
      throw new ManifestUnknownError(
        instanceDigest === undefined ? name : `${name} (instance ${instanceDigest})`,
      );
    }
    let mediaType = '';
    try {
      mediaType = guessMediaType(bytes);
    } catch {
      // As containers/image: the bytes are returned even when their type cannot be told; the caller decides.
    }
    return { bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), mediaType };
  }

  async getBlob(info: BlobInfo, options: GetBlobOptions = {}): Promise<BlobStream> {
    throwIfAborted(options.signal);
    const path = layoutPath(this.dir, blobFileName(info.digest));
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (isNotFound(error))
        throw new BlobUnknownError(info.digest, this.reference.toString(), { cause: error });
      throw error;
    }
    try {
      const { size } = await handle.stat();
      const stream = handle.createReadStream({ highWaterMark: 1 << 20 });
      if (options.signal) addAbortSignal(options.signal, stream);
      return { stream, size };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async getBlobPath(info: BlobInfo, options: OperationOptions = {}): Promise<string | undefined> {
    throwIfAborted(options.signal);
    const path = layoutPath(this.dir, blobFileName(info.digest));
    try {
      return (await stat(path)).isFile() ? path : undefined;
    } catch (error) {
      if (isNotFound(error))
        throw new BlobUnknownError(info.digest, this.reference.toString(), { cause: error });
      throw error;
    }
  }

  async getSignatures(instanceDigest?: Digest, options: OperationOptions = {}): Promise<Signature[]> {
    throwIfAborted(options.signal);
    return readSignatures(this.dir, instanceDigest);
  }

  async close(): Promise<void> {}
}
