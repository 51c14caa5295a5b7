import { fileURLToPath } from 'node:url';
import { defineProject } from 'vitest/config';
import { sourceAliases } from '../../vitest.shared.js';

const testingSrc = fileURLToPath(new URL('../../packages/testing/src/', import.meta.url));

export default defineProject({
  resolve: {
    alias: [
      { find: /^@img\/testing\/source-conformance$/, replacement: `${testingSrc}source-conformance.ts` },
      ...sourceAliases,
    ],
  },
  test: { name: 'transport-tarball', include: ['src/**/*.test.ts'] },
});
