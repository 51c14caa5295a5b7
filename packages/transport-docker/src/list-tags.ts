import type { OperationOptions, SystemContext } from '@img/core';
import { RegistryError } from '@img/core';
import { dockerConfig, dockerOptions } from './context.js';
import type { DockerReference } from './reference.js';
import { header, RegistryClient } from './registry/client.js';
import { readCapped, redactUrl } from './registry/errors.js';

/** Options of {@link listTags}. */
export interface ListTagsOptions extends OperationOptions {
  /** Tags asked per page (`n`); the registry may return fewer. Default: the registry's choice. */
  pageSize?: number | undefined;
}

/** One page of tags is buffered, up to this size. */
const maxPageSize = 16 * 1024 * 1024;

/** The `rel="next"` target of a Link header (RFC 8288), resolved against the request URL. */
export function nextLink(value: string | undefined, base: URL): URL | undefined {
  if (!value) return undefined;
  for (const part of value.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>\s*(.*)$/.exec(part);
    if (!m) continue;
    if (/(?:^|;)\s*rel\s*=\s*"?next"?\s*(?:;|$)/i.test(m[2] ?? '')) return new URL(m[1] as string, base);
  }
  return undefined;
}

/**
 * Lists the tags of the reference's repository (its tag or digest is ignored), following the
 * registry's Link pagination (distribution spec "Listing Tags").
 *
 * @example
 * for await (const tag of listTags(ref, {})) console.log(tag);
 */
export async function* listTags(
  ref: DockerReference,
  ctx: SystemContext = {},
  options: ListTagsOptions = {},
): AsyncGenerator<string> {
  const client = new RegistryClient({
    host: ref.host,
    repository: ref.repository,
    actions: 'pull',
    options: dockerOptions(ctx),
    config: dockerConfig(),
  });
  const first = new URL(`/v2/${ref.repository}/tags/list`, await client.baseUrl(options.signal));
  if (options.pageSize !== undefined) first.searchParams.set('n', String(options.pageSize));
  let next: URL | undefined = first;
  const seen = new Set<string>();
  while (next !== undefined) {
    if (seen.has(next.href)) break; // a registry that links a page to itself
    seen.add(next.href);
    const res = await client.request({ method: 'GET', target: next, signal: options.signal });
    if (res.statusCode !== 200) throw await client.failure(res, 'GET');
    const body = await readCapped(res.body, maxPageSize, `tag list of ${ref.dockerReference.name()}`);
    let tags: unknown;
    try {
      tags = (JSON.parse(body.toString('utf8')) as { tags?: unknown }).tags;
    } catch (error) {
      throw new RegistryError(
        { method: 'GET', url: redactUrl(res.url), status: res.statusCode },
        `GET ${redactUrl(res.url)}: the tag list is not JSON`,
        { cause: error },
      );
    }
    if (Array.isArray(tags)) for (const tag of tags) if (typeof tag === 'string') yield tag;
    next = nextLink(header(res, 'link'), res.url);
  }
}
