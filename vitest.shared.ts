import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));
const packages = readdirSync(`${root}packages`);

/**
 * Tests import workspace packages from their sources, so a change is tested without a build
 * and a stale dist/ can never hide a bug. The CLI end-to-end tests run the built binary.
 */
export const sourceAliases = [
  { find: /^@img\/testing\/conformance$/, replacement: `${root}packages/testing/src/conformance.ts` },
  ...packages.map((dir) => ({
    find: new RegExp(`^@img/${dir}$`),
    replacement: `${root}packages/${dir}/src/index.ts`,
  })),
];
