/**
 * Epoch benchmark: the reference program at 60x90 on a generated folder of images (the demo's
 * circles-vs-squares set), data loading and augmentation included, and where the time goes:
 * GPU-bound waiting, waiting for data, host work to record and submit steps, validation.
 * Then epochs 2..N of an unaugmented run with and without the frozen-feature cache.
 *
 *   npm run bench:epoch -- [--images 864] [--size 60x90] [--batch 8] [--epochs 2] [--skip-cache]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Dense, Dropout, Flatten, ImageDataGenerator, Input, Model, VGG16, getGpu } from '../src/index.ts';
import { writeSampleFolders } from '../src/io/sample-data-node.ts';

async function referenceModel(h: number, w: number): Promise<Model> {
  const base = await VGG16({ weights: null, includeTop: false, inputTensor: Input({ shape: [h, w, 3] }) });
  for (const l of base.layers.slice(0, 15)) l.trainable = false;
  let x = new Flatten().apply(base.output);
  x = new Dense({ units: 256, activation: 'relu' }).apply(x);
  x = new Dropout({ rate: 0.5 }).apply(x);
  const model = new Model({ inputs: base.input, outputs: new Dense({ units: 1, activation: 'sigmoid' }).apply(x) });
  model.compile({ optimizer: 'sgd', loss: 'binary_crossentropy', metrics: ['acc'] });
  return model;
}

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const pct = (part: number, whole: number) => `${((100 * part) / whole).toFixed(1)}%`;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    images: { type: 'string', default: '864' }, size: { type: 'string', default: '60x90' }, batch: { type: 'string', default: '8' },
    epochs: { type: 'string', default: '2' }, 'skip-cache': { type: 'boolean', default: false }, help: { type: 'boolean', default: false },
  } });
  if (values.help) {
    console.log('npm run bench:epoch -- [--images 864] [--size 60x90] [--batch 8] [--epochs 2] [--skip-cache]');
    return;
  }
  const [h, w] = values.size!.split('x').map(Number);
  const images = Number(values.images);
  const batch = Number(values.batch);
  const epochs = Number(values.epochs);
  const gpu = await getGpu();
  console.log(`adapter: ${gpu.describe()}`);
  const dir = await mkdtemp(join(tmpdir(), 'wf-epoch-'));
  try {
    await writeSampleFolders(dir, { height: h, width: w, train: images, test: Math.max(2, Math.round(images / 4)), seed: 1 });
    const augment = new ImageDataGenerator({ rescale: 1 / 255, widthShiftRange: 0.3, rotationRange: 30, zoomRange: 0.3, horizontalFlip: true, verticalFlip: true, seed: 1 });
    const plain = new ImageDataGenerator({ rescale: 1 / 255 });
    const opts = { targetSize: [h, w] as [number, number], batchSize: batch, classMode: 'binary' as const, seed: 1 };

    // 1. one epoch of the reference program (augmented), with validation
    const model = await referenceModel(h, w);
    const train = await augment.flowFromDirectory(join(dir, 'train'), opts);
    const val = await plain.flowFromDirectory(join(dir, 'test'), { ...opts, shuffle: false });
    await model.fit(train, { epochs: 1, validationData: val, verbose: 2 });
    const t = model.lastFitTiming;
    const trainMs = t.totalMs - t.validationMs;
    console.log(`\nreference epoch at ${h}x${w}, batch ${batch}, ${train.samples} images (${t.steps} steps), augmented: ${s(t.totalMs)}`);
    console.log(`  waiting for the GPU (queued steps): ${s(t.gpuWaitMs)} (${pct(t.gpuWaitMs, trainMs)} of training)`);
    console.log(`  waiting for data:                   ${s(t.dataWaitMs)} (${pct(t.dataWaitMs, trainMs)} of training; includes the first batch's decode)`);
    console.log(`  host work to record and submit:     ${s(t.submitMs)} (${pct(t.submitMs, trainMs)}; includes building the plans)`);
    console.log(`  validation:                         ${s(t.validationMs)}`);
    await model.dispose();
    train.close?.();
    val.close?.();

    if (values['skip-cache']) return;
    // 2. unaugmented: epochs 2..N with and without cached frozen features
    for (const cache of [true, false]) {
      const m = await referenceModel(h, w);
      const tr = await plain.flowFromDirectory(join(dir, 'train'), opts);
      const va = await plain.flowFromDirectory(join(dir, 'test'), { ...opts, shuffle: false });
      const times: number[] = [];
      await m.fit(tr, { epochs, validationData: va, verbose: 0, featureCache: cache, callbacks: [{ onEpochBegin: () => void times.push(performance.now()), onEpochEnd: () => void times.push(performance.now()) }] });
      const per = [];
      for (let e = 0; e < epochs; e++) per.push(times[2 * e + 1] - times[2 * e]);
      const later = per.slice(1);
      const mean = later.length ? later.reduce((a, b) => a + b, 0) / later.length : NaN;
      console.log(`unaugmented, feature cache ${cache ? 'on ' : 'off'}: epoch 1 ${s(per[0])}; epochs 2..${epochs} mean ${later.length ? s(mean) : 'n/a'} (${m.lastFitTiming.cachedSteps} steps from the cache)`);
      await m.dispose();
      tr.close?.();
      va.close?.();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
