import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import type * as ImgCore from '@img/core';
import { implementedApiVersion, type TarballCore } from './core.js';
import { layerMediaType, readTarballLayer, type TarballLayer } from './layer.js';

/** `SystemContext.transportOptions.tarball`: what the image config and manifest should say besides the layers. */
export interface TarballOptions {
  /** The image config's `config` (Env, Cmd, Entrypoint, WorkingDir, User, Labels, ExposedPorts, …). */
  config?: Record<string, unknown>;
  /** Annotations of the manifest. */
  annotations?: Record<string, string>;
  /** The creation time (RFC 3339); default: the newest modification time of the files. */
  created?: string;
}

/** A `tarball:` reference: one or more tarball files, each a layer, in order. */
export interface TarballReference extends ImgCore.ImageReference {
  /** The files as given. */
  readonly paths: readonly string[];
  /** The files, absolute. */
  readonly resolvedPaths: readonly string[];
}

/** The `tarball:` transport, with the constructor of references for callers that do not parse strings. */
export interface TarballTransport extends ImgCore.Transport {
  readonly name: 'tarball';
  parseReference(reference: string): TarballReference;
  /** A reference to these files (each a tarball, plain or gzip-compressed), in layer order. */
  newReference(...paths: string[]): TarballReference;
}

const manifestMediaType = 'application/vnd.oci.image.manifest.v1+json';
const configMediaType = 'application/vnd.oci.image.config.v1+json';

/** Node's names of CPU architectures → the Go names image configs use. */
const goArch: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  arm64: 'arm64',
  arm: 'arm',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
};

function sha256(bytes: Uint8Array): ImgCore.Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/**
 * Makes the `tarball:` transport on top of the @img/core it is given (see core.ts for why it is
 * given): `tarball:/path/rootfs.tar.gz` is an image with one layer, the file's bytes unchanged
 * (plain tar or gzip-compressed), an OCI manifest and a config for the running platform
 * (or `--override-os`/`--override-arch`). Several files separated by `:` make several layers, as
 * in containers/image's tarball transport. It is read-only: use it as a copy source.
 *
 * @example
 * import * as core from '@img/core';
 * const tarball = createTarballTransport(core);
 * await core.copyImage(dest, tarball.parseReference('/tmp/rootfs.tar.gz'), { policy });
 */
export function createTarballTransport(core: TarballCore): TarballTransport {
  if (core.transportApiVersion !== implementedApiVersion) {
    throw new Error(
      `img-transport-tarball implements transport API version ${implementedApiVersion}, but this @img/core has ${core.transportApiVersion}`,
    );
  }

  class Reference implements TarballReference {
    readonly resolvedPaths: readonly string[];
    readonly dockerReference = undefined;

    constructor(readonly paths: readonly string[]) {
      const text = paths.join(':');
      if (paths.length === 0 || paths.some((p) => p === '')) {
        throw new core.InvalidReferenceError(
          `tarball:${text}`,
          'expected one or more file paths separated by ":"',
        );
      }
      if (text.includes('\0'))
        throw new core.InvalidReferenceError(`tarball:${text}`, 'the path contains a NUL byte');
      this.resolvedPaths = paths.map((p) => resolve(p));
    }

    get transport(): TarballTransport {
      return transport;
    }

    stringWithinTransport(): string {
      return this.paths.join(':');
    }

    toString(): string {
      return `tarball:${this.stringWithinTransport()}`;
    }

    /** None, as in containers/image: only the default policy scope applies to tarballs. */
    policyConfigurationIdentity(): string {
      return '';
    }

    policyConfigurationNamespaces(): string[] {
      return [];
    }

    async newImageSource(
      ctx: ImgCore.SystemContext,
      options: ImgCore.OperationOptions = {},
    ): Promise<ImgCore.ImageSource> {
      const layers: TarballLayer[] = [];
      for (const path of this.resolvedPaths) {
        layers.push(await readTarballLayer(core, path, this.toString(), options.signal));
      }
      return new Source(this, layers, ctx);
    }

    async newImageDestination(): Promise<ImgCore.ImageDestination> {
      throw new core.NotSupportedError(
        `the tarball transport is read-only: ${this.toString()} can be copied from, not to`,
      );
    }
  }

  class Source implements ImgCore.ImageSource {
    readonly hasThreadSafeGetBlob = true;
    private readonly manifest: Uint8Array;
    private readonly manifestDigest: ImgCore.Digest;
    private readonly config: Uint8Array;
    private readonly configDigest: ImgCore.Digest;
    private readonly layers: Map<string, TarballLayer>;

    constructor(
      readonly reference: Reference,
      layers: readonly TarballLayer[],
      ctx: ImgCore.SystemContext,
    ) {
      const options = (ctx.transportOptions?.tarball ?? {}) as TarballOptions;
      const newest = Math.max(...layers.map((l) => l.mtime.getTime()));
      const created = options.created ?? new Date(newest).toISOString();
      const config = {
        created,
        architecture: ctx.architectureChoice ?? goArch[process.arch] ?? process.arch,
        os: ctx.osChoice ?? 'linux',
        ...(ctx.variantChoice ? { variant: ctx.variantChoice } : {}),
        config: options.config ?? {},
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffID) },
        history: layers.map((l) => ({
          created,
          created_by: `img-transport-tarball: ${l.path}`,
        })),
      };
      this.config = Buffer.from(JSON.stringify(config));
      this.configDigest = sha256(this.config);
      const manifest = {
        schemaVersion: 2,
        mediaType: manifestMediaType,
        config: { mediaType: configMediaType, digest: this.configDigest, size: this.config.length },
        layers: layers.map((l) => ({
          mediaType: layerMediaType[l.compression],
          digest: l.digest,
          size: l.size,
        })),
        ...(options.annotations ? { annotations: options.annotations } : {}),
      };
      this.manifest = Buffer.from(JSON.stringify(manifest));
      this.manifestDigest = sha256(this.manifest);
      this.layers = new Map(layers.map((l) => [l.digest, l]));
    }

    async getManifest(instanceDigest?: ImgCore.Digest): Promise<ImgCore.RawManifest> {
      if (instanceDigest !== undefined && instanceDigest !== this.manifestDigest) {
        throw new core.ManifestUnknownError(`${this.reference.toString()}@${instanceDigest}`);
      }
      return { bytes: this.manifest, mediaType: manifestMediaType };
    }

    async getBlob(info: ImgCore.BlobInfo, options: ImgCore.GetBlobOptions = {}): Promise<ImgCore.BlobStream> {
      if (info.digest === this.configDigest) {
        return { stream: Readable.from([Buffer.from(this.config)]), size: this.config.length };
      }
      const layer = this.layers.get(info.digest);
      if (!layer) throw new core.BlobUnknownError(info.digest, this.reference.toString());
      const stream = createReadStream(layer.path, options.signal ? { signal: options.signal } : {});
      return { stream, size: layer.size };
    }

    async getSignatures(): Promise<ImgCore.Signature[]> {
      return [];
    }

    async close(): Promise<void> {}
  }

  const transport: TarballTransport = {
    name: 'tarball',
    capabilities: { source: true, destination: false },
    parseReference(reference: string): TarballReference {
      return new Reference(reference.split(':'));
    },
    newReference(...paths: string[]): TarballReference {
      if (paths.some((p) => p.includes(':'))) {
        throw new core.InvalidReferenceError(`tarball:${paths.join(':')}`, 'a path may not contain ":"');
      }
      return new Reference(paths);
    },
    validatePolicyConfigurationScope(scope: string): void {
      throw new core.InvalidPolicyError(
        `invalid policy scope "${scope}" for tarball: only the default scope "" applies to tarballs`,
      );
    },
  };
  return transport;
}
