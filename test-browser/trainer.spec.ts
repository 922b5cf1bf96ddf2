/**
 * The page's platform-free pieces in Node: the Trainer's stop and resume (stopping mid-epoch
 * twice gives exactly the numbers of an uninterrupted run) and how a picked folder becomes a data
 * set. A tiny model keeps this fast; the page tests run the same Trainer on VGG16.
 */
import { describe, expect, it } from 'vitest';
import { Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D, setInitSeed } from '../src/graph/layers.ts';
import { Model } from '../src/graph/model.ts';
import { SGD } from '../src/graph/optimizers.ts';
import { dataSetFromFiles, makeFlows, sampleDataSet, type NamedBlob } from '../web/lib/data.ts';
import { DEFAULT_SETTINGS, type TrainSettings } from '../web/lib/settings.ts';
import { Trainer } from '../web/lib/trainer.ts';
import { enterFineTuning } from '../web/lib/program.ts';
import type { NamedTensor } from '../src/graph/model.ts';
import { EarlyStopping } from '../src/graph/callbacks.ts';
import { confusionFrom, confusionMatrix, predictedClasses } from '../src/graph/confusion.ts';

const settings: TrainSettings = { ...DEFAULT_SETTINGS, height: 8, width: 8, batchSize: 2, epochs: 2, augment: true, seed: 9 };

function tinyModel(): Model {
  setInitSeed(21);
  const input = Input({ shape: [8, 8, 3] });
  let x = new Conv2D({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(input);
  x = new MaxPooling2D({ poolSize: 2, strides: 2 }).apply(x);
  x = new Flatten().apply(x);
  x = new Dense({ units: 8, activation: 'relu' }).apply(x);
  x = new Dropout({ rate: 0.5 }).apply(x);
  const m = new Model({ inputs: input, outputs: new Dense({ units: 1, activation: 'sigmoid' }).apply(x) });
  m.compile({ optimizer: new SGD({ learningRate: 0.05, momentum: 0.9 }), loss: 'binary_crossentropy', metrics: ['acc'] });
  return m;
}

async function trainer(stopAt: number[] = []): Promise<{ t: Trainer; pauses: { steps: number; stepInEpoch: number }[] }> {
  const { train, test } = await makeFlows(sampleDataSet({ train: 8, test: 4, size: 8, seed: 3 }), settings);
  const pauses: { steps: number; stepInEpoch: number }[] = [];
  const t: Trainer = new Trainer(tinyModel(), train, test, settings.epochs, {
    onStep: (s) => {
      if (stopAt.includes(s.global)) t.stop();
    },
  });
  for (;;) {
    const state = await t.run();
    if (state === 'done') break;
    expect(state).toBe('paused');
    pauses.push({ steps: t.steps.length, stepInEpoch: t.stepInEpoch });
  }
  return { t, pauses };
}

describe('Trainer (the page\'s training loop)', () => {
  it('stopped mid-epoch twice and resumed, gives exactly the steps and epochs of an uninterrupted run', async () => {
    const whole = await trainer();
    expect(whole.t.steps).toHaveLength(8);
    expect(whole.t.epochs.map((e) => [e.epoch, e.partial, e.global])).toEqual([[0, false, 4], [1, false, 8]]);

    // A stop asked for during step 1 (or 5) lands after the steps fit had already queued.
    const cut = await trainer([1, 5]);
    expect(cut.pauses).toHaveLength(2);
    for (const p of cut.pauses) expect(p.stepInEpoch, 'paused mid-epoch').toBeGreaterThan(0);
    expect(cut.t.steps.map((s) => [s.epoch, s.step, s.global])).toEqual(whole.t.steps.map((s) => [s.epoch, s.step, s.global]));
    cut.t.steps.forEach((s, i) => {
      expect(s.loss, `step ${i + 1} loss`).toBe(whole.t.steps[i].loss);
      expect(s.acc, `step ${i + 1} acc`).toBe(whole.t.steps[i].acc);
    });
    // The partial epoch records were replaced when their epochs finished.
    expect(cut.t.epochs.map((e) => [e.epoch, e.partial])).toEqual([[0, false], [1, false]]);
    cut.t.epochs.forEach((e, i) => {
      const w = whole.t.epochs[i];
      expect([e.loss, e.acc, e.valLoss, e.valAcc]).toEqual([w.loss, w.acc, w.valLoss, w.valAcc]);
    });
    // Epoch means are Keras's: batch-size-weighted means of the epoch's steps.
    const first = whole.t.steps.filter((s) => s.epoch === 0);
    expect(whole.t.epochs[0].loss).toBeCloseTo(first.reduce((a, s) => a + s.loss, 0) / first.length, 12);
  });
});

describe('Trainer with EarlyStopping, and the confusion matrix', () => {
  // 6 epochs, patience 1, best weights restored; run straight through and with stops mid-epoch.
  async function run(stopAt: number[]) {
    const { train, test } = await makeFlows(sampleDataSet({ train: 8, test: 4, size: 8, seed: 3 }), settings);
    const model = tinyModel();
    const earlyStopping = new EarlyStopping({ monitor: 'val_loss', patience: 1, restoreBestWeights: true });
    const t: Trainer = new Trainer(model, train, test, 6, {
      onStep: (s) => {
        if (stopAt.includes(s.global)) t.stop();
      },
    }, { earlyStopping });
    let pauses = 0;
    while ((await t.run()) === 'paused') pauses++;
    const weights = await model.getWeights();
    return { t, pauses, weights, model, test };
  }

  it('stops and restores as Keras does, the same when the run was stopped and resumed mid-epoch', async () => {
    const whole = await run([]);
    const cut = await run([1, 5]); // each stop lands mid-epoch (after the 2 steps fit keeps queued)
    expect(cut.pauses).toBe(2);
    expect(whole.t.state).toBe('done');
    // the tiny model's val_loss gets worse at some epoch before the 6th: EarlyStopping ends it there
    expect(whole.t.stoppedEpoch).not.toBeNull();
    expect(whole.t.epochs).toHaveLength(whole.t.stoppedEpoch! + 1);
    const vals = whole.t.epochs.map((e) => e.valLoss);
    const best = vals.indexOf(Math.min(...vals));
    expect(whole.t.restoredEpoch).toBe(best);
    expect(vals[whole.t.stoppedEpoch!]).toBeGreaterThanOrEqual(vals[whole.t.stoppedEpoch! - 1]);
    expect([cut.t.stoppedEpoch, cut.t.restoredEpoch]).toEqual([whole.t.stoppedEpoch, whole.t.restoredEpoch]);
    expect(cut.t.steps.map((s) => s.loss)).toEqual(whole.t.steps.map((s) => s.loss));
    cut.weights.forEach((w, i) => expect(w.data, w.name).toEqual(whole.weights[i].data));
    // the restored weights give the best epoch's val_loss again
    const [valLoss] = await whole.model.evaluate(whole.test);
    expect(valLoss).toBeCloseTo(vals[best], 5);
    // a constant learning rate (SGD 0.05), logged per step and per epoch
    expect(new Set(whole.t.steps.map((s) => s.lr))).toEqual(new Set([0.05]));
    expect(whole.t.epochs.every((e) => e.learningRate === 0.05)).toBe(true);
  });

  it('counts every validation image once, predicted by p > 0.5 (sigmoid) or argmax (softmax)', async () => {
    const { model, test } = await run([]);
    const c = await confusionMatrix(model, test, ['circles', 'squares']);
    // the same from predict over the images in file order
    const xs: Float32Array[] = [];
    const order: number[] = [];
    for await (const b of test) {
      xs.push(b.x);
      order.push(...b.indices);
    }
    const x = new Float32Array(xs.reduce((a, v) => a + v.length, 0));
    xs.reduce((at, v) => (x.set(v, at), at + v.length), 0);
    const p = await model.predict(x);
    const want = confusionFrom(order.map((i) => test.classes[i]), Array.from(p, (v) => (v > 0.5 ? 1 : 0)), ['circles', 'squares']);
    expect(c.counts).toEqual(want.counts);
    expect(c.total).toBe(4);
    expect(c.counts.flat().reduce((a, n) => a + n, 0)).toBe(4);

    expect([...predictedClasses(Float32Array.of(0.2, 0.5, 0.51), 1)]).toEqual([0, 0, 1]);
    expect([...predictedClasses(Float32Array.of(0.1, 0.7, 0.2, 0.6, 0.3, 0.1), 3)]).toEqual([1, 0]);
    const m = confusionFrom([0, 0, 0, 1, 1, 2], [0, 1, 0, 1, 0, 1], ['a', 'b', 'c']);
    expect(m.counts).toEqual([[2, 1, 0], [1, 1, 0], [0, 1, 0]]);
    expect(m.precision[0]).toBeCloseTo(2 / 3, 12);
    expect(m.precision[1]).toBeCloseTo(1 / 3, 12);
    expect(m.precision[2]).toBeNaN(); // never predicted
    expect(m.recall).toEqual([2 / 3, 1 / 2, 0]);
    expect(m.accuracy).toBeCloseTo(3 / 6, 12);
    expect(() => confusionFrom([0, 3], [0, 1], ['a', 'b'])).toThrow(/image 1 has class 3/);
  });
});

describe('Trainer with a fine-tuning phase (the page\'s two-phase option)', () => {
  // 2 epochs with the conv layer frozen, then 2 with it unfrozen at a new SGD's rate (no momentum)
  const twoPhase: TrainSettings = { ...settings, frozen: 2, fineTune: { at: 1, epochs: 2, lr: 0.02 } };

  async function run(stopAt: number[]) {
    const { train, test } = await makeFlows(sampleDataSet({ train: 8, test: 4, size: 8, seed: 3 }), twoPhase);
    setInitSeed(21);
    const input = Input({ shape: [8, 8, 3] });
    let x = new Conv2D({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv' }).apply(input);
    x = new MaxPooling2D({ poolSize: 2, strides: 2 }).apply(x);
    x = new Flatten().apply(x);
    x = new Dense({ units: 8, activation: 'relu' }).apply(x);
    x = new Dropout({ rate: 0.5 }).apply(x);
    const model = new Model({ inputs: input, outputs: new Dense({ units: 1, activation: 'sigmoid' }).apply(x) });
    for (const l of model.layers.slice(0, twoPhase.frozen)) l.trainable = false;
    model.compile({ optimizer: new SGD({ learningRate: 0.05, momentum: 0.9 }), loss: 'binary_crossentropy', metrics: ['acc'] });
    const initial = await model.getWeights();
    let boundary: NamedTensor[] = [];
    const t: Trainer = new Trainer(model, train, test, 4, {
      onStep: (s) => {
        if (stopAt.includes(s.global)) t.stop();
      },
    }, {
      secondPhase: {
        from: twoPhase.epochs,
        enter: async (m) => {
          boundary = await m.getWeights();
          enterFineTuning(m, twoPhase, 3);
        },
      },
    });
    const pauses: number[] = [];
    while ((await t.run()) === 'paused') pauses.push(t.stepInEpoch);
    return { t, pauses, initial, boundary, weights: await model.getWeights() };
  }

  it('enters phase 2 after the first epochs, the same when stopped and resumed mid-phase-2; only phase 2 changes the unfrozen layer', async () => {
    const whole = await run([]);
    const cut = await run([1, 9]); // lands mid-epoch 0 and mid-epoch 2 (the second phase's first), after the steps fit keeps queued
    expect(cut.pauses).toHaveLength(2);
    for (const p of cut.pauses) expect(p, 'paused mid-epoch').toBeGreaterThan(0);
    expect(whole.t.state).toBe('done');
    expect([whole.t.fineTuneFrom, cut.t.fineTuneFrom]).toEqual([2, 2]);
    expect(whole.t.epochs.map((e) => [e.epoch, e.partial])).toEqual([[0, false], [1, false], [2, false], [3, false]]);
    expect(cut.t.steps.map((s) => s.loss)).toEqual(whole.t.steps.map((s) => s.loss));
    expect(cut.weights).toHaveLength(whole.weights.length); // (the dense layers' automatic names differ between the two models)
    cut.weights.forEach((w, i) => expect(w.data, w.name).toEqual(whole.weights[i].data));
    // the rate each update used: the first optimizer's 0.05, then the fine-tuning one's 0.02
    expect(whole.t.steps.map((s) => s.lr)).toEqual([...Array(8).fill(0.05), ...Array(8).fill(0.02)]);
    const changed = (a: NamedTensor[], b: NamedTensor[], name: RegExp) => a.filter((w) => name.test(w.name)).map((w) => w.data.some((v, j) => v !== b[a.indexOf(w)].data[j]));
    for (const r of [whole, cut]) {
      expect(changed(r.boundary, r.initial, /^conv\//), 'conv in phase 1').toEqual([false, false]);
      expect(changed(r.weights, r.boundary, /^conv\//), 'conv in phase 2').toEqual([true, true]);
      expect(changed(r.boundary, r.initial, /^dense/), 'top in phase 1').toEqual([true, true, true, true]);
    }
  });
});

describe('dataSetFromFiles (a picked or dropped folder)', () => {
  const f = (name: string): NamedBlob => Object.assign(new Blob(['x']), { name });
  const files = (paths: string[]) => paths.map((path) => ({ path, file: f(path.split('/').pop()!) }));

  it('finds train/ and test/ (or validation/) class folders anywhere below the pick, and says what it leaves out', () => {
    const d = dataSetFromFiles(files([
      'photos/train/dogs/a.jpg', 'photos/train/dogs/more/b.PNG', 'photos/train/cats/c.jpeg', 'photos/train/notes.txt',
      'photos/validation/cats/d.bmp', 'photos/validation/dogs/e.ppm', 'photos/train/cats/readme.md', 'photos/.DS_Store',
      'photos/train/cats/.hidden.jpg', 'photos/README.md',
    ]), 'photos');
    expect(d.classes).toEqual(['cats', 'dogs']);
    expect(Object.fromEntries(Object.entries(d.train).map(([c, l]) => [c, l.map((x) => x.name)]))).toEqual({ dogs: ['a.jpg', 'b.PNG'], cats: ['c.jpeg'] });
    expect(Object.keys(d.test).sort()).toEqual(['cats', 'dogs']);
    expect(d.ignored).toEqual([
      'photos/train/notes.txt: directly in train/, outside a class folder',
      'photos/train/cats/readme.md: not an image file (png, jpg, jpeg, bmp, ppm)',
      'photos/README.md: not inside a train/ or test/ folder',
    ]);
  });

  it('explains what is missing or mismatched', () => {
    expect(() => dataSetFromFiles(files(['x/cats/a.jpg']), 'x')).toThrow(/no images in a train\/ folder.*train\/<class>/);
    expect(() => dataSetFromFiles(files(['x/train/cats/a.jpg']), 'x')).toThrow(/no images in a test\/ \(or validation\/\) folder/);
    expect(() => dataSetFromFiles(files(['x/train/cats/a.jpg', 'x/test/dogs/b.jpg']), 'x')).toThrow(/train\/ has the classes cats but test\/ has dogs/);
  });

  it('the sample set: balanced class folders of PPM files the flows read', async () => {
    const d = sampleDataSet({ train: 6, test: 4, size: 8, seed: 1 });
    expect(d.classes).toEqual(['circles', 'squares']);
    expect([d.train.circles.length, d.train.squares.length, d.test.circles.length, d.test.squares.length]).toEqual([3, 3, 2, 2]);
    const { train } = await makeFlows(d, { ...settings, batchSize: 6, augment: false });
    const batch = await train.nextBatch();
    expect(batch.x).toHaveLength(6 * 8 * 8 * 3);
    expect([...batch.y].sort()).toEqual([0, 0, 0, 1, 1, 1]);
    expect(Math.max(...batch.x)).toBeLessThanOrEqual(1);
    await train.close();
  });
});
