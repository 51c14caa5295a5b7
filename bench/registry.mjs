// Benchmarks img against skopeo against the real registry (Debian's docker-registry) on loopback,
// in the same run: a push from an OCI layout, the same push again (the image is present), a pull
// into an OCI layout, and a copy between two repositories of the registry with a cold cache.
// Wall time is the median of --runs runs straight to the registry; peak RSS comes from GNU time.
// Requests and blob bytes come from one more run of each, through a counting proxy: the proxy
// relays every byte on the same cores, so its runs are timed apart (the "via proxy" column) and
// never mixed into the medians.
//
//   pnpm build && node bench/registry.mjs [--size-mib 1024] [--layers 8] [--runs 3] [--tools img,skopeo]
//     [--only push,again,pull,mount] [--work DIR]
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { hasSkopeo, imgBin, makeImage, median, timed } from './lib.mjs';

const root = new URL('..', import.meta.url).pathname;
// The servers come from the test helpers' build (packages/testing/dist), as the tests use them.
const { startFaultProxy, startRegistry } = await import(join(root, 'packages/testing/dist/index.js'));

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    layers: { type: 'string', default: '8' },
    runs: { type: 'string', default: '3' },
    work: { type: 'string' },
    tools: { type: 'string', default: hasSkopeo ? 'img,skopeo' : 'img' },
    only: { type: 'string', default: 'push,again,pull,mount' },
  },
});
const sizeMiB = Number(values['size-mib']);
const layerCount = Number(values.layers);
const runs = Number(values.runs);
const tools = values.tools.split(',');
const only = new Set(values.only.split(','));
const work = values.work ?? (await mkdtemp(join(tmpdir(), 'img-bench-registry-')));

await rm(work, { recursive: true, force: true });
await mkdir(work, { recursive: true });
const src = join(work, 'src');
console.error(`bench: building a ${sizeMiB} MiB image in ${layerCount} layers at ${src}`);
await makeImage(src, { sizeMiB, layerCount });

const registry = await startRegistry();
const proxy = await startFaultProxy({ target: registry.url });
let serial = 0;

// skopeo run as root keeps its blob-info cache in /var/lib/containers/cache whatever HOME says: the
// bench moves that file aside while it runs (and puts it back at the end), so every skopeo run
// starts cold, as every img run does with its fresh HOME.
const skopeoRootCache = '/var/lib/containers/cache/blob-info-cache-v1.boltdb';
const skopeoCacheBackup = `${skopeoRootCache}.img-bench-backup`;
const isRoot = process.getuid?.() === 0;
if (isRoot && existsSync(skopeoRootCache) && !existsSync(skopeoCacheBackup))
  await rename(skopeoRootCache, skopeoCacheBackup);
async function restoreSkopeoCache() {
  if (!isRoot || !existsSync(skopeoCacheBackup)) return;
  await rm(skopeoRootCache, { force: true });
  await rename(skopeoCacheBackup, skopeoRootCache);
}

/** A fresh HOME (and so a cold blob-info cache, for img and skopeo alike) for one command. */
async function freshEnv() {
  if (isRoot) await rm(skopeoRootCache, { force: true });
  const home = join(work, `home-${++serial}`);
  await mkdir(home, { recursive: true });
  return {
    ...process.env,
    HOME: home,
    XDG_DATA_HOME: join(home, '.local/share'),
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_RUNTIME_DIR: join(home, 'run'),
    IMG_DATA_DIR: join(home, 'img'),
    // As root, img's blob-info cache would be /var/lib/containers/cache's, kept between runs.
    IMG_BLOB_CACHE_DIR: join(home, 'img-blob-cache'),
  };
}

const toolArgs = {
  img: (args) => [imgBin, ['--insecure-policy', ...args]],
  skopeo: (args) => ['/usr/bin/skopeo', ['--insecure-policy', ...args]],
};

/**
 * One timed copy of a tool with the arguments `setup(host)` returns for the registry at `host`:
 * straight to the registry, or through the proxy (`counted`) with what the proxy saw.
 */
async function sample(tool, setup, counted) {
  const args = await setup(counted ? proxy.host : registry.host);
  execFileSync('sync');
  await proxy.settled();
  proxy.reset();
  const [cmd, argv] = toolArgs[tool](['copy', '--retry-times', '0', ...args]);
  const timing = await timed(cmd, argv, { env: await freshEnv() });
  console.error(
    `${tool}${counted ? ' via proxy' : ''}: ${timing.wall.toFixed(2)} s (CPU: user ${timing.user.toFixed(2)} s, system ${timing.sys.toFixed(2)} s; ${timing.faults} page faults)`,
  );
  if (!counted) return timing;
  await proxy.settled();
  return { ...timing, requests: proxy.count(), up: proxy.blobBytesUp, down: proxy.blobBytesDown };
}

/**
 * Runs one scenario `runs` times for every tool, the tools taking turns within each run so that a
 * change in the machine's load falls on both alike, then once more each through the proxy;
 * `setup(tool, run, host)` returns the copy arguments (`run` is 'counted' for the proxy's run).
 */
async function scenario(name, setup) {
  const samples = new Map(tools.map((tool) => [tool, []]));
  for (let i = 0; i < runs; i++) {
    for (const tool of tools)
      samples.get(tool).push(await sample(tool, (host) => setup(tool, i, host), false));
  }
  const counted = new Map();
  for (const tool of tools)
    counted.set(tool, await sample(tool, (host) => setup(tool, 'counted', host), true));
  return tools.map((tool) => {
    const xs = samples.get(tool);
    const c = counted.get(tool);
    return {
      name,
      tool,
      wall: median(xs.map((s) => s.wall)),
      rssMiB: Math.max(c.rssMiB, ...xs.map((s) => s.rssMiB)),
      viaProxy: c.wall,
      requests: c.requests,
      up: c.up,
      down: c.down,
    };
  });
}

const tls = ['--src-tls-verify=false', '--dest-tls-verify=false'];
const out = join(work, 'out');
// The image every pull and mount starts from, pushed once by skopeo (the reference implementation).
execFileSync(
  '/usr/bin/skopeo',
  [
    '--insecure-policy',
    'copy',
    '--dest-tls-verify=false',
    `oci:${src}:bench`,
    `docker://${registry.host}/bench/source:v1`,
  ],
  { env: await freshEnv() },
);

const rows = [];
if (only.has('again') && !only.has('push'))
  throw new Error('--only again needs push: it pushes again what push pushed');
if (only.has('push'))
  rows.push(
    ...(await scenario('push oci → registry (new repository)', async (tool, i, host) => [
      ...tls,
      `oci:${src}:bench`,
      `docker://${host}/bench/${tool}-push-${i}:v1`,
    ])),
  );
if (only.has('again'))
  rows.push(
    ...(await scenario('push again (image present)', async (tool, _i, host) => [
      ...tls,
      `oci:${src}:bench`,
      `docker://${host}/bench/${tool}-push-0:v1`,
    ])),
  );
if (only.has('pull'))
  rows.push(
    ...(await scenario('pull registry → oci (new layout)', async (_tool, _i, host) => {
      await rm(out, { recursive: true, force: true });
      return [...tls, `docker://${host}/bench/source:v1`, `oci:${out}:bench`];
    })),
  );
if (only.has('mount'))
  rows.push(
    ...(await scenario('registry → other repository, cold cache', async (tool, i, host) => [
      ...tls,
      `docker://${host}/bench/source:v1`,
      `docker://${host}/bench/${tool}-mount-${i}:v1`,
    ])),
  );

await proxy.close();
await registry.stop();
await restoreSkopeoCache();
if (!values.work) await rm(work, { recursive: true, force: true });

const mib = (n) => (n / 1048576).toFixed(1);
console.log(
  `\n${sizeMiB} MiB, ${layerCount} layers, wall s: median of ${runs} runs straight to the registry, node ${process.version}${hasSkopeo ? `, ${execFileSync('/usr/bin/skopeo', ['--version']).toString().trim()}` : ''}; via proxy s, requests and blob MiB (up/down): one more run through the counting proxy\n`,
);
console.log(
  '| scenario | img wall s | img RSS MiB | img via proxy s | img requests | img blob MiB up/down | skopeo wall s | skopeo RSS MiB | skopeo via proxy s | skopeo requests | skopeo blob MiB up/down | img / skopeo |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const name of new Set(rows.map((x) => x.name))) {
  const r = rows.find((x) => x.tool === 'img' && x.name === name);
  const s = rows.find((x) => x.tool === 'skopeo' && x.name === name);
  const cells = (x) =>
    x
      ? [
          x.wall.toFixed(2),
          x.rssMiB.toFixed(0),
          x.viaProxy.toFixed(2),
          x.requests,
          `${mib(x.up)}/${mib(x.down)}`,
        ]
      : ['-', '-', '-', '-', '-'];
  console.log(
    `| ${name} | ${cells(r).join(' | ')} | ${cells(s).join(' | ')} | ${r && s ? (r.wall / s.wall).toFixed(2) : '-'} |`,
  );
}
