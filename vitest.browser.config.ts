import { defineConfig } from 'vitest/config';

// The browser tests (npm run test:browser): Chromium drives the built page while the same
// program runs in Node for reference. Separate from vitest.config.ts so `vitest run` does not
// pick them up; one file at a time, with minutes per test on a software GPU.
export default defineConfig({
  test: {
    include: ['test-browser/**/*.spec.ts'],
    fileParallelism: false,
    testTimeout: 420_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
