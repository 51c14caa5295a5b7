import { GoTime, goStruct } from './go-value.js';

type Json = Record<string, unknown>;

function object(value: unknown): Json | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function strings(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const list = value.filter((v): v is string => typeof v === 'string');
  return list.length > 0 ? list : undefined;
}

function stringMap(value: unknown): Json | undefined {
  const o = object(value);
  if (!o) return undefined;
  const out: Json = {};
  for (const [k, v] of Object.entries(o)) if (typeof v === 'string') out[k] = v;
  return Object.keys(out).length > 0 ? out : undefined;
}

// A Go map[string]struct{}: every value is written as {}.
function set(value: unknown): Json | undefined {
  const o = object(value);
  if (!o || Object.keys(o).length === 0) return undefined;
  return Object.fromEntries(Object.keys(o).map((k) => [k, goStruct({}, 'struct {}')]));
}

function time(value: unknown): GoTime | undefined {
  return typeof value === 'string' && value !== '' ? new GoTime(value) : undefined;
}

/**
 * An image config as containers/image's OCIConfig returns it and skopeo's `inspect --config`
 * prints it: the OCI image-spec `Image` struct (Docker-only fields dropped), fields in the spec's
 * order, empty optional fields left out, `config` and `rootfs` always present.
 */
export function ociConfigView(config: Json): object {
  const c = object(config.config) ?? {};
  const rootfs = object(config.rootfs) ?? {};
  const history = Array.isArray(config.history)
    ? config.history.map((h) => {
        const e = object(h) ?? {};
        return goStruct(
          {
            created: time(e.created),
            created_by: str(e.created_by),
            author: str(e.author),
            comment: str(e.comment),
            empty_layer: e.empty_layer === true ? true : undefined,
          },
          'v1.History',
        );
      })
    : undefined;
  return goStruct(
    {
      created: time(config.created),
      author: str(config.author),
      architecture: str(config.architecture),
      variant: str(config.variant),
      os: str(config.os),
      'os.version': str(config['os.version']),
      'os.features': strings(config['os.features']),
      config: goStruct(
        {
          User: str(c.User),
          ExposedPorts: set(c.ExposedPorts),
          Env: strings(c.Env),
          Entrypoint: strings(c.Entrypoint),
          Cmd: strings(c.Cmd),
          Volumes: set(c.Volumes),
          WorkingDir: str(c.WorkingDir),
          Labels: stringMap(c.Labels),
          StopSignal: str(c.StopSignal),
          ArgsEscaped: c.ArgsEscaped === true ? true : undefined,
        },
        'v1.ImageConfig',
      ),
      rootfs: goStruct(
        {
          type: typeof rootfs.type === 'string' ? rootfs.type : '',
          diff_ids: Array.isArray(rootfs.diff_ids) ? rootfs.diff_ids : null,
        },
        'v1.RootFS',
      ),
      history: history && history.length > 0 ? history : undefined,
    },
    'v1.Image',
  );
}

/**
 * The same config as Go templates see it: `--config --format` uses the Go field names of the
 * image-spec struct (`{{.Architecture}}`, `{{.Config.Labels}}`, `{{.RootFS.DiffIDs}}`), not the
 * JSON keys.
 */
export function ociConfigTemplateData(config: Json): object {
  const c = object(config.config) ?? {};
  const rootfs = object(config.rootfs) ?? {};
  const history = Array.isArray(config.history) ? config.history : [];
  return goStruct(
    {
      Created: time(config.created) ?? null,
      Author: str(config.author) ?? '',
      Architecture: str(config.architecture) ?? '',
      Variant: str(config.variant) ?? '',
      OS: str(config.os) ?? '',
      OSVersion: str(config['os.version']) ?? '',
      OSFeatures: strings(config['os.features']) ?? [],
      Config: goStruct(
        {
          User: str(c.User) ?? '',
          ExposedPorts: set(c.ExposedPorts) ?? {},
          Env: strings(c.Env) ?? [],
          Entrypoint: strings(c.Entrypoint) ?? [],
          Cmd: strings(c.Cmd) ?? [],
          Volumes: set(c.Volumes) ?? {},
          WorkingDir: str(c.WorkingDir) ?? '',
          Labels: stringMap(c.Labels) ?? {},
          StopSignal: str(c.StopSignal) ?? '',
          ArgsEscaped: c.ArgsEscaped === true,
        },
        'v1.ImageConfig',
      ),
      RootFS: goStruct(
        {
          Type: typeof rootfs.type === 'string' ? rootfs.type : '',
          DiffIDs: Array.isArray(rootfs.diff_ids) ? rootfs.diff_ids : [],
        },
        'v1.RootFS',
      ),
      History: history.map((h) => {
        const e = object(h) ?? {};
        return goStruct(
          {
            Created: time(e.created) ?? null,
            CreatedBy: str(e.created_by) ?? '',
            Author: str(e.author) ?? '',
            Comment: str(e.comment) ?? '',
            EmptyLayer: e.empty_layer === true,
          },
          'v1.History',
        );
      }),
    },
    'v1.Image',
  );
}
