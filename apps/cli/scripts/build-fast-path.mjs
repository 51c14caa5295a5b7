// Builds the fast path (src/fast-path/) after `tsc`, into dist/fast/:
// - generates the flag spec of every fast command from its oclif command class (fastCommandSpec);
// - bundles, with code splitting, each command's runner (run-<id>.js) and each built-in transport
//   package (transport-<name>.js), their shared code in chunks/;
// - bundles the decision (main.js, which bin/run.js imports first) into one file with the specs, its
//   imports of the runners and transports pointing at those files.
// Also writes manifest.json (the specs, for reading) and meta.json (esbuild's metafiles, which
// fast-path/bundle.test.ts checks: no @oclif module, nothing external but Node's own).
//
//   node scripts/build-fast-path.mjs
import { readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Config } from '@oclif/core';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const pjson = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
const { fastCommands } = await import('../dist/fast-path/commands.js');
const { commandHooks, fastCommandSpec } = await import('../dist/fast-path/spec-from-command.js');

/** Modules with a native addon: loaded at run time, and only through the package that depends on them. */
const nativeModules = ['better-sqlite3', 'koffi'];

/**
 * A hook that oclif would run around a command (from img itself or a core plugin, never from the
 * user's plugins, which the fast path checks at run time); with one, no command takes the fast path.
 */
function blockingHook(config) {
  for (const plugin of config.getPluginsList()) {
    for (const event of commandHooks) {
      if ((plugin.hooks?.[event] ?? []).length > 0) return `${plugin.name} has a ${event} hook`;
    }
  }
  return undefined;
}

async function commandSpecs() {
  const config = await Config.load({ root, userPlugins: false, devPlugins: false });
  const blocked = blockingHook(config);
  if (blocked) {
    console.warn(`fast path: disabled, ${blocked}`);
    return {};
  }
  const specs = {};
  for (const id of Object.keys(fastCommands)) {
    // With a command `copy x`, oclif would read `img copy x …` as that command.
    if (config.commandIDs.some((other) => other.startsWith(`${id}:`))) {
      console.warn(`fast path: ${id} stays with oclif: it has subcommands`);
      continue;
    }
    const { default: command } = await import(`../dist/commands/${id.replaceAll(':', '/')}.js`);
    const result = fastCommandSpec(command);
    if ('reason' in result) console.warn(`fast path: ${id} stays with oclif: ${result.reason}`);
    else specs[id] = result.spec;
  }
  return specs;
}

/** The package directory and name that a file belongs to. */
async function owningPackage(file) {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const { name } = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
      if (name) return name;
    } catch {
      // No package.json here: go up.
    }
  }
  return undefined;
}

/**
 * Native modules stay outside the bundle, but a bare import of one from a chunk in dist/fast/ would
 * be resolved from @img/cli, which does not depend on it (pnpm, and npm at times, do not hoist it).
 * So an import from a dependency (`koffi` in @img/transport-storage) is replaced by a module that
 * requires it from that dependency's own directory. Only default imports are supported: a named one
 * fails the build.
 */
const nativeFromOwner = {
  name: 'native-from-owner',
  setup(b) {
    const filter = new RegExp(`^(${nativeModules.join('|')})$`);
    b.onResolve({ filter }, async (args) => {
      const owner = args.importer ? await owningPackage(args.importer) : undefined;
      if (!owner || owner === pjson.name) return { path: args.path, external: true };
      if (!pjson.dependencies?.[owner]) {
        return {
          errors: [{ text: `${owner} imports ${args.path} but is not a dependency of ${pjson.name}` }],
        };
      }
      return { path: `${owner}\0${args.path}`, namespace: 'native-from-owner' };
    });
    b.onLoad({ filter: /.*/, namespace: 'native-from-owner' }, (args) => {
      const [owner, module] = args.path.split('\0');
      return {
        contents: `import { createRequire } from 'node:module';
const fromHere = createRequire(import.meta.url);
export default createRequire(fromHere.resolve(${JSON.stringify(owner)}))(${JSON.stringify(module)});
`,
        loader: 'js',
        resolveDir: root,
      };
    });
  },
};

/**
 * Puts scripts/undici-slim.cjs (undici's dispatcher and request API, without fetch, WebSocket and
 * the rest of its index) in place of `undici` for every transport in the bundle.
 */
const undiciSlim = {
  name: 'undici-slim',
  setup(b) {
    b.onResolve({ filter: /^undici$/ }, () => ({ path: join(root, 'scripts/undici-slim.cjs') }));
  },
};

/** Puts the generated manifest in the bundle in place of src/fast-path/built-manifest.ts's `undefined`. */
function builtManifest(manifest) {
  return {
    name: 'built-manifest',
    setup(b) {
      b.onLoad({ filter: /[\\/]dist[\\/]fast-path[\\/]built-manifest\.js$/ }, () => ({
        contents: `export const builtManifest = ${JSON.stringify(manifest)};\n`,
        loader: 'js',
      }));
    },
  };
}

/** The output name of a package bundled as an entry of its own: `@img/transport-oci` → `transport-oci`. */
const entryName = (packageName) => packageName.split('/').pop();

/**
 * In the entry bundle, the command runners and the transport packages are the other bundle's
 * entries, next to it: `import('./run-copy.js')` stays as written, `import('@img/transport-oci')`
 * becomes `import('./transport-oci.js')`, so both bundles load one and the same module.
 */
function siblingEntries(transportPackages) {
  return {
    name: 'sibling-entries',
    setup(b) {
      b.onResolve({ filter: /^\.\/run-[a-z-]+\.js$/ }, (args) => ({ path: args.path, external: true }));
      b.onResolve({ filter: /^@img\/transport-/ }, (args) =>
        transportPackages.includes(args.path)
          ? { path: `./${entryName(args.path)}.js`, external: true }
          : { errors: [{ text: `${args.path} is not a built-in transport package` }] },
      );
    },
  };
}

const common = {
  absWorkingDir: root,
  outdir: join(root, 'dist/fast'),
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['typescript', '*.node'],
  metafile: true,
  logLevel: 'warning',
};

const { builtinTransportPackages } = await import('../dist/builtin-transports.js');
const transportPackages = builtinTransportPackages.map((b) => b.package);
const manifest = {
  bin: pjson.oclif.bin,
  dirname: pjson.oclif.dirname,
  helpFlags: [...new Set([...(pjson.oclif.additionalHelpFlags ?? []), '--help'])],
  commands: await commandSpecs(),
};
await rm(common.outdir, { recursive: true, force: true });

// The work: each fast command's runner (fast-path/run-<id>.ts) and each transport package is an entry,
// and what they share goes into chunks, so that a command loads its own code and its images' transports only.
const work = await build({
  ...common,
  entryPoints: {
    ...Object.fromEntries(
      Object.keys(fastCommands).map((id) => [`run-${id}`, `dist/fast-path/run-${id}.js`]),
    ),
    ...Object.fromEntries(transportPackages.map((p) => [entryName(p), p])),
  },
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  // CommonJS dependencies (undici, tar-stream) call require() for Node's modules; an ES module has none.
  banner: {
    js: "import { createRequire as __imgRequire } from 'node:module';\nconst require = __imgRequire(import.meta.url);",
  },
  plugins: [nativeFromOwner, undiciSlim],
});

// The entry bin/run.js imports first: the decision alone, in one file, so that a command oclif runs
// pays for one small module.
const entry = await build({
  ...common,
  entryPoints: { main: 'dist/fast-path/main.js' },
  plugins: [builtManifest(manifest), siblingEntries(transportPackages)],
});

/**
 * esbuild renames a top-level name that two bundled modules both declare. For a class that changes
 * its `name`, which errors take theirs from (ImgError sets `name` from the class): a renamed class
 * fails the build, rather than paying ~8 ms of start-up for esbuild's keepNames on every function.
 */
async function renamedClasses(meta) {
  const declared = (text) => [
    ...[...text.matchAll(/\bclass\s+([A-Za-z_$][\w$]*)/g)].map((m) => m[1]),
    ...[...text.matchAll(/\b(?:var|let|const)\s+([A-Za-z_$][\w$]*)\s*=\s*class\b/g)].map((m) => m[1]),
  ];
  const inputs = new Set();
  for (const file of Object.keys(meta.inputs)) {
    if (file.includes(':')) continue; // a virtual module
    for (const name of declared(await readFile(join(root, file), 'utf8'))) inputs.add(name);
  }
  const renamed = new Set();
  for (const file of Object.keys(meta.outputs)) {
    if (!file.endsWith('.js')) continue;
    for (const name of declared(await readFile(join(root, file), 'utf8'))) {
      const base = name.replace(/\d+$/, '');
      if (!inputs.has(name) && base !== name && inputs.has(base)) renamed.add(`${base} → ${name} in ${file}`);
    }
  }
  return [...renamed];
}

const metafile = {
  inputs: { ...work.metafile.inputs, ...entry.metafile.inputs },
  outputs: { ...work.metafile.outputs, ...entry.metafile.outputs },
};
const renamed = await renamedClasses(metafile);
if (renamed.length > 0) {
  throw new Error(`fast path: esbuild renamed classes (set keepNames in this script): ${renamed.join(', ')}`);
}
/**
 * Makes every output pure ASCII. A module with one character past U+00FF (a `→` in a comment that
 * esbuild keeps, a `μ` in a regular expression) is decoded to a two-byte string and scanned as one:
 * ~5 ms more start-up over the modules a copy loads. Each such UTF-16 unit becomes a `\uXXXX`
 * escape, which means the same in strings, templates, regular expressions, identifiers and comments.
 */
async function asciiOnly(meta) {
  for (const file of Object.keys(meta.outputs)) {
    if (!file.endsWith('.js')) continue;
    const path = join(root, file);
    const text = await readFile(path, 'utf8');
    // An odd run of backslashes before the character escapes it (`\→` is `→`): one goes.
    const ascii = text.replace(/(\\*)([\u0080-\uffff])/g, (_, slashes, c) => {
      const kept = slashes.length % 2 === 1 ? slashes.slice(1) : slashes;
      return `${kept}\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
    });
    if (ascii !== text) await writeFile(path, ascii);
  }
}
/**
 * Turns every static import of a Node built-in into a `process.getBuiltinModule` call at the top of
 * its module. For an `import` of a built-in, Node builds an ES module facade that reads every export
 * of it, lazy ones included: `node:crypto`'s loads WebCrypto, `node:fs`'s loads fs/promises. That is
 * ~1–2 ms per built-in, ~5 ms over the ones a copy loads; the call reads only the names used. Built-ins
 * have no dependency on the bundle, so evaluating them first, at the top, is what the imports did.
 */
async function builtinsFromProcess(meta) {
  const importLine = /^import ([^"';]+?) from ["'](node:[\w/]+)["'];\n/gm;
  for (const file of Object.keys(meta.outputs)) {
    if (!file.endsWith('.js')) continue;
    const path = join(root, file);
    const text = await readFile(path, 'utf8');
    const declarations = [];
    const rest = text.replace(importLine, (_, clause, id) => {
      const from = `process.getBuiltinModule(${JSON.stringify(id)})`;
      const named = /\{([^}]*)\}/.exec(clause);
      const outside = clause
        .replace(/\{[^}]*\}/, '')
        .split(',')
        .map((part) => part.trim())
        .filter(Boolean);
      for (const part of outside) {
        const namespace = /^\* as ([\w$]+)$/.exec(part);
        if (namespace) declarations.push(`const ${namespace[1]} = ${from};`);
        else if (/^[\w$]+$/.test(part)) declarations.push(`const ${part} = ${from};`);
        else throw new Error(`fast path: cannot rewrite \`import ${clause} from '${id}'\` in ${file}`);
      }
      if (named) {
        const bindings = named[1]
          .split(',')
          .map((b) => b.trim())
          .filter(Boolean)
          .map((b) => b.replace(/^([\w$]+) as ([\w$]+)$/, '$1: $2'));
        if (bindings.length > 0) declarations.push(`const { ${bindings.join(', ')} } = ${from};`);
      }
      return '';
    });
    if (declarations.length > 0) await writeFile(path, `${declarations.join('\n')}\n${rest}`);
  }
}
await builtinsFromProcess(metafile);
await asciiOnly(metafile);
await writeFile(join(common.outdir, 'meta.json'), `${JSON.stringify(metafile, null, 1)}\n`);
await writeFile(join(common.outdir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
