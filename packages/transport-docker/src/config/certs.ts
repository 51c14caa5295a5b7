import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DockerTransportOptions } from '../options.js';
import { resolveEnvironment } from './environment.js';
import { InvalidConfigError } from './errors.js';

/** What a certs.d directory holds: extra CAs (`*.crt`) and a client certificate and key (`*.cert` + `*.key`). */
export interface CertDirContent {
  /** The directory read, when one was found. */
  dir?: string;
  ca: Buffer[];
  cert?: Buffer;
  key?: Buffer;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    // Missing or unreadable (permission): containers/image moves on to the next candidate.
    return false;
  }
}

/**
 * The certs.d directory for `host` (`host[:port]`): `options.certDir` when given; else the first of
 * `~/.config/containers/certs.d/<host>`, `<sysconf>/containers/certs.d/<host>` and
 * `<sysconf>/docker/certs.d/<host>` that exists; undefined when none does.
 */
export async function certDirFor(host: string, options: DockerTransportOptions): Promise<string | undefined> {
  if (options.certDir) return options.certDir;
  const env = resolveEnvironment(options);
  // A host name is used as a path segment: refuse anything that could climb out of certs.d.
  if (host === '' || host.includes('/') || host === '.' || host === '..') return undefined;
  const roots = [
    join(env.homeDir, '.config', 'containers', 'certs.d'),
    join(env.systemConfigDir, 'containers', 'certs.d'),
    join(env.systemConfigDir, 'docker', 'certs.d'),
  ];
  for (const root of roots) {
    const dir = join(root, host);
    if (await isDirectory(dir)) return dir;
  }
  return undefined;
}

/**
 * Reads a certs.d directory: every `*.crt` is a CA; each `*.cert` needs the `*.key` of the same name
 * and the reverse (the error names the file). A missing directory holds nothing. When several client
 * pairs are present, the first by name is used.
 */
export async function readCertDir(dir: string): Promise<CertDirContent> {
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isFile() || e.isSymbolicLink())
      .map((e) => e.name)
      .sort();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'ENOTDIR') return { ca: [] };
    throw new InvalidConfigError(dir, `cannot be read (${code ?? 'error'})`);
  }
  const present = new Set(names);
  const content: CertDirContent = { dir, ca: [] };
  const read = async (name: string) => {
    try {
      return await readFile(join(dir, name));
    } catch (error) {
      throw new InvalidConfigError(
        join(dir, name),
        `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  };
  for (const name of names) {
    if (name.endsWith('.crt')) {
      content.ca.push(await read(name));
    } else if (name.endsWith('.cert')) {
      const keyName = `${name.slice(0, -'.cert'.length)}.key`;
      if (!present.has(keyName))
        throw new InvalidConfigError(
          join(dir, name),
          `missing key ${keyName} for this client certificate (CA certificates use the extension .crt)`,
        );
      if (content.cert === undefined) {
        content.cert = await read(name);
        content.key = await read(keyName);
      }
    } else if (name.endsWith('.key')) {
      const certName = `${name.slice(0, -'.key'.length)}.cert`;
      if (!present.has(certName))
        throw new InvalidConfigError(join(dir, name), `missing client certificate ${certName} for this key`);
    }
  }
  return content;
}
