// The kernel tuner (src/kernels/autotune.ts) on a real device: it measures every candidate of a
// convolution shape, picks the fastest, stores it per adapter and shape and answers from the
// store next time; a spent budget leaves shapes to the rules; a damaged store is measured again
// and rewritten; a forced family is never tuned; and a model built with tuning trains to the
// numbers of the fixed rules. The Node file store (src/io/tuning-store-node.ts) on real files.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireGpu, Adam, Conv2D, Dense, Flatten, getGpu, Input, MaxPooling2D, Model, setGpu, setInitSeed, type Gpu } from '../src/index.ts';
import { attachTuner, KernelTuner, memoryTuningStore, tunerFor, TUNING_VERSION, type TuningStore } from '../src/kernels/autotune.ts';
import { Conv2dKernel, type Conv2dShape } from '../src/kernels/conv2d.ts';
import { fileTuningStore } from '../src/io/tuning-store-node.ts';
import { randomArray } from './helpers/random.ts';

const shape: Conv2dShape = { batch: 2, height: 12, width: 10, inChannels: 16, outChannels: 16, kernelSize: [3, 3], padding: 'same', activation: 'relu', label: 'tuned_conv' };

/** A fresh device (the tuner is attached per device) with a tuner on `store`. */
async function tunedGpu(store: TuningStore, budgetMs = 60_000, warnings: string[] = []): Promise<{ gpu: Gpu; tuner: KernelTuner }> {
  const gpu = await acquireGpu({ kernels: 'auto' });
  const tuner = new KernelTuner(gpu, { store, budgetMs, warn: (l) => warnings.push(l) });
  attachTuner(gpu, tuner);
  return { gpu, tuner };
}

let original: Gpu | undefined;
afterAll(() => {
  if (original) setGpu(original);
});

describe('the kernel tuner', () => {
  it('measures every candidate, keeps the fastest, and answers from the store the next time', async () => {
    const store = memoryTuningStore();
    const { gpu, tuner } = await tunedGpu(store);
    const k = await Conv2dKernel.create(gpu, shape);
    expect(tuner.stats).toMatchObject({ measured: 1, stored: 0, overBudget: 0 });
    const file = JSON.parse((await store.read())!);
    expect(file.version).toBe(TUNING_VERSION);
    const shapes = Object.values(file.adapters)[0] as Record<string, { choice: string; ms: Record<string, number | null> }>;
    const [key, entry] = Object.entries(shapes)[0];
    expect(key).toMatch(/conv2d .*Cin=16\] -> Cout=16, kernel 3x3, padding same relu passes=forward,input,filter/);
    // lavapipe has subgroups of 8: three subgroup tile heights, tiled, large tiles, Winograd
    expect(Object.keys(entry.ms)).toEqual(['subgroup 24px', 'subgroup 16px', 'subgroup 32px', 'tiled', 'large', 'winograd+subgroup']);
    const times = Object.values(entry.ms).filter((t): t is number => t !== null);
    expect(times.length).toBe(6);
    expect(entry.ms[entry.choice]).toBe(Math.min(...times));
    expect(gpu.kernelChoices.get('tuned_conv')).toMatch(/\[tuned: measured fastest of 6\]$/);
    expect([...gpu.kernelChoices.keys()]).toEqual(['tuned_conv']); // the candidates leave no lines
    const chosen = entry.choice.startsWith('subgroup') ? 'subgroup' : entry.choice.replace(/^winograd\+/, '');
    expect(k.tuning.variant).toBe(chosen);
    expect(k.tuning.winograd).toBe(entry.choice.startsWith('winograd'));
    k.destroy();

    // a second device (a later run) on the same store: no measuring, the same choice
    const again = await tunedGpu(store);
    const k2 = await Conv2dKernel.create(again.gpu, shape);
    expect(again.tuner.stats).toMatchObject({ measured: 0, stored: 1 });
    expect(k2.tuning).toEqual(k.tuning);
    expect(again.gpu.kernelChoices.get('tuned_conv')).toMatch(/\[tuned: stored fastest of 6\]$/);
    expect(again.tuner.summary()).toMatch(/^kernel tuning: 1 shape\(s\) from memory \(this session only\), 0 measured in 0\.0 s$/);
    // a frozen layer (forward only) is a shape of its own
    await Conv2dKernel.create(again.gpu, shape, {}, { backwardInput: false, backwardFilter: false });
    expect(again.tuner.stats.measured).toBe(1);
    k2.destroy();
  }, 120_000);

  it('leaves shapes to the rules once the budget is spent, and never tunes a forced family', async () => {
    const { gpu, tuner } = await tunedGpu(memoryTuningStore(), 0);
    const k = await Conv2dKernel.create(gpu, shape);
    expect(k.tuning.variant).toBe('subgroup'); // the rule on a CPU adapter
    expect(tuner.stats).toMatchObject({ measured: 0, overBudget: 1 });
    expect(tuner.summary()).toMatch(/1 left to the rules \(over the 0\.0 s budget; measured on a later run\)/);
    expect(gpu.kernelChoices.get('tuned_conv')).toBe('conv2d subgroup');

    const forced = await acquireGpu({ kernels: 'tiled' });
    const t = new KernelTuner(forced, { store: memoryTuningStore() });
    attachTuner(forced, t);
    expect(tunerFor(forced)).toBeNull();
    expect((await Conv2dKernel.create(forced, shape)).tuning.variant).toBe('tiled');
    expect(t.stats.measured + t.stats.stored + t.stats.overBudget).toBe(0);
    // an explicit tuning is never second-guessed either
    expect((await Conv2dKernel.create(gpu, shape, { variant: 'tiled' })).tuning.variant).toBe('tiled');
  }, 60_000);

  it('measures again when the store is damaged, from an older version, or names a kernel that is no longer a candidate', async () => {
    // a hand-edited entry of the wrong form is dropped and measured again, never a crash
    const odd = new KernelTuner(await acquireGpu({ kernels: 'auto' }), { store: memoryTuningStore() });
    const oddStore = memoryTuningStore();
    await oddStore.write(JSON.stringify({ format: 'webgpu-finetune-kernel-tuning', version: TUNING_VERSION, adapters: { [odd.adapterKey]: { a: { choice: 'tiled' }, b: { choice: 3, ms: {} }, c: null } } }));
    const handEdited = await tunedGpu(oddStore);
    await Conv2dKernel.create(handEdited.gpu, { ...shape, batch: 1 }, {}, { backwardInput: false, backwardFilter: false });
    expect(handEdited.tuner.stats.measured).toBe(1);
    expect(Object.keys(await handEdited.tuner.stored()).every((k) => k.startsWith('conv2d'))).toBe(true);
    for (const text of ['{"format": "webgpu-finetune-kernel-tuning", "adap', '[1, 2]']) {
      const store = memoryTuningStore();
      await store.write(text);
      const warnings: string[] = [];
      const { gpu, tuner } = await tunedGpu(store, 60_000, warnings);
      await Conv2dKernel.create(gpu, { ...shape, batch: 1 }, {}, { backwardInput: false, backwardFilter: false });
      expect(tuner.stats.measured).toBe(1);
      expect(warnings.join('\n')).toMatch(/kernel tuning: ignoring memory \(this session only\): .*; it is measured again and rewritten/);
      expect(JSON.parse((await store.read())!).format).toBe('webgpu-finetune-kernel-tuning');
    }
    const store = memoryTuningStore();
    const first = await tunedGpu(store);
    await Conv2dKernel.create(first.gpu, shape, {}, { backwardInput: false, backwardFilter: false });
    const file = JSON.parse((await store.read())!);
    const entries = Object.values(file.adapters)[0] as Record<string, { choice: string }>;
    for (const e of Object.values(entries)) e.choice = 'a kernel since removed';
    await store.write(JSON.stringify(file));
    const second = await tunedGpu(store);
    await Conv2dKernel.create(second.gpu, shape, {}, { backwardInput: false, backwardFilter: false });
    expect(second.tuner.stats).toMatchObject({ measured: 1, stored: 0 });
    await store.write(JSON.stringify({ ...file, version: TUNING_VERSION - 1 }));
    const third = await tunedGpu(store);
    await Conv2dKernel.create(third.gpu, shape, {}, { backwardInput: false, backwardFilter: false });
    expect(third.tuner.stats).toMatchObject({ measured: 1, stored: 0 });
  }, 120_000);

  it('stops measuring a candidate that lost badly on two shapes of this adapter', async () => {
    const store = memoryTuningStore();
    const probe = await tunedGpu(store);
    const lost = (choice: string) => ({ choice, ms: { 'subgroup 24px': 10, tiled: 80 } });
    await store.write(JSON.stringify({ format: 'webgpu-finetune-kernel-tuning', version: TUNING_VERSION, adapters: { [probe.tuner.adapterKey]: { a: lost('subgroup 24px'), b: lost('subgroup 24px') } } }));
    const { gpu, tuner } = await tunedGpu(store);
    await Conv2dKernel.create(gpu, shape, {}, { backwardInput: false, backwardFilter: false });
    expect(tuner.stats.measured).toBe(1);
    const entries = Object.values(JSON.parse((await store.read())!).adapters)[0] as Record<string, { ms: Record<string, number>; skipped?: string[] }>;
    const fresh = Object.entries(entries).find(([k]) => k.startsWith('conv2d'))![1];
    expect(fresh.skipped).toEqual(['tiled']);
    expect(Object.keys(fresh.ms)).not.toContain('tiled');
    expect(Object.keys(fresh.ms)).toContain('large'); // never measured before: measured
  }, 60_000);

  it('a model built with the tuner trains to the numbers of the fixed rules', async () => {
    original = await getGpu();
    const build = () => {
      setInitSeed(5);
      const input = Input({ shape: [12, 12, 4] });
      const c1 = new Conv2D({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1' });
      c1.trainable = false;
      let x = c1.apply(input);
      x = new Conv2D({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c2' }).apply(x);
      x = new MaxPooling2D({ poolSize: 2, name: 'p' }).apply(x);
      x = new Flatten({ name: 'f' }).apply(x);
      const m = new Model({ inputs: input, outputs: new Dense({ units: 1, activation: 'sigmoid', name: 'd' }).apply(x) });
      m.compile({ optimizer: new Adam({ learningRate: 0.01 }), loss: 'binary_crossentropy' });
      return m;
    };
    const x = randomArray(4 * 12 * 12 * 4, 3);
    const y = Float32Array.from([0, 1, 1, 0]);
    const run = async (gpu: Gpu) => {
      setGpu(gpu);
      const m = build();
      const losses = [];
      for (let s = 0; s < 3; s++) losses.push((await m.trainOnBatch(x, y))[0]);
      await m.dispose();
      return losses;
    };
    const rules = await run(await acquireGpu({ kernels: 'auto' }));
    const { gpu, tuner } = await tunedGpu(memoryTuningStore());
    const tuned = await run(gpu);
    expect(tuner.stats.measured).toBeGreaterThanOrEqual(2); // c1 and c2 (different passes)
    expect(gpu.kernelChoices.get('c2')).toMatch(/\[tuned: measured fastest of \d\]/);
    for (let s = 0; s < 3; s++) expect(Math.abs(tuned[s] - rules[s])).toBeLessThan(1e-5);
  }, 120_000);
});

describe('the Node tuning store', () => {
  it('writes kernel-tuning.json whole and reads it back; a missing file reads as nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wgf-tuning-'));
    try {
      const store = fileTuningStore(join(dir, 'sub', 'kernel-tuning.json'));
      expect(await store.read()).toBeNull();
      const { gpu, tuner } = await tunedGpu(store);
      await Conv2dKernel.create(gpu, { ...shape, batch: 1 }, {}, { backwardInput: false, backwardFilter: false });
      expect(tuner.stats.measured).toBe(1);
      const text = await readFile(join(dir, 'sub', 'kernel-tuning.json'), 'utf8');
      expect(JSON.parse(text).format).toBe('webgpu-finetune-kernel-tuning');
      // damaged on disk: a warning naming the file, measured again, the file rewritten
      await writeFile(join(dir, 'sub', 'kernel-tuning.json'), 'not json');
      const warnings: string[] = [];
      const again = await tunedGpu(fileTuningStore(join(dir, 'sub', 'kernel-tuning.json')), 60_000, warnings);
      await Conv2dKernel.create(again.gpu, { ...shape, batch: 1 }, {}, { backwardInput: false, backwardFilter: false });
      expect(warnings[0]).toContain(join(dir, 'sub', 'kernel-tuning.json'));
      expect(JSON.parse(await readFile(join(dir, 'sub', 'kernel-tuning.json'), 'utf8')).format).toBe('webgpu-finetune-kernel-tuning');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
