// Benchmarks img against skopeo in the same run: a large image from an OCI layout to another OCI
// layout and to dir:, a repeated copy into a destination that has the image, and `inspect`.
// Wall time is the median of --runs runs; peak RSS comes from GNU time (%M, KiB).
//
//   node bench/copy-layout.mjs [--size-mib 1024] [--layers 8] [--runs 3] [--work DIR]
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { hasSkopeo, makeImage, scenario } from './lib.mjs';

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    layers: { type: 'string', default: '8' },
    runs: { type: 'string', default: '3' },
    work: { type: 'string' },
  },
});
const sizeMiB = Number(values['size-mib']);
const layerCount = Number(values.layers);
const runs = Number(values.runs);
const work = values.work ?? (await mkdtemp(join(tmpdir(), 'img-bench-')));

const src = join(work, 'src');
const out = join(work, 'out');
console.error(`bench: building a ${sizeMiB} MiB image in ${layerCount} layers at ${src}`);
await rm(work, { recursive: true, force: true });
await mkdir(work, { recursive: true });
await makeImage(src, { sizeMiB, layerCount });
const clean = () => rm(out, { recursive: true, force: true });
const noop = async () => {};

const scenarios = [
  ['oci → oci (new)', clean, ['copy', '--quiet', `oci:${src}:bench`, `oci:${out}:bench`]],
  ['oci → oci (again)', noop, ['copy', '--quiet', `oci:${src}:bench`, `oci:${out}:bench`]],
  ['oci → dir (new)', clean, ['copy', '--quiet', `oci:${src}:bench`, `dir:${out}`]],
  ['oci → dir (again)', noop, ['copy', '--quiet', `oci:${src}:bench`, `dir:${out}`]],
  ['inspect oci:', noop, ['inspect', `oci:${src}:bench`]],
];
const rows = [];
const tools = hasSkopeo ? ['img', 'skopeo'] : ['img'];
for (const tool of runs > 0 ? tools : []) {
  for (const [name, prepare, args] of scenarios) {
    rows.push(await scenario({ name, tool, runs, prepare, args: ['--insecure-policy', ...args] }));
  }
}
await clean();

console.log(
  `\n${sizeMiB} MiB, ${layerCount} layers, median of ${runs} runs, node ${process.version}${hasSkopeo ? `, ${execFileSync('/usr/bin/skopeo', ['--version']).toString().trim()}` : ''}\n`,
);
console.log(
  '| scenario | img wall s | img peak RSS MiB | skopeo wall s | skopeo peak RSS MiB | img / skopeo |',
);
console.log('|---|---|---|---|---|---|');
for (const r of rows.filter((r) => r.tool === 'img')) {
  const s = rows.find((x) => x.tool === 'skopeo' && x.name === r.name);
  console.log(
    `| ${r.name} | ${r.wall.toFixed(3)} | ${r.rssMiB.toFixed(0)} | ${s ? s.wall.toFixed(3) : '-'} | ${s ? s.rssMiB.toFixed(0) : '-'} | ${s ? (r.wall / s.wall).toFixed(2) : '-'} |`,
  );
}
if (!values.work) await rm(work, { recursive: true, force: true });
