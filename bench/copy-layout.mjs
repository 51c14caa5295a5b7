// Benchmarks img against skopeo in the same run: a large image from an OCI layout to another OCI
// layout and to dir:, a repeated copy into a destination that has the image, and `inspect`.
// Wall time is the median of --runs runs; peak RSS comes from GNU time (%M, KiB).
//
//   node bench/copy-layout.mjs [--size-mib 1024] [--layers 8] [--runs 3] [--work DIR]
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { createGzip } from 'node:zlib';
import { computeDigest, DigestingStream } from '@img/core';

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
const root = new URL('..', import.meta.url).pathname;
const imgBin = join(root, 'apps/cli/bin/run.js');
const work = values.work ?? (await mkdtemp(join(tmpdir(), 'img-bench-')));
const hasSkopeo = existsSync('/usr/bin/skopeo');
const hasTime = existsSync('/usr/bin/time');

/** Writes one layer: a tar holding one file of random bytes, gzip at level 0 (valid gzip, fast to make). */
async function writeLayer(dir, bytes) {
  const tmp = join(dir, `layer-${Math.random()}.tmp`);
  const header = Buffer.alloc(512);
  header.write('data.bin', 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${bytes.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\0' + '00', 257);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  async function* tar() {
    yield header;
    const chunk = 1 << 20;
    for (let left = bytes; left > 0; left -= chunk) yield randomBytes(Math.min(chunk, left));
    const pad = (512 - (bytes % 512)) % 512;
    yield Buffer.alloc(pad + 1024);
  }
  const digester = new DigestingStream();
  await pipeline(tar(), createGzip({ level: 0 }), digester, createWriteStream(tmp));
  return { tmp, digest: digester.digest, size: digester.bytes };
}

async function makeImage(layout) {
  // Build the image in a memory-free way: layers are files, the store gets them through a dir-like source.
  const { rename } = await import('node:fs/promises');
  await mkdir(join(layout, 'blobs/sha256'), { recursive: true });
  const layers = [];
  for (let i = 0; i < layerCount; i++) {
    const l = await writeLayer(layout, Math.floor((sizeMiB * 1048576) / layerCount));
    await rename(l.tmp, join(layout, 'blobs/sha256', l.digest.slice(7)));
    layers.push(l);
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
  );
  const configDigest = computeDigest(config);
  await writeFile(join(layout, 'blobs/sha256', configDigest.slice(7)), config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: configDigest,
        size: config.length,
      },
      layers: layers.map((l) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: l.digest,
        size: l.size,
      })),
    }),
  );
  const manifestDigest = computeDigest(manifest);
  await writeFile(join(layout, 'blobs/sha256', manifestDigest.slice(7)), manifest);
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: manifestDigest,
          size: manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': 'bench' },
        },
      ],
    }),
  );
}

function timed(cmd, args) {
  const argv = hasTime ? ['-f', '%e %M', cmd, ...args] : args;
  const start = process.hrtime.bigint();
  const r = spawnSync(hasTime ? '/usr/bin/time' : cmd, argv, { encoding: 'utf8' });
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const last = r.stderr.trim().split('\n').at(-1) ?? '';
  const rssKiB = hasTime ? Number(last.split(' ')[1]) : Number.NaN;
  return { wall, rssMiB: rssKiB / 1024 };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function scenario(name, tool, prepare, args) {
  const samples = [];
  for (let i = 0; i < runs; i++) {
    await prepare();
    execFileSync('sync');
    samples.push(
      tool === 'img' ? timed(process.execPath, [imgBin, ...args]) : timed('/usr/bin/skopeo', args),
    );
  }
  return {
    name,
    tool,
    wall: median(samples.map((s) => s.wall)),
    rssMiB: Math.max(...samples.map((s) => s.rssMiB)),
  };
}

const src = join(work, 'src');
const out = join(work, 'out');
console.error(`bench: building a ${sizeMiB} MiB image in ${layerCount} layers at ${src}`);
await rm(work, { recursive: true, force: true });
await mkdir(work, { recursive: true });
await makeImage(src);
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
    rows.push(await scenario(name, tool, prepare, ['--insecure-policy', ...args]));
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
