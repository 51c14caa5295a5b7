import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { computeDigest, type Digest } from '../digest.js';
import { ManifestConversionError, UnsupportedMediaTypeError } from '../errors.js';
import {
  convertManifest,
  convertManifestList,
  layerMediaType,
  schema1ToConfig,
  updateLayerInfos,
} from './convert.js';
import { MediaTypes } from './media-types.js';
import { hostPlatform } from './platform.js';
import { parseImageManifest, parseManifestList } from './validate.js';

const fixture = (name: string) =>
  new Uint8Array(readFileSync(new URL(`../../fixtures/manifest/${name}`, import.meta.url)));
const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8');
const json = (bytes: Uint8Array) => JSON.parse(text(bytes));
const blob = (n: number): Digest => computeDigest(`blob ${n}`);
const bytes = (value: unknown) => Buffer.from(JSON.stringify(value));

/** The diff IDs of the two layers of the fixture images (see fixtures/manifest/README.md). */
const diffIDs: Digest[] = [
  'sha256:6d214e659d1afb9439acf798a4d5fce77ce4453ab4370f8972e71ef4f1653bdd',
  'sha256:f70842ef3a0fb9a1bdfb2a235d8269e3372319f61301d655df7c9fdee185ff77',
];

function ociManifest(layers: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}) {
  return parseImageManifest(
    bytes({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: blob(0), size: 10 },
      layers,
      ...extra,
    }),
  );
}

const gzipLayer = { mediaType: MediaTypes.ociLayerGzip, digest: blob(1), size: 11 };
const zstdLayer = { mediaType: MediaTypes.ociLayerZstd, digest: blob(2), size: 12 };

describe('convertManifest: Docker schema 2 and OCI', () => {
  it('writes the bytes skopeo writes for schema 2 → OCI, given its config', () => {
    const expected = fixture('schema2-to-oci.skopeo.json');
    const { config } = json(expected);
    const out = convertManifest(parseImageManifest(fixture('schema2.json')), MediaTypes.ociManifest, {
      config,
    });
    expect(text(out)).toBe(text(expected));
  });

  it('keeps the config digest and maps its type when no config is given', () => {
    const out = json(convertManifest(parseImageManifest(fixture('schema2.json')), MediaTypes.ociManifest));
    expect(out.config).toEqual({
      mediaType: MediaTypes.ociConfig,
      digest: 'sha256:9d05b298dd5814da1dfc9b71606d3e9f866e17a100a246cb0701042f6c57d718',
      size: 432,
    });
  });

  it('maps a Docker foreign layer to an OCI non-distributable one with its urls', () => {
    const out = json(convertManifest(parseImageManifest(fixture('schema2.json')), MediaTypes.ociManifest));
    expect(out.layers[1]).toMatchObject({
      mediaType: MediaTypes.ociLayerNondistributableGzip,
      urls: ['https://example.com/l2'],
    });
  });

  it('writes the bytes skopeo writes for OCI → schema 2, dropping annotations', () => {
    const out = convertManifest(
      parseImageManifest(fixture('oci-annotated.json')),
      MediaTypes.dockerV2Schema2,
    );
    expect(text(out)).toBe(text(fixture('oci-annotated-to-schema2.skopeo.json')));
  });

  it('maps an uncompressed OCI layer to an uncompressed Docker one', () => {
    const m = ociManifest([{ mediaType: MediaTypes.ociLayer, digest: blob(1), size: 1 }]);
    expect(json(convertManifest(m, MediaTypes.dockerV2Schema2)).layers[0].mediaType).toBe(
      MediaTypes.dockerLayer,
    );
  });

  it('maps an OCI non-distributable layer to a Docker foreign one', () => {
    const m = ociManifest([{ mediaType: MediaTypes.ociLayerNondistributable, digest: blob(1), size: 1 }]);
    expect(json(convertManifest(m, MediaTypes.dockerV2Schema2)).layers[0].mediaType).toBe(
      MediaTypes.dockerForeignLayer,
    );
  });

  it('refuses a zstd layer going to schema 2', () => {
    expect(() => convertManifest(ociManifest([gzipLayer, zstdLayer]), MediaTypes.dockerV2Schema2)).toThrow(
      ManifestConversionError,
    );
  });

  it('converts a zstd layer to schema 2 once it is replaced by a gzip one', () => {
    const layers = [gzipLayer, { digest: blob(3), size: 13, mediaType: MediaTypes.ociLayerGzip }];
    const out = json(
      convertManifest(ociManifest([gzipLayer, zstdLayer]), MediaTypes.dockerV2Schema2, { layers }),
    );
    expect(out.layers[1]).toEqual({ mediaType: MediaTypes.dockerLayerGzip, size: 13, digest: blob(3) });
  });

  it('refuses to turn an OCI artifact into a Docker image', () => {
    const m = parseImageManifest(
      bytes({
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        config: { mediaType: 'application/vnd.example.config', digest: blob(0), size: 1 },
        layers: [gzipLayer],
      }),
    );
    expect(() => convertManifest(m, MediaTypes.dockerV2Schema2)).toThrow(/not a container image/);
  });

  it('gives identical bytes when the same conversion runs twice', () => {
    const m = parseImageManifest(fixture('schema2.json'));
    expect(text(convertManifest(m, MediaTypes.ociManifest))).toBe(
      text(convertManifest(m, MediaTypes.ociManifest)),
    );
  });

  it('comes back to the same bytes after schema 2 → OCI → schema 2', () => {
    const docker = convertManifest(
      parseImageManifest(fixture('oci-annotated.json')),
      MediaTypes.dockerV2Schema2,
    );
    const oci = convertManifest(parseImageManifest(docker), MediaTypes.ociManifest);
    expect(text(convertManifest(parseImageManifest(oci), MediaTypes.dockerV2Schema2))).toBe(text(docker));
  });

  it('returns the bytes unchanged when converting to the same type without edits', () => {
    const raw = fixture('schema2.json');
    expect(text(convertManifest(parseImageManifest(raw), MediaTypes.dockerV2Schema2))).toBe(text(raw));
  });

  it('refuses a list type as the target', () => {
    expect(() =>
      convertManifest(parseImageManifest(fixture('schema2.json')), MediaTypes.dockerV2List),
    ).toThrow(/is a list type/);
  });

  it('refuses an unknown target type', () => {
    expect(() => convertManifest(parseImageManifest(fixture('schema2.json')), 'application/json')).toThrow(
      UnsupportedMediaTypeError,
    );
  });

  it('refuses converting to schema 1 as not supported', () => {
    expect(() =>
      convertManifest(parseImageManifest(fixture('schema2.json')), MediaTypes.dockerV2Schema1Signed),
    ).toThrow(/converting to application\/vnd.docker.distribution.manifest.v1\+prettyjws is not supported/);
  });

  it('refuses replacement layers of another count', () => {
    expect(() =>
      convertManifest(ociManifest([gzipLayer]), MediaTypes.dockerV2Schema2, { layers: [] }),
    ).toThrow(/layer count changed from 1 to 0/);
  });
});

describe('convertManifest: from schema 1', () => {
  const s1 = () => parseImageManifest(fixture('schema1.json'));
  const config = () => {
    const bytes = schema1ToConfig(s1(), diffIDs);
    return { digest: computeDigest(bytes), size: bytes.byteLength };
  };
  const sized = () =>
    s1()
      .layers.filter((l) => !l.emptyLayer)
      .map((l) => ({ digest: l.digest, size: 122 }));

  it('writes the bytes skopeo writes for schema 1 → schema 2', () => {
    const out = convertManifest(s1(), MediaTypes.dockerV2Schema2, { config: config(), layers: sized() });
    expect(text(out)).toBe(text(fixture('schema1-to-schema2.skopeo.json')));
  });

  it('accepts replacement layers that include the empty ones', () => {
    const all = s1().layers.map((l) => ({ digest: l.digest, size: 122 }));
    const out = convertManifest(s1(), MediaTypes.dockerV2Schema2, { config: config(), layers: all });
    expect(text(out)).toBe(text(fixture('schema1-to-schema2.skopeo.json')));
  });

  it('converts to OCI with OCI types', () => {
    const out = json(convertManifest(s1(), MediaTypes.ociManifest, { config: config(), layers: sized() }));
    expect([out.config.mediaType, ...out.layers.map((l: { mediaType: string }) => l.mediaType)]).toEqual([
      MediaTypes.ociConfig,
      MediaTypes.ociLayerGzip,
      MediaTypes.ociLayerGzip,
    ]);
  });

  it('refuses to convert without the config', () => {
    expect(() => convertManifest(s1(), MediaTypes.dockerV2Schema2, { layers: sized() })).toThrow(
      /needs the config blob/,
    );
  });

  it('refuses to write layers whose sizes are unknown', () => {
    expect(() => convertManifest(s1(), MediaTypes.dockerV2Schema2, { config: config() })).toThrow(
      /unknown size/,
    );
  });

  it('keeps a schema 1 manifest as it is when asked for schema 1', () => {
    const raw = fixture('schema1-signed.json');
    expect(text(convertManifest(parseImageManifest(raw), MediaTypes.dockerV2Schema1))).toBe(text(raw));
  });
});

describe('schema1ToConfig', () => {
  it('builds the config skopeo builds', () => {
    const out = schema1ToConfig(parseImageManifest(fixture('schema1.json')), diffIDs);
    expect(text(out)).toBe(text(fixture('schema1-to-schema2-config.skopeo.json')));
  });

  it('marks throwaway entries as empty in the history', () => {
    const out = json(schema1ToConfig(parseImageManifest(fixture('schema1.json')), diffIDs));
    expect(out.history.map((h: { empty_layer?: boolean }) => h.empty_layer ?? false)).toEqual([
      false,
      false,
      true,
    ]);
  });

  it('keeps the newest entry as written, numbers included', () => {
    const v1 = `{"id":"${'a'.repeat(64)}","created":"2024-01-01T00:00:00Z","config":{"Memory":1.50,"Cpu":1e3}}`;
    const m = parseImageManifest(
      bytes({ schemaVersion: 1, fsLayers: [{ blobSum: blob(1) }], history: [{ v1Compatibility: v1 }] }),
      MediaTypes.dockerV2Schema1,
    );
    expect(text(schema1ToConfig(m, [blob(9)]))).toContain('"config":{"Memory":1.50,"Cpu":1e3}');
  });

  it('writes created times as Go does', () => {
    const v1 = JSON.stringify({ id: 'a'.repeat(64), created: '2024-01-01T00:00:00.120000000-00:00' });
    const m = parseImageManifest(
      bytes({ schemaVersion: 1, fsLayers: [{ blobSum: blob(1) }], history: [{ v1Compatibility: v1 }] }),
      MediaTypes.dockerV2Schema1,
    );
    expect(json(schema1ToConfig(m, [blob(9)])).history[0].created).toBe('2024-01-01T00:00:00.12Z');
  });

  it('refuses a diff ID count other than the non-empty layer count', () => {
    expect(() => schema1ToConfig(parseImageManifest(fixture('schema1.json')), diffIDs.slice(1))).toThrow(
      /1 diff IDs for 2 non-empty schema 1 layers/,
    );
  });

  it('refuses a manifest that is not schema 1', () => {
    expect(() => schema1ToConfig(parseImageManifest(fixture('schema2.json')), diffIDs)).toThrow(
      ManifestConversionError,
    );
  });
});

describe('updateLayerInfos', () => {
  it('replaces digests and sizes and keeps the media types', () => {
    const out = json(updateLayerInfos(ociManifest([gzipLayer]), [{ digest: blob(5), size: 55 }]));
    expect(out.layers).toEqual([{ mediaType: MediaTypes.ociLayerGzip, digest: blob(5), size: 55 }]);
  });

  it('takes the compression from a replacement media type of either format', () => {
    const out = json(
      updateLayerInfos(ociManifest([gzipLayer]), [
        { digest: blob(5), size: 55, mediaType: MediaTypes.dockerLayer },
      ]),
    );
    expect(out.layers[0].mediaType).toBe(MediaTypes.ociLayer);
  });

  it('keeps annotations, subject and artifactType of an OCI manifest', () => {
    const subject = { mediaType: MediaTypes.ociManifest, digest: blob(8), size: 8 };
    const m = ociManifest([gzipLayer], {
      annotations: { b: '2', a: '1' },
      subject,
      artifactType: 'application/vnd.example',
    });
    const out = json(updateLayerInfos(m, [{ digest: blob(5), size: 55 }]));
    expect([out.annotations, out.subject, out.artifactType]).toEqual([
      { a: '1', b: '2' },
      subject,
      'application/vnd.example',
    ]);
  });

  it('writes annotation keys sorted byte-wise and escapes <, > and & as Go does', () => {
    const m = ociManifest([gzipLayer], { annotations: { b: '<&>', a: '1', B: '0', '10': 'x', '9': 'y' } });
    expect(text(updateLayerInfos(m, [{ digest: blob(5), size: 55 }]))).toContain(
      '"annotations":{"10":"x","9":"y","B":"0","a":"1","b":"\\u003c\\u0026\\u003e"}',
    );
  });

  it('drops the embedded data of a replaced layer', () => {
    const m = ociManifest([{ ...gzipLayer, data: 'aGVsbG8=' }]);
    expect(json(updateLayerInfos(m, [{ digest: blob(5), size: 55 }])).layers[0].data).toBeUndefined();
  });

  it('keeps a layer type it does not know in an OCI manifest', () => {
    const m = ociManifest([{ mediaType: 'application/vnd.example.data', digest: blob(1), size: 1 }]);
    expect(json(updateLayerInfos(m, [{ digest: blob(5), size: 5 }])).layers[0].mediaType).toBe(
      'application/vnd.example.data',
    );
  });

  it('refuses a zstd replacement in a schema 2 manifest', () => {
    const m = parseImageManifest(fixture('schema2.json'));
    const layers = m.layers.map((l) => ({
      digest: l.digest,
      size: l.size,
      mediaType: MediaTypes.ociLayerZstd,
    }));
    expect(() => updateLayerInfos(m, layers)).toThrow(/zstd compression is not supported/);
  });

  it('refuses a different layer count', () => {
    expect(() => updateLayerInfos(ociManifest([gzipLayer]), [])).toThrow(ManifestConversionError);
  });

  it('refuses to edit a schema 1 manifest', () => {
    const m = parseImageManifest(fixture('schema1.json'));
    expect(() =>
      updateLayerInfos(
        m,
        m.layers.map((l) => ({ digest: blob(5), size: l.size })),
      ),
    ).toThrow(/not supported/);
  });

  it('returns a schema 1 manifest unchanged when its layers are', () => {
    const raw = fixture('schema1.json');
    const m = parseImageManifest(raw);
    expect(text(updateLayerInfos(m, m.layers))).toBe(text(raw));
  });
});

describe('layerMediaType', () => {
  it.each([
    [MediaTypes.ociManifest, 'gzip', false, MediaTypes.ociLayerGzip],
    [MediaTypes.ociManifest, 'zstd', false, MediaTypes.ociLayerZstd],
    [MediaTypes.ociManifest, 'none', false, MediaTypes.ociLayer],
    [MediaTypes.ociManifest, 'gzip', true, MediaTypes.ociLayerNondistributableGzip],
    [MediaTypes.dockerV2Schema2, 'gzip', false, MediaTypes.dockerLayerGzip],
    [MediaTypes.dockerV2Schema2, 'none', false, MediaTypes.dockerLayer],
    [MediaTypes.dockerV2Schema2, 'gzip', true, MediaTypes.dockerForeignLayerGzip],
    [MediaTypes.dockerV2Schema2, 'none', true, MediaTypes.dockerForeignLayer],
    [MediaTypes.dockerV2Schema1Signed, 'gzip', false, MediaTypes.dockerLayerGzip],
  ] as const)('gives %s a %s layer (foreign: %s) the type %s', (manifest, compression, foreign, expected) => {
    expect(layerMediaType(manifest, compression, foreign)).toBe(expected);
  });

  it('refuses zstd in a Docker format', () => {
    expect(() => layerMediaType(MediaTypes.dockerV2Schema2, 'zstd')).toThrow(ManifestConversionError);
  });

  it('refuses a list type', () => {
    expect(() => layerMediaType(MediaTypes.ociIndex, 'gzip')).toThrow(UnsupportedMediaTypeError);
  });
});

describe('convertManifestList', () => {
  const dockerList = () => parseManifestList(fixture('list.skopeo.json'));

  it('converts a Docker list to an OCI index, instances untouched', () => {
    const out = convertManifestList(dockerList(), MediaTypes.ociIndex);
    expect(text(out)).toBe(
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:212f779dda1c12c9ccbb0c8ed6c909291543e9af38ce67e9d922b28617cbd27a","size":423,"platform":{"architecture":"arm","os":"linux","os.features":["f1"],"variant":"v7"}}]}',
    );
  });

  it('writes the bytes skopeo writes for the Docker list, from the OCI index', () => {
    const index = parseManifestList(convertManifestList(dockerList(), MediaTypes.ociIndex));
    expect(text(convertManifestList(index, MediaTypes.dockerV2List))).toBe(text(fixture('list.skopeo.json')));
  });

  it('drops index annotations going to Docker', () => {
    const index = parseManifestList(
      bytes({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [], annotations: { a: 'b' } }),
    );
    expect(json(convertManifestList(index, MediaTypes.dockerV2List))).toEqual({
      schemaVersion: 2,
      mediaType: MediaTypes.dockerV2List,
      manifests: [],
    });
  });

  it('gives an index entry without a platform the host OS and architecture', () => {
    const index = parseManifestList(
      bytes({
        schemaVersion: 2,
        mediaType: MediaTypes.ociIndex,
        manifests: [{ mediaType: MediaTypes.ociManifest, digest: blob(1), size: 1 }],
      }),
    );
    const host = hostPlatform();
    expect(json(convertManifestList(index, MediaTypes.dockerV2List)).manifests[0].platform).toEqual({
      architecture: host.architecture,
      os: host.os,
    });
  });

  it('returns the bytes unchanged for the same type', () => {
    expect(text(convertManifestList(dockerList(), MediaTypes.dockerV2List))).toBe(
      text(fixture('list.skopeo.json')),
    );
  });

  it('refuses an image manifest type as the target', () => {
    expect(() => convertManifestList(dockerList(), MediaTypes.ociManifest)).toThrow(/not a list type/);
  });
});
