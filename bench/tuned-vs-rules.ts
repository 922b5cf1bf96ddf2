// What the kernel tuner buys: the reference model's training step with the tuner's stored
// choices (kernel-tuning.json in the weights cache; run bench:step or train once first to fill
// it) against the fixed rules of src/kernels/variants.ts, two devices in one process, steps
// alternating.
//   npx tsx bench/tuned-vs-rules.ts [HxW, default 60x90] [repeats, default 5]
import { acquireGpu, setGpu } from '../src/index.ts';
import { attachTuner, KernelTuner } from '../src/kernels/autotune.ts';
import { fileTuningStore } from '../src/io/tuning-store-node.ts';
import { referenceModel } from './lib/reference-model.ts';

const [h, w] = (process.argv[2] ?? '60x90').split('x').map(Number);
const batch = 8;
const reps = Number(process.argv[3] ?? 5);
const tunedGpu = await acquireGpu({ kernels: 'auto' });
attachTuner(tunedGpu, new KernelTuner(tunedGpu, { store: fileTuningStore(), budgetMs: 0 }));
const rulesGpu = await acquireGpu({ kernels: 'auto' });
setGpu(tunedGpu);
const tuned = await referenceModel(h, w);
setGpu(rulesGpu);
const rules = await referenceModel(h, w);
const x = new Float32Array(batch * h * w * 3).map((_, i) => (i % 255) / 255);
const y = new Float32Array(batch).map((_, i) => i % 2);
const t: Record<string, number[]> = { tuned: [], rules: [] };
for (let r = 0; r < reps + 2; r++) {
  for (const [name, m] of [['tuned', tuned], ['rules', rules]] as const) {
    const t0 = performance.now();
    await m.trainOnBatch(x, y);
    if (r >= 2) t[name].push((performance.now() - t0) / 1000);
  }
}
const med = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
console.log(`${h}x${w} b${batch}: tuned ${med(t.tuned).toFixed(3)} s, rules ${med(t.rules).toFixed(3)} s, rules/tuned ${(med(t.rules) / med(t.tuned)).toFixed(2)}x (median of ${reps}, alternating)`);
console.log([...tunedGpu.kernelChoices].filter(([l]) => l.startsWith('block')).map(([l, c]) => `${l}: ${c}`).join('\n'));
process.exit(0);
