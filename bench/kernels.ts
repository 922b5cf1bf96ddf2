/**
 * Kernel benchmark: each of our kernels at the reference model's shapes against the same
 * operation in TensorFlow.js's WebGPU backend, on the same adapter in the same process, and
 * against the adapter's measured FMA ceiling. See bench/README.md.
 */
import { writeFile } from 'node:fs/promises';
import { parseBenchArgs, USAGE } from './lib/args.ts';
import { CeilingProbe, type Ceiling } from './lib/ceiling.ts';
import { openBenchGpu } from './lib/engine.ts';
import { formatTable, jsonRows } from './lib/report.ts';
import { referenceRows } from './lib/rows.ts';
import { runRow, type RowResult } from './lib/run.ts';
import { loadTfjs, tfjsAdapter, TfjsTimer, type Tf } from './lib/tfjs.ts';
import { describeMethod, OpTimer, type TimingMethod } from './lib/timing.ts';

async function main(): Promise<number> {
  const args = parseBenchArgs(process.argv.slice(2));
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const rows = referenceRows().filter((r) => args.only.length === 0 || args.only.some((s) => r.name.includes(s)));
  if (args.list) {
    for (const r of rows) console.log(`${r.name}  [${r.shape}]`);
    return 0;
  }
  if (rows.length === 0) throw new Error(`--only ${args.only.join(',')} matches no row; --list shows them`);

  const { dawn, gpu, timestamps } = await openBenchGpu();
  const method: TimingMethod = timestamps && !args.wall ? 'gpu-timestamps' : 'wall';
  console.log(`adapter: ${gpu.describe()}`);
  console.log(`timing: ${describeMethod(method)}; median of ${args.repeats} after ${args.warmup} warm-up, engines alternating`);

  let tf: Tf | undefined;
  let tfTimer: TfjsTimer | undefined;
  if (args.tfjs) {
    tf = await loadTfjs(dawn);
    tfTimer = new TfjsTimer(tf, method);
    console.log(`rival: TensorFlow.js ${tf.version.tfjs} '${tf.getBackend()}' backend on ${tfjsAdapter(tf)} (same Dawn instance), fused conv2d / matMul with bias + relu`);
  } else {
    console.log('rival: none (--no-tfjs)');
  }

  const timer = new OpTimer(gpu, method);
  const probe = await CeilingProbe.create(gpu, timer);
  const describeCeiling = (c: Ceiling, when: string) =>
    `ceiling: ${c.gflops.toFixed(1)} GFLOP/s ${when} (shaders/fma_ceiling.wgsl: 8 independent vec4 FMA chains, ` +
    `${c.workgroups} x ${c.workgroupSize} invocations x ${c.iterations} iterations; fastest dispatch ${c.ms.toFixed(2)} ms)`;
  console.log(describeCeiling(probe.ceiling, 'at start'));

  const results: RowResult[] = [];
  const failures: string[] = [];
  for (const row of rows) {
    const t0 = performance.now();
    try {
      const r = await runRow(row, { gpu, timer, tf, tfTimer, warmup: args.warmup, repeats: args.repeats, ceilingGflops: probe.ceiling.gflops });
      results.push(r);
      const vs = r.speedup === null ? '' : ` vs TF.js ${r.tfjsMs!.toFixed(3)} ms (${r.speedup.toFixed(2)}x)`;
      console.error(`  ${row.name}: ${r.oursMs.toFixed(3)} ms${vs}  [${((performance.now() - t0) / 1000).toFixed(1)} s]`);
    } catch (e) {
      const msg = `${row.name} [${row.shape}]: ${(e as Error).message}`;
      failures.push(msg);
      console.error(`  FAILED ${msg}`);
    }
    // One more ceiling sample per row: the fastest seen over the whole run is the ceiling.
    await probe.refine(1);
  }

  // Percentages against the final ceiling, so a busy moment at start does not inflate them.
  const ceiling = probe.ceiling;
  for (const r of results) r.ceilingGflops = ceiling.gflops;
  console.log(describeCeiling(ceiling, `(fastest of ${5 + rows.length} dispatches over the run)`));
  console.log('');
  console.log(formatTable(results));
  const slow = results.filter((r) => r.speedup !== null && r.speedup < 3);
  if (tf) console.log(`\nrows below 3x TF.js: ${slow.length ? slow.map((r) => `${r.name} (${r.speedup!.toFixed(2)}x)`).join(', ') : 'none'}`);
  if (args.json) {
    await writeFile(args.json, `${JSON.stringify(jsonRows(results), null, 2)}\n`);
    console.log(`wrote ${args.json}`);
  }
  if (failures.length) {
    console.error(`\n${failures.length} row(s) failed:\n  ${failures.join('\n  ')}`);
    return 1;
  }
  probe.destroy();
  timer.destroy();
  gpu.destroy();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  },
);
