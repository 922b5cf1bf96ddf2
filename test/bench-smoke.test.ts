import { afterAll, describe, expect, it } from 'vitest';
import { parseBenchArgs } from '../bench/lib/args.ts';
import { measureCeiling } from '../bench/lib/ceiling.ts';
import { openBenchGpu, type BenchGpu } from '../bench/lib/engine.ts';
import { formatTable, JSON_KEYS, jsonRows } from '../bench/lib/report.ts';
import { denseRows } from '../bench/lib/rows.ts';
import { runRow } from '../bench/lib/run.ts';
import { loadTfjs, TfjsTimer } from '../bench/lib/tfjs.ts';
import { median, OpTimer, type TimingMethod } from '../bench/lib/timing.ts';

// Keeps the benchmark code (bench/kernels.ts and bench/lib) from rotting: the ceiling probe, the
// timers of both engines, TF.js's wiring onto our Dawn instance and the report formats run
// end to end on tiny shapes. No timing is asserted, only that the numbers are usable.

function expectPositive(v: number | null, what: string): void {
  expect(v, what).not.toBeNull();
  expect(Number.isFinite(v), `${what} = ${v} is finite`).toBe(true);
  expect(v as number, what).toBeGreaterThan(0);
}

describe('bench library', () => {
  let bench: BenchGpu | undefined;
  afterAll(() => bench?.gpu.destroy());

  it('parses the command line', () => {
    const a = parseBenchArgs(['--repeats', '3', '--only', 'conv2d,grad', '--no-tfjs', '--json', 'out.json']);
    expect(a).toMatchObject({ repeats: 3, only: ['conv2d', 'grad'], tfjs: false, json: 'out.json', wall: false, warmup: 1 });
    expect(parseBenchArgs([])).toMatchObject({ repeats: 5, only: [], tfjs: true });
    expect(() => parseBenchArgs(['--repeats', '0'])).toThrow(/--repeats must be an integer >= 1/);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
  });

  it('measures the FMA ceiling and times a tiny row in both engines', async () => {
    bench = await openBenchGpu();
    const { dawn, gpu, timestamps } = bench;
    const methods: TimingMethod[] = timestamps ? ['gpu-timestamps', 'wall'] : ['wall'];
    const tf = await loadTfjs(dawn);
    expect(tf.getBackend()).toBe('webgpu');

    for (const method of methods) {
      const timer = new OpTimer(gpu, method);
      const ceiling = await measureCeiling(gpu, timer, { targetMs: 2, repeats: 2 });
      expectPositive(ceiling.gflops, `${method} ceiling GFLOP/s`);
      expectPositive(ceiling.ms, `${method} ceiling ms`);

      const row = denseRows({ batch: 3, inFeatures: 70, outFeatures: 20, layer: 'tiny_dense' })[2];
      expect(row.name).toContain('grad');
      const r = await runRow(row, { gpu, timer, tf, tfTimer: new TfjsTimer(tf, method), warmup: 1, repeats: 2, ceilingGflops: ceiling.gflops });
      for (const k of ['oursMs', 'tfjsMs', 'oursGflops', 'tfjsGflops', 'speedup', 'oursWallMs', 'tfjsWallMs', 'ceilingGflops', 'flops'] as const) {
        expectPositive(r[k], `${method} ${k}`);
      }
      expect(r.timing).toBe(method);

      const json = JSON.parse(JSON.stringify(jsonRows([r])));
      expect(json).toHaveLength(1);
      expect(Object.keys(json[0]).sort()).toEqual([...JSON_KEYS].sort());
      for (const k of ['name', 'shape', 'oursMs', 'tfjsMs', 'oursGflops', 'ceilingGflops']) expect(json[0]).toHaveProperty(k);
      expect(json[0].name).toBe('tiny_dense grad_weights');
      expect(formatTable([r])).toContain('tiny_dense grad_weights');
      timer.destroy();
    }
  });
});
