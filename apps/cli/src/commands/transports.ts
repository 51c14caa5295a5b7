import { type Transport, type TransportCapabilities, transports } from '@img/core';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../base-command.js';
import { loadTransports, type TransportOrigin, transportOrigin } from '../transports.js';

/** One transport as `img transports --json` prints it. */
export interface TransportListing {
  name: string;
  origin: TransportOrigin | null;
  /** The transport's declared capabilities, or null when it declares none. */
  capabilities: TransportCapabilities | null;
}

/** The optional capabilities, in the order they are listed. */
const optional = [
  'deleteImage',
  'signatures',
  'alreadyContainsManifest',
  'supportsOutOfOrderPuts',
  'getBlobPath',
  'putBlobFromFile',
] as const satisfies ReadonlyArray<keyof TransportCapabilities>;

/** The capabilities column: read/write, then the optional capabilities declared true. */
export function describeCapabilities(capabilities: TransportCapabilities | undefined): string {
  if (!capabilities) return '(not declared)';
  const words: string[] = [];
  const source = capabilities.source ?? true;
  const destination = capabilities.destination ?? true;
  if (source && destination) words.push('read-write');
  else if (source) words.push('read-only');
  else if (destination) words.push('write-only');
  for (const name of optional) if (capabilities[name]) words.push(name);
  return words.join(', ');
}

/** The origin column: `built-in @img/transport-dir 1.0.0`, `plugin img-transport-s3 0.2.0 (linked)`. */
export function describeOrigin(origin: TransportOrigin | undefined): string {
  if (!origin) return 'unknown (registered by code outside img)';
  const parts = [origin.kind, origin.package];
  if (origin.version) parts.push(origin.version);
  if (origin.pluginType === 'link') parts.push('(linked)');
  return parts.join(' ');
}

/** The rows of the listing, one per registered transport, sorted by name. */
export function listTransports(list: readonly Transport[] = transports.list()): TransportListing[] {
  return list.map((t) => ({
    name: t.name,
    origin: transportOrigin(t.name) ?? null,
    capabilities: t.capabilities ?? null,
  }));
}

/** Aligns rows of cells into columns separated by two spaces. */
function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '))
    .join('\n');
}

/** `img transports`: every transport this img can use, where it comes from, what it can do. */
export default class Transports extends BaseCommand<typeof Transports> {
  static override summary = 'List the transports, with their origin and capabilities.';

  static override description =
    `Lists every transport that image names may use (the "docker" of docker://busybox): the built-in ones and those of installed plugins ("img plugins install"), with the package and version each comes from and the capabilities it declares.
read-only transports can only be copied from. The optional capabilities are those of docs/contract.md: deleteImage (img delete), signatures, alreadyContainsManifest (a repeated copy moves nothing), supportsOutOfOrderPuts (signatures added without moving blobs), getBlobPath and putBlobFromFile (kernel copies between files).
A plugin that cannot be loaded is reported by a warning line on stderr and left out.`;

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    {
      description: 'The same as JSON, for scripts.',
      command: '<%= config.bin %> <%= command.id %> --json',
    },
  ];

  static override flags = {
    json: Flags.boolean({ description: 'Print the list as JSON.' }),
  };

  async run(): Promise<void> {
    await loadTransports(this.config);
    const listing = listTransports();
    if (this.flags.json) {
      this.write(`${JSON.stringify(listing, null, 2)}\n`);
      return;
    }
    const rows = [['NAME', 'ORIGIN', 'CAPABILITIES']];
    for (const t of transports.list()) {
      rows.push([t.name, describeOrigin(transportOrigin(t.name)), describeCapabilities(t.capabilities)]);
    }
    this.write(`${table(rows)}\n`);
  }
}
