import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type koffiModule from 'koffi';

/** The koffi API this package uses (its module's default export). */
export type Koffi = typeof koffiModule;

/** How {@link loadKoffi} found koffi: its prebuilt binary directly, or koffi's own loader. */
export let koffiLoadedFrom: 'binary' | 'loader' | undefined;

/** The real directory of package `name` in a node_modules folder at or above `dir`, as Node finds it. */
function findPackage(name: string, dir: string): string | undefined {
  for (let at = dir; ; at = dirname(at)) {
    const candidate = join(at, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
    if (dirname(at) === at) return undefined;
  }
}

/**
 * Loads koffi for the module at `moduleUrl` (this package's, or the CLI bundle's that holds it).
 *
 * koffi's own loader costs 12–20 ms at every start here: it resolves its package through `exports`,
 * reads the ELF header of the Node binary to tell glibc from musl, and resolves its per-platform
 * package. A repeated copy into a store takes ~0.2 s in all, so this first tries what that loader
 * finds first on glibc Linux: `@koromix/koffi-<platform>-<arch>/<platform>_<arch>/koffi.node`
 * beside koffi (or in koffi's own node_modules), found by a plain node_modules walk. The binary is
 * taken only when it reports the version of the koffi package found; on any miss or failure (musl,
 * another layout, a koffi built from source) koffi's own loader runs as before. The binary's exports
 * are koffi's API: koffi's JavaScript only adds deprecated aliases, which this package does not use.
 */
export function loadKoffi(moduleUrl: string): Koffi {
  const here = dirname(fileURLToPath(moduleUrl));
  // In the CLI's bundle, `here` is the bundle's directory: koffi is found from this package's.
  const base = findPackage('@img/transport-storage', here) ?? here;
  const koffiDir = findPackage('koffi', base);
  if (koffiDir) {
    try {
      const { version } = JSON.parse(readFileSync(join(koffiDir, 'package.json'), 'utf8')) as {
        version?: string;
      };
      const platformPackage = join('@koromix', `koffi-${process.platform}-${process.arch}`);
      const binary = join(platformPackage, `${process.platform}_${process.arch}`, 'koffi.node');
      for (const path of [join(dirname(koffiDir), binary), join(koffiDir, 'node_modules', binary)]) {
        if (!existsSync(path)) continue;
        const module = { exports: {} as { version?: string } };
        process.dlopen(module, path);
        if (module.exports.version !== version) break;
        koffiLoadedFrom = 'binary';
        return module.exports as Koffi;
      }
    } catch {
      // Not loadable this way (another libc, say): koffi's own loader decides.
    }
  }
  koffiLoadedFrom = 'loader';
  return createRequire(join(base, 'package.json'))('koffi') as Koffi;
}
