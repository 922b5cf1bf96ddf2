/**
 * What an optimizer costs per training step: the reference model (VGG16 base, blocks 1-4 frozen,
 * Flatten, Dense 256, Dropout, Dense 1) trained with SGD and with each other optimizer, steps
 * alternating between the models in one process, same data.
 *
 *   npx tsx bench/optimizer-step.ts [--size 60x90] [--batch 8] [--repeats 7] [--optimizers sgd,adam,adamw,rmsprop]
 *
 * Prints the median seconds per step of each and its ratio to SGD (plain SGD: no state buffers),
 * plus the optimizer state's device bytes.
 */
import { parseArgs } from 'node:util';
import { fmtBytes, setGpu, type Model } from '../src/index.ts';
import { openBenchGpu } from './lib/engine.ts';
import { referenceModel } from './lib/reference-model.ts';
import { randomData } from './lib/rows.ts';
import { median } from './lib/timing.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    size: { type: 'string', default: '60x90' }, batch: { type: 'string', default: '8' }, repeats: { type: 'string', default: '7' },
    optimizers: { type: 'string', default: 'sgd,adam' }, help: { type: 'boolean', default: false },
  } });
  if (values.help) {
    console.log('npx tsx bench/optimizer-step.ts [--size 60x90] [--batch 8] [--repeats 7] [--optimizers sgd,adam,adamw,rmsprop]');
    return;
  }
  const [h, w] = values.size!.split('x').map(Number);
  const batch = Number(values.batch);
  const repeats = Number(values.repeats);
  const names = values.optimizers!.split(',');
  const { gpu } = await openBenchGpu();
  setGpu(gpu);
  console.log(`adapter: ${gpu.describe()}`);
  console.log(`reference model at ${h}x${w}, batch ${batch}; median of ${repeats} steps after 2 warm-ups, models alternating`);
  const models: Model[] = [];
  for (const n of names) models.push(await referenceModel(h, w, n));
  const x = randomData(batch * h * w * 3, 1, 0, 1);
  const y = new Float32Array(batch).map((_, i) => i % 2);
  const times = names.map(() => [] as number[]);
  for (let r = 0; r < repeats + 2; r++) {
    for (let i = 0; i < models.length; i++) {
      const t0 = performance.now();
      await models[i].trainOnBatch(x, y);
      if (r >= 2) times[i].push((performance.now() - t0) / 1000);
    }
  }
  const base = median(times[0]);
  names.forEach((n, i) => {
    const t = median(times[i]);
    const mem = models[i].memory(batch);
    console.log(`  ${n.padEnd(8)} ${t.toFixed(3)} s/step  ${(t / base).toFixed(3)}x ${names[0]}  optimizer state ${fmtBytes(mem.optimizer)}`);
  });
  for (const m of models) await m.dispose();
  process.exit(0); // Dawn's threads abort a natural exit (and with them stdout still in the pipe)
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
