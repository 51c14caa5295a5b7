import type { ImageInspection } from '@img/core';
import { isJsonFormat, renderUserTemplate } from './go-template.js';
import { GoTime, goJson, goStruct } from './go-value.js';

/** skopeo's indentation of `inspect` JSON (json.MarshalIndent with four spaces). */
const indent = '    ';

/** The inspect result as skopeo's JSON output has it: structs in field order, maps sorted. */
export function inspectJsonView(out: ImageInspection): object {
  return goStruct(
    {
      ...out,
      LayersData: out.LayersData.map((l) => goStruct({ ...l }, 'types.ImageInspectLayer')),
    },
    'inspect.Output',
  );
}

/**
 * The inspect result as `--format` templates see it: every field of skopeo's Output struct
 * present (`{{.Name}}` is empty, not an error, for an image without a docker name), the creation
 * time a time.Time, and nil maps and lists empty, as Go prints them.
 */
export function inspectTemplateData(out: ImageInspection): object {
  return goStruct(
    {
      Name: out.Name ?? '',
      Tag: out.Tag ?? '',
      Digest: out.Digest,
      RepoTags: out.RepoTags,
      Created: out.Created === null ? null : new GoTime(out.Created),
      DockerVersion: out.DockerVersion,
      Labels: out.Labels ?? {},
      Architecture: out.Architecture,
      Variant: out.Variant ?? '',
      Os: out.Os,
      Layers: out.Layers,
      LayersData: out.LayersData.map((l) =>
        goStruct(
          { MIMEType: l.MIMEType, Digest: l.Digest, Size: l.Size, Annotations: l.Annotations ?? {} },
          'types.ImageInspectLayer',
        ),
      ),
      Env: out.Env ?? [],
    },
    'inspect.Output',
  );
}

/**
 * What `inspect` prints for a value: indented JSON (also for `--format json`), or the template
 * rendered against `templateData`; either way ending in one newline.
 */
export function formatOutput(jsonView: unknown, templateData: unknown, format: string | undefined): string {
  if (format === undefined || format === '' || isJsonFormat(format))
    return `${goJson(jsonView, { indent })}\n`;
  return renderUserTemplate(format, templateData);
}
