import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startCountingProxy, startDockerd } from '../packages/testing/dist/index.js';
import { hasSkopeo, imgBin, makeImage, median, timed } from './lib.mjs';

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '256' },
    layers: { type: 'string', default: '4' },
    runs: { type: 'string', default: '3' },
  },
});
const sizeMiB = Number(values['size-mib']);
const layerCount = Number(values.layers);
const runs = Number(values.runs);
const work = await mkdtemp(join(tmpdir(), 'img-bench-daemon-'));
const src = join(work, 'src');
console.error(`bench: building a ${sizeMiB} MiB image in ${layerCount} layers; starting dockerd`);
const { configDigest: imageId } = await makeImage(src, { sizeMiB, layerCount, compress: false });
const daemon = await startDockerd();
const proxy = await startCountingProxy(daemon.socket);
const name = 'img-bench/daemon:v1';

async function removeImage() {
  await daemon.docker(['image', 'rm', '--force', imageId]).catch(() => {});
}

async function sample(tool, prepare) {
  await prepare();
  proxy.reset();
  const args = [
    '--insecure-policy',
    'copy',
    '--dest-daemon-host',
    proxy.host,
    `oci:${src}:bench`,
    `docker-daemon:${name}`,
  ];
  const timing = await (tool === 'img' ? timed(imgBin, args) : timed('/usr/bin/skopeo', args));
  return {
    ...timing,
    requests: proxy.requests.length,
    loaded: proxy.requests
      .filter((r) => r.path.includes('/images/load'))
      .reduce((n, r) => n + r.requestBytes, 0),
  };
}

/** Runs a scenario `runs` times for every tool, the tools taking turns so that a change in load falls on both. */
async function scenario(label, tools, prepare) {
  const samples = new Map(tools.map((tool) => [tool, []]));
  for (let i = 0; i < runs; i++) {
    for (const tool of tools) samples.get(tool).push(await sample(tool, prepare));
  }
  return tools.map((tool) => {
    const xs = samples.get(tool);
    return {
      label,
      tool,
      wall: median(xs.map((s) => s.wall)),
      rssMiB: Math.max(...xs.map((s) => s.rssMiB)),
      requests: xs.at(-1).requests,
      loaded: xs.at(-1).loaded,
    };
  });
}

const rows = [];
try {
  const tools = hasSkopeo ? ['img', 'skopeo'] : ['img'];
  rows.push(...(await scenario('oci → docker-daemon (new)', tools, removeImage)));
  // "again": the image is present, whichever tool loaded it last.
  rows.push(...(await scenario('oci → docker-daemon (again)', tools, async () => {})));
} finally {
  await proxy.close();
  await daemon.stop();
  await rm(work, { recursive: true, force: true });
}

console.log(
  `\n${sizeMiB} MiB, ${layerCount} layers, median of ${runs} runs, node ${process.version}, dockerd vfs\n`,
);
console.log('| scenario | tool | wall s | peak RSS MiB | Engine API requests | bytes sent to /images/load |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.label} | ${r.tool} | ${r.wall.toFixed(3)} | ${r.rssMiB.toFixed(0)} | ${r.requests} | ${r.loaded} |`,
  );
}
