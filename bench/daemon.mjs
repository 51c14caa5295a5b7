// Benchmarks copies into the Docker daemon, img against skopeo in the same run: a new image, and
// the same copy again (the case img was founded on). A private dockerd is started for the run, and
// a counting proxy in front of its socket counts the Engine API requests each copy makes and the
// bytes it sends to POST /images/load. Wall time is the median of --runs runs.
//
//   pnpm exec turbo run build && node bench/daemon.mjs [--size-mib 256] [--layers 4] [--runs 3]
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { startCountingProxy, startDockerd } from '../packages/testing/dist/index.js';
import { hasSkopeo, median, timed } from './lib.mjs';

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
const root = new URL('..', import.meta.url).pathname;
const imgBin = join(root, 'apps/cli/bin/run.js');
const digestOf = (bytes) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** One plain tar layer holding one file of random bytes; the daemon needs true DiffIDs. */
async function writeLayer(dir, bytes) {
  const header = Buffer.alloc(512);
  header.write('data.bin', 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${bytes.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\u000000', 257);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  async function* tar() {
    yield header;
    for (let left = bytes; left > 0; left -= 1 << 20) yield randomBytes(Math.min(left, 1 << 20));
    yield Buffer.alloc((512 - (bytes % 512)) % 512);
    yield Buffer.alloc(1024);
  }
  const hash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk, _e, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  const tmp = join(dir, `tmp-${process.pid}-${Math.random()}`);
  await pipeline(tar(), tap, createWriteStream(tmp));
  const digest = `sha256:${hash.digest('hex')}`;
  await rename(tmp, join(dir, digest.slice(7)));
  return { digest, size };
}

async function makeImage(layout) {
  const blobs = join(layout, 'blobs/sha256');
  await mkdir(blobs, { recursive: true });
  const layers = [];
  for (let i = 0; i < layerCount; i++)
    layers.push(await writeLayer(blobs, Math.floor((sizeMiB << 20) / layerCount)));
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    }),
  );
  await writeFile(join(blobs, digestOf(config).slice(7)), config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: digestOf(config),
        size: config.length,
      },
      layers: layers.map((l) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
        digest: l.digest,
        size: l.size,
      })),
    }),
  );
  await writeFile(join(blobs, digestOf(manifest).slice(7)), manifest);
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: digestOf(manifest),
          size: manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': 'bench' },
        },
      ],
    }),
  );
  return digestOf(config);
}

const work = await mkdtemp(join(tmpdir(), 'img-bench-daemon-'));
const src = join(work, 'src');
console.error(`bench: building a ${sizeMiB} MiB image in ${layerCount} layers; starting dockerd`);
const imageId = await makeImage(src);
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
  const timing = await (tool === 'img'
    ? timed(process.execPath, [imgBin, ...args])
    : timed('/usr/bin/skopeo', args));
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
