/**
 * Training steps of the modern bases: MobileNetV2 and ResNet50 (random weights) frozen below
 * their last block, GlobalAveragePooling2D, Dense 1 sigmoid, SGD; this engine and TF.js's WebGPU
 * backend on the same adapter, steps alternating.
 *
 *   npx tsx bench/backbone-step.ts [--rows mobilenet_v2:128x128:16,resnet50:128x128:8] [--repeats 5] [--no-tfjs]
 *
 * Note: TF.js's BatchNormalization uses batch statistics in training steps even when frozen
 * (ours, as Keras 3, uses the moving ones there), so its frozen part does slightly more work.
 */
import { parseArgs } from 'node:util';
import { Dense, fmtBytes, GlobalAveragePooling2D, memory, MobileNetV2, Model, ResNet50, setGpu } from '../src/index.ts';
import { openBenchGpu } from './lib/engine.ts';
import { randomData } from './lib/rows.ts';
import { loadTfjs, tfjsAdapter } from './lib/tfjs.ts';
import { tfjsTwin } from './lib/tfjs-twin.ts';
import { median } from './lib/timing.ts';

/** The first layer of each base's last block: everything before it is frozen. */
const LAST_BLOCK = { mobilenet_v2: 'block_16_expand', resnet50: 'conv5_block3_1_conv' } as const;

async function build(base: keyof typeof LAST_BLOCK, h: number, w: number): Promise<Model> {
  const b = base === 'mobilenet_v2'
    ? await MobileNetV2({ weights: null, includeTop: false, inputShape: [h, w, 3] })
    : await ResNet50({ weights: null, includeTop: false, inputShape: [h, w, 3] });
  const at = b.layers.findIndex((l) => l.name === LAST_BLOCK[base]);
  for (const l of b.layers.slice(0, at)) l.trainable = false;
  const out = new Dense({ units: 1, activation: 'sigmoid' }).apply(new GlobalAveragePooling2D().apply(b.output));
  const m = new Model({ inputs: b.input, outputs: out, name: base });
  m.compile({ optimizer: 'sgd', loss: 'binary_crossentropy', metrics: ['acc'] });
  return m;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    rows: { type: 'string', default: 'mobilenet_v2:128x128:16,resnet50:128x128:8' }, repeats: { type: 'string', default: '5' },
    'no-tfjs': { type: 'boolean', default: false }, help: { type: 'boolean', default: false },
  } });
  if (values.help) {
    console.log('npx tsx bench/backbone-step.ts [--rows mobilenet_v2:128x128:16,resnet50:128x128:8] [--repeats 5] [--no-tfjs]');
    return;
  }
  const repeats = Number(values.repeats);
  const { dawn, gpu } = await openBenchGpu();
  setGpu(gpu);
  console.log(`adapter: ${gpu.describe()}`);
  const tf = values['no-tfjs'] ? null : await loadTfjs(dawn);
  if (tf) console.log(`rival: TensorFlow.js ${tf.version.tfjs} webgpu backend on ${tfjsAdapter(tf)} (same Dawn instance)`);
  console.log(`timing: wall clock per trainOnBatch including its loss readback; median of ${repeats} after 2 warm-ups, engines alternating\n`);
  for (const row of values.rows!.split(',')) {
    const [base, size, b] = row.split(':');
    const [h, w] = size.split('x').map(Number);
    const batch = Number(b);
    const model = await build(base as keyof typeof LAST_BLOCK, h, w);
    const x = randomData(batch * h * w * 3, 1, -1, 1);
    const y = new Float32Array(batch).map((_, i) => i % 2);
    const twin = tf ? await tfjsTwin(tf, model) : null;
    if (twin && tf) twin.compile({ optimizer: tf.train.sgd(0.01), loss: 'binaryCrossentropy', metrics: ['acc'] });
    const tx = tf ? tf.tensor(x, [batch, h, w, 3]) : null;
    const ty = tf ? tf.tensor(y, [batch, 1]) : null;
    const ours: number[] = [];
    const theirs: number[] = [];
    for (let r = 0; r < repeats + 2; r++) {
      let t0 = performance.now();
      await model.trainOnBatch(x, y);
      if (r >= 2) ours.push((performance.now() - t0) / 1000);
      if (twin && tx && ty) {
        t0 = performance.now();
        await twin.trainOnBatch(tx, ty);
        if (r >= 2) theirs.push((performance.now() - t0) / 1000);
      }
    }
    const o = median(ours);
    const ourBytes = memory().numBytes;
    const trainable = model.layers.reduce((a, l) => a + l.trainableParams.reduce((s, p) => s + p.size, 0), 0);
    console.log(`${base} ${h}x${w} batch ${batch} (${trainable.toLocaleString('en-US')} trainable weights)`);
    console.log(`  ours:  ${o.toFixed(3)} s/step  ${(batch / o).toFixed(2)} img/s  device memory ${fmtBytes(ourBytes)}`);
    if (theirs.length && tf) {
      const t = median(theirs);
      const mem = tf.memory() as { numBytesInGPUAllocated?: number; numBytesAllocatedInGPU?: number; numBytesInGPU?: number };
      const tb = mem.numBytesAllocatedInGPU ?? mem.numBytesInGPUAllocated ?? mem.numBytesInGPU ?? null;
      console.log(`  tf.js: ${t.toFixed(3)} s/step  ${(batch / t).toFixed(2)} img/s  device memory ${tb === null ? '?' : fmtBytes(tb)} (allocated incl. its pool)`);
      console.log(`  speed-up ${(t / o).toFixed(2)}x`);
    }
    await model.dispose();
    twin?.dispose();
    tx?.dispose();
    ty?.dispose();
  }
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
