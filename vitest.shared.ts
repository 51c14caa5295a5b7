import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));

/**
 * Tests import workspace packages from their sources, so a change is tested without a build
 * and a stale dist/ can never hide a bug. The CLI end-to-end tests run the built binary.
 */
export const sourceAliases = Object.fromEntries(
  readdirSync(`${root}packages`).map((dir) => [`@img/${dir}`, `${root}packages/${dir}/src/index.ts`]),
);
