import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file runs in its own forked process: a fault that is never
    // resolved can only hang that process, and tests that could hang run in
    // child processes killed by pid (test/helpers/child.ts).
    pool: 'forks',
    reporters: ['default', './test/reporters/summary-line.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
