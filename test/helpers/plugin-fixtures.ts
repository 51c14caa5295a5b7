import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Plugins written to disk for the plugin end-to-end tests, to be added with `img plugins link`.
 * Plain JavaScript with no dependencies: like a real installed plugin, they can import nothing of
 * img's and use the @img/core the host passes to their hook.
 */
export interface FixturePlugin {
  /** The package name (img-transport-…). */
  name: string;
  /** package.json's `img` field; undefined leaves it out. */
  img?: unknown;
  /** The hook module's source. */
  hook: string;
}

/** Writes a plugin package into `dir/name` and returns its directory. */
export async function writeFixturePlugin(dir: string, plugin: FixturePlugin): Promise<string> {
  const root = join(dir, plugin.name);
  await mkdir(join(root, 'hooks'), { recursive: true });
  const pjson: Record<string, unknown> = {
    name: plugin.name,
    version: '0.0.1',
    type: 'module',
    keywords: ['img-transport', 'oclif-plugin'],
    oclif: { hooks: { 'img:transports': './hooks/transports.js' } },
  };
  if (plugin.img !== undefined) pjson.img = plugin.img;
  await writeFile(join(root, 'package.json'), `${JSON.stringify(pjson, null, 2)}\n`);
  await writeFile(join(root, 'hooks/transports.js'), plugin.hook);
  return root;
}

/**
 * `mini:DIR`, a read-write transport that implements the required members of the contract and no
 * optional capability (no alreadyContainsManifest, no supportsOutOfOrderPuts, no file copies, no
 * declared capabilities), as a plugin written against an older, smaller @img/core would. It keeps
 * `DIR/blobs/<hex>` and `DIR/manifest.json`, the manifest written at commit.
 */
export const miniPlugin: FixturePlugin = {
  name: 'img-transport-mini',
  img: { apiVersion: 1, transports: ['mini'] },
  hook: `import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export default async function ({ core }) {
  const transport = {
    name: 'mini',
    parseReference(text) {
      if (text === '') throw new core.InvalidReferenceError('mini:', 'a directory is required');
      return new Ref(text);
    },
    validatePolicyConfigurationScope() {},
  };
  class Ref {
    constructor(path) { this.path = path; this.dir = resolve(path); this.dockerReference = undefined; }
    get transport() { return transport; }
    stringWithinTransport() { return this.path; }
    toString() { return 'mini:' + this.path; }
    policyConfigurationIdentity() { return ''; }
    policyConfigurationNamespaces() { return []; }
    async newImageSource() {
      const ref = this;
      return {
        reference: ref,
        hasThreadSafeGetBlob: false,
        async getManifest(instance) {
          if (instance) throw new core.ManifestUnknownError(ref + '@' + instance);
          try {
            const bytes = await readFile(join(ref.dir, 'manifest.json'));
            return { bytes, mediaType: JSON.parse(bytes.toString()).mediaType };
          } catch (error) {
            if (error.code === 'ENOENT') throw new core.ManifestUnknownError(String(ref), { cause: error });
            throw error;
          }
        },
        async getBlob(info) {
          const path = join(ref.dir, 'blobs', info.digest.split(':')[1]);
          try {
            const { size } = await stat(path);
            return { stream: createReadStream(path), size };
          } catch (error) {
            throw new core.BlobUnknownError(info.digest, String(ref), { cause: error });
          }
        },
        async getSignatures() { return []; },
        async close() {},
      };
    }
    async newImageDestination() {
      const ref = this;
      await mkdir(join(ref.dir, 'blobs'), { recursive: true });
      let manifest;
      return {
        reference: ref,
        supportedManifestMediaTypes: [],
        desiredLayerCompression: 'preserve',
        supportsSignatures: false,
        mustMatchRuntimeOS: false,
        hasThreadSafePutBlob: false,
        async putBlob(stream, info) {
          const hash = createHash('sha256');
          const chunks = [];
          for await (const chunk of stream) { hash.update(chunk); chunks.push(chunk); }
          const digest = 'sha256:' + hash.digest('hex');
          const bytes = Buffer.concat(chunks);
          if (info.digest && info.digest !== digest) throw new core.DigestMismatchError(info.digest, digest);
          const path = join(ref.dir, 'blobs', digest.split(':')[1]);
          await writeFile(path + '.tmp', bytes);
          await rename(path + '.tmp', path);
          return { digest, size: bytes.length };
        },
        async tryReusingBlob(info) {
          try {
            const { size } = await stat(join(ref.dir, 'blobs', info.digest.split(':')[1]));
            return { digest: info.digest, size };
          } catch {
            return undefined;
          }
        },
        async putManifest(bytes) { manifest = bytes; },
        async putSignatures(signatures) {
          if (signatures.length > 0) throw new core.NotSupportedError('mini: stores no signatures');
        },
        async commit() { await writeFile(join(ref.dir, 'manifest.json'), manifest); },
        async close() {},
      };
    }
    async deleteImage() {
      try {
        await stat(join(this.dir, 'manifest.json'));
      } catch (error) {
        throw new core.ManifestUnknownError(String(this), { cause: error });
      }
      await rm(join(this.dir, 'manifest.json'));
    }
  }
  return [transport];
}
`,
};

/** Claims the built-in name `dir`. */
export const claimsDirPlugin: FixturePlugin = {
  name: 'img-transport-claims-dir',
  img: { apiVersion: 1, transports: ['dir'] },
  hook: `export default async function () {
  return [{ name: 'dir', parseReference() { throw new Error('not the real dir'); }, validatePolicyConfigurationScope() {} }];
}
`,
};

/** Declares a transport API version this img does not have. */
export const futurePlugin: FixturePlugin = {
  name: 'img-transport-future',
  img: { apiVersion: 99, transports: ['future'] },
  hook: `export default async function () {
  return [{ name: 'future', parseReference() { throw new Error('unreachable'); }, validatePolicyConfigurationScope() {} }];
}
`,
};

/** Fails while its hook module is imported. */
export const throwingPlugin: FixturePlugin = {
  name: 'img-transport-throws',
  img: { apiVersion: 1, transports: ['throws'] },
  hook: `throw new Error('the S3 SDK is missing\\n    at somewhere (file.js:1:1)');
export default async function () { return []; }
`,
};
