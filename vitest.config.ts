import { defineConfig } from 'vitest/config';

// One test file at a time: every file opens its own Dawn device on a 2-core software GPU, and
// running them side by side only makes each slower.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    // CLI runs measure no kernels (test/autotune.test.ts and one CLI test do, on purpose): runs
    // compared bit for bit take the same kernels, and the suite stays fast on 2 cores.
    env: { WEBGPU_FINETUNE_TUNE_BUDGET: '0' },
  },
});
