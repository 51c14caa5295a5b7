// Benchmarks img against skopeo writing into a containers-storage store (vfs, temp graph and run
// roots, never the machine's store): a large image from an OCI layout into a fresh store, a repeated
// copy into the store that has it, and, for scale, Node's and the CLI's start-up alone (`node -e 0`,
// `img --version`). Wall time is the median of --runs runs, img and skopeo taking turns; peak RSS
// comes from GNU time (%M, KiB).
//
//   node bench/storage.mjs [--size-mib 1024] [--layers 8] [--runs 3] [--work DIR]
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { hasSkopeo, makeImage, median, scenario, timed } from './lib.mjs';

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
const work = values.work ?? (await mkdtemp(join(tmpdir(), 'img-bench-storage-')));

const src = join(work, 'src');
const graph = join(work, 'store', 'g');
const runRoot = join(work, 'store', 'r');
const dest = `containers-storage:[vfs@${graph}+${runRoot}]localhost/bench:v1`;
console.error(`bench: building a ${sizeMiB} MiB image in ${layerCount} layers at ${src}`);
await rm(work, { recursive: true, force: true });
await mkdir(work, { recursive: true });
await makeImage(src, { sizeMiB, layerCount });
const freshStore = () => rm(join(work, 'store'), { recursive: true, force: true });
const noop = async () => {};

const scenarios = [
  ['oci → containers-storage (new)', freshStore, ['copy', '--quiet', `oci:${src}:bench`, dest]],
  ['oci → containers-storage (again)', noop, ['copy', '--quiet', `oci:${src}:bench`, dest]],
];
const rows = [];
const tools = hasSkopeo ? ['img', 'skopeo'] : ['img'];
// The tools take turns within each run, so that a change in the machine's speed falls on both alike.
// A repeated copy finds the image the last new copy left, whichever tool made it.
for (const [name, prepare, args] of runs > 0 ? scenarios : []) {
  const samples = new Map(tools.map((tool) => [tool, []]));
  for (let i = 0; i < runs; i++) {
    for (const tool of tools) {
      const one = await scenario({
        name,
        tool,
        runs: 1,
        prepare,
        args: ['--insecure-policy', ...args],
      });
      samples.get(tool).push(one);
      console.error(
        `${name}, ${tool}: ${one.wall.toFixed(3)} s (CPU: user ${one.user.toFixed(2)} s, system ${one.sys.toFixed(2)} s; ${one.faults} page faults)`,
      );
    }
  }
  for (const tool of tools) {
    const xs = samples.get(tool);
    rows.push({
      name,
      tool,
      wall: median(xs.map((x) => x.wall)),
      rssMiB: Math.max(...xs.map((x) => x.rssMiB)),
    });
  }
}
if (runs > 0) {
  // Node's own start-up, for scale: no copy can take less (NODE_EXTRA_CA_CERTS, when set, adds the
  // parsing of that bundle to every Node process).
  const samples = [];
  for (let i = 0; i < runs; i++) samples.push(await timed(process.execPath, ['-e', '0']));
  rows.push({
    name: `Node start-up alone (node -e 0${process.env.NODE_EXTRA_CA_CERTS ? ', NODE_EXTRA_CA_CERTS set' : ''})`,
    tool: 'img',
    wall: median(samples.map((s) => s.wall)),
    rssMiB: Math.max(...samples.map((s) => s.rssMiB)),
  });
}
if (runs > 0)
  rows.push(
    await scenario({
      name: 'CLI start-up (--version)',
      tool: 'img',
      runs,
      prepare: noop,
      args: ['--version'],
    }),
  );
await freshStore();

console.log(
  `\n${sizeMiB} MiB, ${layerCount} layers, vfs, median of ${runs} runs, node ${process.version}${hasSkopeo ? `, ${execFileSync('/usr/bin/skopeo', ['--version']).toString().trim()}` : ''}\n`,
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
