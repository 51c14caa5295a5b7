import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { computeDigest, type Digest } from '../digest.js';
import { InvalidManifestError, UnsupportedMediaTypeError } from '../errors.js';
import { MediaTypes } from './media-types.js';
import { layerCompression, parseImageManifest, parseManifestList } from './validate.js';

const fixture = (name: string) =>
  new Uint8Array(readFileSync(new URL(`../../fixtures/manifest/${name}`, import.meta.url)));
const blob = (n: number): Digest => computeDigest(`blob ${n}`);
const v1id = (n: number) => createHash('sha256').update(`v1 ${n}`).digest('hex');
const bytes = (value: unknown) => Buffer.from(JSON.stringify(value));

function ociManifest(extra: Record<string, unknown> = {}) {
  return {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, digest: blob(0), size: 10 },
    layers: [
      { mediaType: MediaTypes.ociLayerGzip, digest: blob(1), size: 11 },
      { mediaType: MediaTypes.ociLayerZstd, digest: blob(2), size: 12, annotations: { 'org.example': 'x' } },
    ],
    ...extra,
  };
}

function dockerManifest(extra: Record<string, unknown> = {}) {
  return {
    schemaVersion: 2,
    mediaType: MediaTypes.dockerV2Schema2,
    config: { mediaType: MediaTypes.dockerConfig, size: 10, digest: blob(0) },
    layers: [{ mediaType: MediaTypes.dockerLayerGzip, size: 11, digest: blob(1) }],
    ...extra,
  };
}

interface Entry {
  id: number;
  parent?: number;
  blob: number;
  throwaway?: boolean;
}

/** A schema 1 manifest from entries listed newest first, as schema 1 lists them. */
function schema1(entries: Entry[]) {
  return {
    schemaVersion: 1,
    name: 'library/app',
    tag: 'v1',
    architecture: 'amd64',
    fsLayers: entries.map((e) => ({ blobSum: blob(e.blob) })),
    history: entries.map((e) => ({
      v1Compatibility: JSON.stringify({
        id: v1id(e.id),
        ...(e.parent !== undefined ? { parent: v1id(e.parent) } : {}),
        created: '2024-01-01T00:00:00Z',
        ...(e.throwaway ? { throwaway: true } : {}),
      }),
    })),
  };
}

describe('parseImageManifest: OCI', () => {
  it('reads the config and the layers base first', () => {
    const m = parseImageManifest(bytes(ociManifest()), MediaTypes.ociManifest);
    expect(m.config).toEqual({ mediaType: MediaTypes.ociConfig, digest: blob(0), size: 10 });
    expect(m.layers.map((l) => l.digest)).toEqual([blob(1), blob(2)]);
    expect(m.layers[1]?.annotations).toEqual({ 'org.example': 'x' });
  });

  it('reads annotations, subject and artifactType', () => {
    const subject = { mediaType: MediaTypes.ociManifest, digest: blob(9), size: 99 };
    const m = parseImageManifest(
      bytes(ociManifest({ annotations: { a: 'b' }, subject, artifactType: 'application/vnd.example.sbom' })),
    );
    expect([m.annotations, m.subject, m.artifactType]).toEqual([
      { a: 'b' },
      subject,
      'application/vnd.example.sbom',
    ]);
  });

  it('returns a frozen object', () => {
    const m = parseImageManifest(bytes(ociManifest()));
    expect([
      Object.isFrozen(m),
      Object.isFrozen(m.layers),
      Object.isFrozen(m.layers[0]),
      Object.isFrozen(m.config),
    ]).toEqual([true, true, true, true]);
  });

  it('keeps its own copy of the bytes', () => {
    const input = bytes(ociManifest());
    const m = parseImageManifest(input);
    input[0] = 0x20;
    expect(Buffer.from(m.raw).toString()).toBe(JSON.stringify(ociManifest()));
  });

  it('guesses the media type when none is given', () => {
    expect(parseImageManifest(bytes(ociManifest())).mediaType).toBe(MediaTypes.ociManifest);
  });

  it('ignores media type parameters', () => {
    expect(
      parseImageManifest(bytes(ociManifest()), `${MediaTypes.ociManifest}; charset=utf-8`).mediaType,
    ).toBe(MediaTypes.ociManifest);
  });

  it('accepts a manifest without a mediaType field when read as OCI', () => {
    const { mediaType: _, ...rest } = ociManifest();
    expect(parseImageManifest(bytes(rest), MediaTypes.ociManifest).layers).toHaveLength(2);
  });

  it('refuses a declared mediaType that disagrees with the one asked for', () => {
    expect(() => parseImageManifest(bytes(ociManifest()), MediaTypes.dockerV2Schema2)).toThrow(
      /declares mediaType "application\/vnd.oci.image.manifest.v1\+json" but was read as/,
    );
  });

  it('refuses a schemaVersion other than 2', () => {
    expect(() => parseImageManifest(bytes(ociManifest({ schemaVersion: 3 })))).toThrow(InvalidManifestError);
  });

  it('refuses an unknown media type', () => {
    expect(() => parseImageManifest(bytes(ociManifest()), 'application/vnd.example+json')).toThrow(
      UnsupportedMediaTypeError,
    );
  });

  it('refuses a list media type', () => {
    expect(() => parseImageManifest(bytes(ociManifest()), MediaTypes.ociIndex)).toThrow(/is a manifest list/);
  });

  it('refuses a layer digest of the wrong length', () => {
    const m = ociManifest();
    m.layers[0] = { ...m.layers[0], digest: 'sha256:abcd' as Digest } as (typeof m.layers)[0];
    expect(() => parseImageManifest(bytes(m))).toThrow(/layers\[0\] has an invalid digest/);
  });

  it('refuses a negative size', () => {
    const m = ociManifest({ config: { mediaType: MediaTypes.ociConfig, digest: blob(0), size: -1 } });
    expect(() => parseImageManifest(bytes(m))).toThrow(/config has an invalid size -1/);
  });

  it('refuses a fractional size', () => {
    const m = ociManifest({ config: { mediaType: MediaTypes.ociConfig, digest: blob(0), size: 1.5 } });
    expect(() => parseImageManifest(bytes(m))).toThrow(InvalidManifestError);
  });

  it('refuses a manifest without a config', () => {
    expect(() => parseImageManifest(bytes(ociManifest({ config: undefined })))).toThrow(
      /config is not an object/,
    );
  });

  it('refuses a manifest without layers', () => {
    expect(() => parseImageManifest(bytes(ociManifest({ layers: undefined })))).toThrow(/without "layers"/);
  });

  it('refuses a descriptor without a mediaType', () => {
    expect(() => parseImageManifest(bytes(ociManifest({ config: { digest: blob(0), size: 1 } })))).toThrow(
      /config has an invalid mediaType/,
    );
  });

  it('refuses a media type that breaks the RFC 6838 naming rules', () => {
    const m = ociManifest({ config: { mediaType: 'not a type', digest: blob(0), size: 1 } });
    expect(() => parseImageManifest(bytes(m))).toThrow(InvalidManifestError);
  });

  it('refuses a manifest that also has the fields of an index', () => {
    expect(() => parseImageManifest(bytes(ociManifest({ manifests: [] })))).toThrow(
      /ambiguous manifest: fields manifests/,
    );
  });

  it('refuses annotations whose values are not strings', () => {
    expect(() => parseImageManifest(bytes(ociManifest({ annotations: { a: 1 } })))).toThrow(
      /annotations is not a map of strings/,
    );
  });

  it('accepts a layer of a type it does not know, as OCI artifacts have', () => {
    const m = ociManifest({
      layers: [{ mediaType: 'application/vnd.example.data', digest: blob(1), size: 1 }],
    });
    expect(parseImageManifest(bytes(m)).layers[0]?.mediaType).toBe('application/vnd.example.data');
  });

  it('refuses data that is not base64', () => {
    const m = ociManifest({
      config: { mediaType: MediaTypes.ociEmpty, digest: blob(0), size: 2, data: 'e30*' },
    });
    expect(() => parseImageManifest(bytes(m))).toThrow(/config.data is not base64/);
  });

  it('refuses bytes that are not JSON', () => {
    expect(() => parseImageManifest(Buffer.from('{'), MediaTypes.ociManifest)).toThrow(/not valid JSON/);
  });
});

describe('parseImageManifest: Docker schema 2', () => {
  it('reads the config and layers', () => {
    const m = parseImageManifest(bytes(dockerManifest()));
    expect([m.mediaType, m.config?.digest, m.layers.map((l) => l.mediaType)]).toEqual([
      MediaTypes.dockerV2Schema2,
      blob(0),
      [MediaTypes.dockerLayerGzip],
    ]);
  });

  it('refuses a manifest without a mediaType field', () => {
    const { mediaType: _, ...rest } = dockerManifest();
    expect(() => parseImageManifest(bytes(rest), MediaTypes.dockerV2Schema2)).toThrow(
      /must declare its mediaType/,
    );
  });

  it('refuses a layer of an OCI type', () => {
    const m = dockerManifest({ layers: [{ mediaType: MediaTypes.ociLayerGzip, size: 1, digest: blob(1) }] });
    expect(() => parseImageManifest(bytes(m))).toThrow(UnsupportedMediaTypeError);
  });

  it('accepts a foreign layer with urls', () => {
    const layer = {
      mediaType: MediaTypes.dockerForeignLayerGzip,
      size: 1,
      digest: blob(1),
      urls: ['https://example.com/l'],
    };
    expect(parseImageManifest(bytes(dockerManifest({ layers: [layer] }))).layers[0]?.urls).toEqual([
      'https://example.com/l',
    ]);
  });
});

describe('parseImageManifest: schema 1', () => {
  const chain: Entry[] = [
    { id: 3, parent: 2, blob: 9, throwaway: true },
    { id: 2, parent: 1, blob: 2 },
    { id: 1, blob: 1 },
  ];

  it('lists layers base first with unknown sizes', () => {
    const m = parseImageManifest(bytes(schema1(chain)), MediaTypes.dockerV2Schema1);
    expect(m.layers.map((l) => [l.digest, l.size])).toEqual([
      [blob(1), -1],
      [blob(2), -1],
      [blob(9), -1],
    ]);
  });

  it('has no config', () => {
    expect(parseImageManifest(bytes(schema1(chain)), MediaTypes.dockerV2Schema1).config).toBeUndefined();
  });

  it('marks throwaway entries as empty layers', () => {
    const m = parseImageManifest(bytes(schema1(chain)), MediaTypes.dockerV2Schema1);
    expect(m.layers.map((l) => l.emptyLayer)).toEqual([false, false, true]);
  });

  it('reads name, tag and architecture', () => {
    const m = parseImageManifest(bytes(schema1(chain)));
    expect([m.schema1?.name, m.schema1?.tag, m.schema1?.architecture, m.schema1?.signed]).toEqual([
      'library/app',
      'v1',
      'amd64',
      false,
    ]);
  });

  it('keeps a blobSum repeated by distinct entries', () => {
    const m = parseImageManifest(
      bytes(
        schema1([
          { id: 2, parent: 1, blob: 7 },
          { id: 1, blob: 7 },
        ]),
      ),
    );
    expect(m.layers.map((l) => l.digest)).toEqual([blob(7), blob(7)]);
  });

  it('collapses consecutive entries with the same v1 ID', () => {
    const m = parseImageManifest(
      bytes(
        schema1([
          { id: 2, parent: 1, blob: 3 },
          { id: 2, parent: 1, blob: 2 },
          { id: 1, blob: 1 },
        ]),
      ),
    );
    expect([m.layers.map((l) => l.digest), m.schema1?.history.length]).toEqual([[blob(1), blob(2)], 2]);
  });

  it('refuses a v1 ID repeated in entries that are not consecutive', () => {
    const m = schema1([
      { id: 1, parent: 2, blob: 3 },
      { id: 2, parent: 1, blob: 2 },
      { id: 1, blob: 1 },
    ]);
    expect(() => parseImageManifest(bytes(m))).toThrow(/appears more than once/);
  });

  it('refuses an entry whose parent is not the entry below it', () => {
    const m = schema1([
      { id: 3, parent: 1, blob: 3 },
      { id: 2, parent: 1, blob: 2 },
      { id: 1, blob: 1 },
    ]);
    expect(() => parseImageManifest(bytes(m))).toThrow(/has parent ID/);
  });

  it('refuses a base entry with a parent', () => {
    expect(() => parseImageManifest(bytes(schema1([{ id: 1, parent: 0, blob: 1 }])))).toThrow(
      /base layer .* has a parent/,
    );
  });

  it('refuses fsLayers and history of different lengths', () => {
    const m = { ...schema1(chain), fsLayers: [{ blobSum: blob(1) }] };
    expect(() => parseImageManifest(bytes(m))).toThrow(/1 fsLayers but 3 history entries/);
  });

  it('refuses a v1 ID that is not 64 hex digits', () => {
    const m = schema1([{ id: 1, blob: 1 }]);
    m.history[0] = { v1Compatibility: '{"id":"abc"}' };
    expect(() => parseImageManifest(bytes(m))).toThrow(/invalid image ID "abc"/);
  });

  it('refuses a v1Compatibility that is not JSON', () => {
    const m = schema1([{ id: 1, blob: 1 }]);
    m.history[0] = { v1Compatibility: '{' };
    expect(() => parseImageManifest(bytes(m))).toThrow(/v1Compatibility is not JSON/);
  });

  it('refuses a created time that is not RFC 3339', () => {
    const m = schema1([{ id: 1, blob: 1 }]);
    m.history[0] = { v1Compatibility: JSON.stringify({ id: v1id(1), created: 'yesterday' }) };
    expect(() => parseImageManifest(bytes(m))).toThrow(/not an RFC 3339 time/);
  });

  it('refuses a schema 1 manifest with a config', () => {
    expect(() => parseImageManifest(bytes({ ...schema1(chain), config: {} }))).toThrow(/ambiguous manifest/);
  });

  it('reads a signed manifest and marks it signed', () => {
    const m = parseImageManifest(fixture('schema1-signed.json'), MediaTypes.dockerV2Schema1Signed);
    expect([m.schema1?.signed, m.layers.length]).toEqual([true, 3]);
  });

  it('refuses a signed manifest whose protected header has no formatLength', () => {
    const m = {
      ...schema1(chain),
      signatures: [{ protected: Buffer.from('{"formatTail":"Cn0"}').toString('base64url') }],
    };
    expect(() => parseImageManifest(bytes(m))).toThrow(/no valid "formatLength"/);
  });
});

describe('parseManifestList', () => {
  const instance = (n: number, platform?: Record<string, unknown>) => ({
    mediaType: MediaTypes.ociManifest,
    digest: blob(n),
    size: 100 + n,
    ...(platform ? { platform } : {}),
  });

  it('reads instances with their platforms', () => {
    const index = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: [instance(1, { architecture: 'arm', os: 'linux', variant: 'v7' })],
    };
    const list = parseManifestList(bytes(index));
    expect(list.manifests[0]).toEqual({
      ...instance(1),
      platform: { architecture: 'arm', os: 'linux', variant: 'v7' },
    });
  });

  it('reads an index without platforms or a mediaType field', () => {
    const list = parseManifestList(
      bytes({ schemaVersion: 2, manifests: [instance(1)] }),
      MediaTypes.ociIndex,
    );
    expect(list.manifests[0]?.platform).toBeUndefined();
  });

  it('reads index annotations', () => {
    const index = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: [],
      annotations: { a: 'b' },
    };
    expect(parseManifestList(bytes(index)).annotations).toEqual({ a: 'b' });
  });

  it('reads a Docker list', () => {
    const list = {
      schemaVersion: 2,
      mediaType: MediaTypes.dockerV2List,
      manifests: [
        {
          mediaType: MediaTypes.dockerV2Schema2,
          size: 1,
          digest: blob(1),
          platform: { architecture: 'amd64', os: 'linux' },
        },
      ],
    };
    expect(parseManifestList(bytes(list)).manifests[0]?.platform).toEqual({
      architecture: 'amd64',
      os: 'linux',
    });
  });

  it('refuses a Docker list without a mediaType field', () => {
    expect(() =>
      parseManifestList(bytes({ schemaVersion: 2, manifests: [] }), MediaTypes.dockerV2List),
    ).toThrow(/must declare its mediaType/);
  });

  it('refuses a platform without an os', () => {
    const index = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: [instance(1, { architecture: 'amd64' })],
    };
    expect(() => parseManifestList(bytes(index))).toThrow(/platform.os is not a string/);
  });

  it('refuses a list without manifests', () => {
    expect(() => parseManifestList(bytes({ schemaVersion: 2, mediaType: MediaTypes.ociIndex }))).toThrow(
      /without "manifests"/,
    );
  });

  it('refuses an image manifest', () => {
    expect(() => parseManifestList(bytes(ociManifest()))).toThrow(/single-image manifest, not a list/);
  });

  it('returns a frozen object', () => {
    const list = parseManifestList(
      bytes({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [instance(1)] }),
    );
    expect([Object.isFrozen(list), Object.isFrozen(list.manifests[0])]).toEqual([true, true]);
  });
});

describe('layerCompression', () => {
  it.each([
    [MediaTypes.ociLayerGzip, 'gzip'],
    [MediaTypes.ociLayerNondistributableGzip, 'gzip'],
    [MediaTypes.dockerLayerGzip, 'gzip'],
    [MediaTypes.dockerForeignLayerGzip, 'gzip'],
    [MediaTypes.ociLayerZstd, 'zstd'],
    [MediaTypes.ociLayerNondistributableZstd, 'zstd'],
    [MediaTypes.ociLayer, 'none'],
    [MediaTypes.dockerLayer, 'none'],
    [MediaTypes.dockerForeignLayer, 'none'],
    ['application/vnd.oci.image.layer.v1.tar+gzip+encrypted', 'unknown'],
    ['application/vnd.example.data', 'unknown'],
  ])('states %s as %s', (mediaType, compression) => {
    expect(layerCompression(mediaType)).toBe(compression);
  });
});
