import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { builtinTransportPackages } from '../builtin-transports.js';
import Copy from '../commands/copy.js';
import { fastCommands } from './commands.js';
import { fastCommandSpec } from './spec-from-command.js';

// These tests read the build's output (dist/fast/, from scripts/build-fast-path.mjs).
const dist = fileURLToPath(new URL('../../dist/fast/', import.meta.url));
const built = existsSync(`${dist}meta.json`);

interface Metafile {
  inputs: Record<string, unknown>;
  outputs: Record<
    string,
    { imports: Array<{ path: string; kind: string; external?: boolean }>; entryPoint?: string }
  >;
}

function read<T>(name: string): T {
  if (!built) throw new Error(`${dist}${name} is missing: build first (pnpm turbo build --filter @img/cli)`);
  return JSON.parse(readFileSync(`${dist}${name}`, 'utf8')) as T;
}

const isNodeBuiltin = (path: string) =>
  path.startsWith('node:') || builtinModules.includes(path.replace(/^node:/, ''));

describe('the fast path bundle', () => {
  it('is pure ASCII, so that Node decodes and scans every module as one-byte text', () => {
    const meta = read<Metafile>('meta.json');
    const files = Object.keys(meta.outputs).filter((f) => f.endsWith('.js'));
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) {
      const text = readFileSync(fileURLToPath(new URL(`../../${file}`, import.meta.url)), 'utf8');
      expect(/[\u0080-\uffff]/.test(text), file).toBe(false);
    }
  });

  it('reads Node built-ins with process.getBuiltinModule, never through an ES module import', () => {
    const meta = read<Metafile>('meta.json');
    let calls = 0;
    for (const file of Object.keys(meta.outputs).filter((f) => f.endsWith('.js'))) {
      const text = readFileSync(fileURLToPath(new URL(`../../${file}`, import.meta.url)), 'utf8');
      expect(/^import [^;]* from ["']node:/m.test(text), file).toBe(false);
      calls += text.match(/process\.getBuiltinModule\("node:[\w/]+"\)/g)?.length ?? 0;
    }
    expect(calls).toBeGreaterThan(20);
  });

  it("takes undici's dispatcher and request API only, not its fetch, WebSocket or caches", () => {
    const inputs = Object.keys(read<Metafile>('meta.json').inputs);
    expect(inputs.some((p) => p.endsWith('scripts/undici-slim.cjs'))).toBe(true);
    expect(inputs.some((p) => p.includes('undici/lib/dispatcher/agent.js'))).toBe(true);
    // The response body's helpers keep a few of lib/web's modules; fetch itself is not among them.
    const left =
      /undici\/(index\.js|lib\/(mock|cache|web\/(websocket|eventsource|cache))\/|lib\/web\/fetch\/index\.js)/;
    expect(inputs.filter((p) => left.test(p))).toEqual([]);
  });

  it('contains no module of oclif, directly or through any dependency', () => {
    const meta = read<Metafile>('meta.json');
    const inputs = Object.keys(meta.inputs);
    expect(inputs.some((p) => p.includes('dist/fast-path/main.js'))).toBe(true);
    expect(inputs.filter((p) => p.includes('@oclif'))).toEqual([]);
    const imports = Object.values(meta.outputs).flatMap((o) => o.imports.map((i) => i.path));
    expect(imports.filter((p) => p.includes('@oclif'))).toEqual([]);
  });

  it('imports nothing from outside but Node’s own modules, so it runs wherever it is installed', () => {
    const meta = read<Metafile>('meta.json');
    const externals = Object.values(meta.outputs).flatMap((o) =>
      o.imports.filter((i) => i.external && !i.path.startsWith('./')).map((i) => i.path),
    );
    expect(externals.filter((p) => !isNodeBuiltin(p))).toEqual([]);
  });

  it('decides from one small module that loads the work and each transport only when asked', () => {
    const meta = read<Metafile>('meta.json');
    const main = meta.outputs['dist/fast/main.js']!;
    const staticImports = main.imports.filter((i) => i.kind === 'import-statement').map((i) => i.path);
    expect(staticImports.every(isNodeBuiltin)).toBe(true);
    const dynamic = main.imports.filter((i) => i.kind === 'dynamic-import').map((i) => i.path);
    expect(dynamic.sort()).toEqual(
      [
        ...Object.keys(fastCommands).map((id) => `./run-${id}.js`),
        ...builtinTransportPackages.map((b) => `./${b.package.split('/').pop()}.js`),
      ].sort(),
    );
    for (const b of builtinTransportPackages) {
      const name = b.package.split('/').pop();
      expect(meta.outputs[`dist/fast/${name}.js`], name).toBeDefined();
      const runCopy = meta.outputs['dist/fast/run-copy.js']!;
      expect(runCopy.imports.find((i) => i.path.endsWith(`/${name}.js`))?.kind, name).toBe('dynamic-import');
    }
  });

  it('carries the flag spec generated from the copy command as it is now', async () => {
    const manifest = read<{
      bin: string;
      dirname: string;
      helpFlags: string[];
      commands: Record<string, unknown>;
    }>('manifest.json');
    const pjson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    expect(manifest.bin).toBe(pjson.oclif.bin);
    expect(manifest.dirname).toBe(pjson.oclif.dirname);
    expect(manifest.helpFlags).toEqual(['--help']);
    const copy = fastCommandSpec(Copy);
    expect('spec' in copy && copy.spec).toEqual(manifest.commands.copy);
    const main = (await import(`${dist}main.js`)) as { builtManifest: unknown };
    expect(main.builtManifest).toEqual(manifest);
  });
});
