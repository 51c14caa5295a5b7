// Shared by the bench scripts: a large random image in an OCI layout, and a timer that reads
// GNU time's peak RSS. Kept free of any img import so each script decides what it loads.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createGzip } from 'node:zlib';

export const hasSkopeo = existsSync('/usr/bin/skopeo');
export const hasTime = existsSync('/usr/bin/time');

/**
 * `img` as users start it: the launcher apps/cli/bin/img, which starts the Node first on PATH; this
 * script's Node is put first, for the scripts and the programs they start alike.
 */
export const imgBin = fileURLToPath(new URL('../apps/cli/bin/img', import.meta.url));
process.env.PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;

function digestOf(bytes) {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A pass-through that hashes what flows and counts it. */
function digester() {
  const hash = createHash('sha256');
  const stream = new Transform({
    transform(chunk, _enc, done) {
      hash.update(chunk);
      stream.bytes += chunk.length;
      done(null, chunk);
    },
  });
  stream.bytes = 0;
  stream.digest = () => `sha256:${hash.digest('hex')}`;
  return stream;
}

/**
 * Writes one layer: a tar holding one file of random bytes, gzip at level 0 (valid gzip, fast to
 * make), or the plain tar with `compress: false`.
 */
async function writeLayer(dir, bytes, compress) {
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
  // The tar's own digest is the layer's diff ID (the config lists those); the gzip's is the blob's.
  const diff = digester();
  const d = digester();
  const stages = compress ? [diff, createGzip({ level: 0 }), d] : [diff, d];
  await pipeline(tar(), ...stages, createWriteStream(tmp));
  return { tmp, digest: d.digest(), size: d.bytes, diffId: diff.digest() };
}

/**
 * Builds an image of `sizeMiB` MiB in `layerCount` random layers into the OCI layout `layout`, tagged
 * `tag`; gzip layers unless `compress` is false. Returns the manifest and config digests and the layers.
 */
export async function makeImage(layout, { sizeMiB, layerCount, tag = 'bench', compress = true }) {
  await mkdir(join(layout, 'blobs/sha256'), { recursive: true });
  const layers = [];
  for (let i = 0; i < layerCount; i++) {
    const l = await writeLayer(layout, Math.floor((sizeMiB * 1048576) / layerCount), compress);
    await rename(l.tmp, join(layout, 'blobs/sha256', l.digest.slice(7)));
    layers.push(l);
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      config: {},
    }),
  );
  const configDigest = digestOf(config);
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
        mediaType: `application/vnd.oci.image.layer.v1.tar${compress ? '+gzip' : ''}`,
        digest: l.digest,
        size: l.size,
      })),
    }),
  );
  const manifestDigest = digestOf(manifest);
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
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  return { manifestDigest, configDigest, layers };
}

/**
 * Runs a command to completion without blocking the event loop (a bench may serve the proxy the
 * command talks to); resolves with its wall time in s and, with GNU time, its peak RSS in MiB and
 * its user and system CPU time in s and its minor page faults (on a shared 2-core machine the CPU a
 * tool spends is often what its wall time follows; in this VM a page fault costs ~18 µs).
 */
export async function timed(cmd, args, options = {}) {
  const argv = hasTime ? ['-f', '%e %M %U %S %R', cmd, ...args] : args;
  const start = process.hrtime.bigint();
  const child = spawn(hasTime ? '/usr/bin/time' : cmd, argv, {
    ...options,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text) => {
    stderr += text;
  });
  const [code] = await once(child, 'close');
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${stderr}`);
  const last = stderr.trim().split('\n').at(-1) ?? '';
  const [, rssKiB, user, sys, faults] = hasTime ? last.split(' ').map(Number) : [];
  return {
    wall,
    rssMiB: (rssKiB ?? Number.NaN) / 1024,
    user: user ?? Number.NaN,
    sys: sys ?? Number.NaN,
    faults: faults ?? Number.NaN,
  };
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Times `runs` runs of one copy with img ({@link imgBin}) or skopeo, `prepare()` before
 * each; returns the median wall time (and user and system CPU time) and the highest peak RSS.
 */
export async function scenario({ name, tool, runs, prepare, args }) {
  const samples = [];
  for (let i = 0; i < runs; i++) {
    await prepare();
    execFileSync('sync');
    samples.push(tool === 'img' ? await timed(imgBin, args) : await timed('/usr/bin/skopeo', args));
  }
  return {
    name,
    tool,
    wall: median(samples.map((s) => s.wall)),
    rssMiB: Math.max(...samples.map((s) => s.rssMiB)),
    user: median(samples.map((s) => s.user)),
    sys: median(samples.map((s) => s.sys)),
    faults: median(samples.map((s) => s.faults)),
  };
}
