import type { Digest, ImageInspection } from '@img/core';
import { describe, expect, it } from 'vitest';
import { formatOutput, inspectJsonView, inspectTemplateData } from './inspect-output.js';
import { ociConfigTemplateData, ociConfigView } from './oci-config.js';

const digest = `sha256:${'a'.repeat(64)}` as Digest;
const inspection: ImageInspection = {
  Digest: digest,
  RepoTags: [],
  Created: '2023-01-02T03:04:05Z',
  DockerVersion: '',
  Labels: { 'a.b': 'c<d>' },
  Architecture: 'amd64',
  Os: 'linux',
  Layers: [digest],
  LayersData: [
    { MIMEType: 'application/vnd.oci.image.layer.v1.tar+gzip', Digest: digest, Size: 29, Annotations: null },
  ],
  Env: null,
};

describe('inspect output', () => {
  it('is JSON indented with four spaces, HTML characters escaped, as skopeo prints it', () => {
    const text = formatOutput(inspectJsonView(inspection), inspectTemplateData(inspection), undefined);
    expect(text).toBe(`{
    "Digest": "${digest}",
    "RepoTags": [],
    "Created": "2023-01-02T03:04:05Z",
    "DockerVersion": "",
    "Labels": {
        "a.b": "c\\u003cd\\u003e"
    },
    "Architecture": "amd64",
    "Os": "linux",
    "Layers": [
        "${digest}"
    ],
    "LayersData": [
        {
            "MIMEType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "Digest": "${digest}",
            "Size": 29,
            "Annotations": null
        }
    ],
    "Env": null
}
`);
    expect(formatOutput(inspectJsonView(inspection), inspectTemplateData(inspection), 'json')).toBe(text);
  });

  it("gives templates every field of skopeo's struct, Name empty when there is none", () => {
    const data = inspectTemplateData(inspection);
    expect(formatOutput(inspection, data, '[{{.Name}}] {{.Created}} {{.Env}} {{.Labels}}')).toBe(
      '[] 2023-01-02 03:04:05 +0000 UTC [] map[a.b:c<d>]\n',
    );
    expect(() => formatOutput(inspection, data, '{{.Nope}}')).toThrow(
      /can't evaluate field Nope in type inspect.Output/,
    );
  });
});

describe('config output', () => {
  const config = {
    architecture: 'amd64',
    os: 'linux',
    created: '2023-01-02T03:04:05.500Z',
    docker_version: '24.0.0',
    container_config: { Hostname: 'x' },
    config: { Labels: { b: '1', a: '2' }, ExposedPorts: { '80/tcp': {} }, Env: ['A=1'], Cmd: [] },
    rootfs: { type: 'layers', diff_ids: [digest] },
    history: [{ created_by: 'RUN x', empty_layer: true }],
  };

  it('has the OCI image-spec fields in order, Docker-only and empty fields left out', () => {
    expect(formatOutput(ociConfigView(config), ociConfigTemplateData(config), undefined)).toBe(`{
    "created": "2023-01-02T03:04:05.5Z",
    "architecture": "amd64",
    "os": "linux",
    "config": {
        "ExposedPorts": {
            "80/tcp": {}
        },
        "Env": [
            "A=1"
        ],
        "Labels": {
            "a": "2",
            "b": "1"
        }
    },
    "rootfs": {
        "type": "layers",
        "diff_ids": [
            "${digest}"
        ]
    },
    "history": [
        {
            "created_by": "RUN x",
            "empty_layer": true
        }
    ]
}
`);
  });

  it('gives templates the Go field names', () => {
    expect(
      formatOutput(
        {},
        ociConfigTemplateData(config),
        '{{.Architecture}} {{.Config.Labels.a}} {{len .RootFS.DiffIDs}}',
      ),
    ).toBe('amd64 2 1\n');
  });
});
