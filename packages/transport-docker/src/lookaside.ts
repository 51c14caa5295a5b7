import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type Digest, digestAlgorithm, digestHex, NotSupportedError, type Signature } from '@img/core';
import type { DockerTransportOptions } from './options.js';

let defaultOverride: string | undefined;

/** Replaces the default lookaside directory for this process (tests; never exported from the package). */
export function setDefaultLookasideDir(dir: string | undefined): void {
  defaultOverride = dir;
}

/** A signature file is read up to this size. */
const maxSignatureSize = 4 * 1024 * 1024;

/**
 * The lookaside directory skopeo uses when registries.d configures none (containers/image's
 * built-in default): `/var/lib/containers/sigstore` for root, `~/.local/share/containers/sigstore`
 * for other users; `options.signatureLookasideDir` overrides it.
 */
export function lookasideDir(options: DockerTransportOptions): string {
  if (options.signatureLookasideDir) return options.signatureLookasideDir;
  if (defaultOverride !== undefined) return defaultOverride;
  if (process.getuid?.() === 0) return '/var/lib/containers/sigstore';
  return join(options.environment?.homeDir ?? homedir(), '.local/share/containers/sigstore');
}

/** `<dir>/<repository>@<alg>=<hex>`: where the signatures of one manifest live (containers-registries.d(5)). */
function manifestDir(dir: string, repository: string, digest: Digest): string {
  return join(dir, `${repository}@${digestAlgorithm(digest)}=${digestHex(digest)}`);
}

/** Reads `signature-1`, `signature-2`, … until one is missing. */
export async function readLookasideSignatures(
  dir: string,
  repository: string,
  digest: Digest,
): Promise<Signature[]> {
  const base = manifestDir(dir, repository, digest);
  const out: Signature[] = [];
  for (let i = 1; ; i++) {
    let bytes: Buffer;
    try {
      bytes = await readFile(join(base, `signature-${i}`));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return out;
      throw error;
    }
    if (bytes.length > maxSignatureSize) {
      throw new NotSupportedError(
        `signature ${i} of ${repository}@${digest} is larger than ${maxSignatureSize} bytes`,
      );
    }
    out.push({ format: 'simple-signing', bytes });
  }
}

/**
 * Replaces the signatures of a manifest: writes `signature-1…n` (each to a temp name, then renamed)
 * and removes any later ones left from before. Only simple-signing signatures have a place here;
 * sigstore signatures would need registry attachments, which img does not write yet.
 */
export async function writeLookasideSignatures(
  dir: string,
  repository: string,
  digest: Digest,
  signatures: readonly Signature[],
): Promise<void> {
  if (signatures.some((s) => s.format !== 'simple-signing')) {
    throw new NotSupportedError(
      `cannot store sigstore signatures for ${repository}@${digest}: registry sigstore attachments are not supported yet`,
    );
  }
  const base = manifestDir(dir, repository, digest);
  // No signatures: only stale ones are removed; no directory is made for nothing.
  if (signatures.length > 0) await mkdir(base, { recursive: true });
  for (const [i, signature] of signatures.entries()) {
    const path = join(base, `signature-${i + 1}`);
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, signature.bytes);
    await rename(tmp, path);
  }
  for (let i = signatures.length + 1; ; i++) {
    const path = join(base, `signature-${i}`);
    try {
      await rm(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') break;
      throw error;
    }
  }
}
