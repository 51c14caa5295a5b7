import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Where img's launcher (`@img/cli`'s bin/img) records the NODE_EXTRA_CA_CERTS file it kept from
 * Node's start-up. Node parses that file, and builds its whole root store, before it runs any
 * JavaScript: with the system bundle named there, 40-50 ms on every start, which a copy that opens
 * no TLS connection (into containers-storage, oci:, the daemon's socket) need never pay. A global
 * symbol, not a module variable: the CLI's fast-path bundle and the package each have their own
 * copy of this module.
 */
export const deferredExtraCaKey = Symbol.for('img.deferredExtraCaCerts');

/** The NODE_EXTRA_CA_CERTS file whose certificates Node did not load at start, if any. */
function deferredExtraCaFile(): string | undefined {
  const value = (globalThis as Record<symbol, unknown>)[deferredExtraCaKey];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

const loaded = new Map<string, readonly string[]>();

/**
 * The certificates (PEM) in a NODE_EXTRA_CA_CERTS file, read once per process. As Node does at
 * start: a file that cannot be read, or holds a certificate that does not parse, adds none and gives
 * one warning (OpenSSL would skip a bad block without a word).
 */
export function extraCaCertificates(file: string): readonly string[] {
  let certs = loaded.get(file);
  if (certs === undefined) {
    try {
      const text = readFileSync(file, 'latin1');
      certs = text.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
      for (const pem of certs) new X509Certificate(pem);
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${reason}`);
      certs = [];
    }
    loaded.set(file, certs);
  }
  return certs;
}

/**
 * The NODE_EXTRA_CA_CERTS file whose certificates a verifying connection must add itself, beside
 * Node's bundled roots and the host's own CA: the launcher's deferred file; or, when the host has a CA
 * of its own (a `ca` list replaces Node's store, extras included), the variable's. Undefined when Node's
 * default store does the job.
 */
export function extraCaFileFor(hostCa: readonly unknown[]): string | undefined {
  const deferred = deferredExtraCaFile();
  if (deferred !== undefined) return deferred;
  const file = process.env.NODE_EXTRA_CA_CERTS;
  return hostCa.length > 0 && file ? file : undefined;
}
