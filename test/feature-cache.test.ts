import { describe, expect, it } from 'vitest';
import { ArrayBatches, Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D, Model, SGD, setInitSeed } from '../src/index.ts';
import { rng } from './helpers/random.ts';

function model(seed: number) {
  setInitSeed(seed);
  const input = Input({ shape: [12, 14, 3] });
  let x = new Conv2D({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(input);
  x = new MaxPooling2D().apply(x);
  x = new Conv2D({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(x);
  x = new MaxPooling2D().apply(x);
  x = new Conv2D({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(x);
  x = new Flatten().apply(x);
  x = new Dense({ units: 10, activation: 'relu' }).apply(x);
  x = new Dropout({ rate: 0.3 }).apply(x);
  const m = new Model({ inputs: input, outputs: new Dense({ units: 1, activation: 'sigmoid' }).apply(x) });
  for (const l of m.layers.slice(0, 5)) l.trainable = false; // two conv blocks frozen
  m.compile({ optimizer: new SGD({ learningRate: 0.05, momentum: 0.9 }), loss: 'binary_crossentropy', metrics: ['acc'] });
  return m;
}

function data(n: number, seed: number) {
  const r = rng(seed);
  const x = Float32Array.from({ length: n * 12 * 14 * 3 }, () => r());
  const y = Float32Array.from({ length: n }, (_, i) => i % 2);
  return { x, y };
}

/** Counts epochs served from cached features (sources are asked for index-only batches then). */
function counting(src: ArrayBatches) {
  const counter = { indexEpochs: 0 };
  const original = src.indexBatches.bind(src);
  src.indexBatches = () => {
    counter.indexEpochs++;
    return original();
  };
  return counter;
}

describe('feature cache', () => {
  for (const budget of [undefined, 0]) {
    it(`gives the same losses and weights as recomputing the frozen prefix (${budget === 0 ? 'host' : 'device'} memory)`, async () => {
      const train = data(22, 1);
      const val = data(9, 2);
      const a = model(5);
      const b = model(5);
      const trainA = new ArrayBatches(train.x, train.y, { batchSize: 4, shuffle: true, seed: 3 });
      const valA = new ArrayBatches(val.x, val.y, { batchSize: 4 });
      const count = counting(trainA);
      const countVal = counting(valA);
      const ha = await a.fit(trainA, { epochs: 3, validationData: valA, verbose: 0, featureCacheBudget: budget });
      const hb = await b.fit(new ArrayBatches(train.x, train.y, { batchSize: 4, shuffle: true, seed: 3 }), {
        epochs: 3, validationData: new ArrayBatches(val.x, val.y, { batchSize: 4 }), verbose: 0, featureCache: false,
      });
      expect(count.indexEpochs).toBe(2); // epochs 2 and 3 ran only the trainable layers
      expect(countVal.indexEpochs).toBe(2);
      for (const k of ['loss', 'acc', 'val_loss', 'val_acc'] as const) {
        ha.history[k].forEach((v, i) => expect(Math.abs(v - hb.history[k][i]), `${k}[${i}]`).toBeLessThanOrEqual(1e-5));
      }
      const last = a.layers.length - 1;
      const wa = (await a.layers[last].getWeights())[0].data;
      const wb = (await b.layers[last].getWeights())[0].data;
      wa.forEach((v, i) => expect(Math.abs(v - wb[i])).toBeLessThanOrEqual(1e-5));
    });
  }

  it('is rebuilt when a frozen layer\'s weights change, and not used for augmented sources', async () => {
    const train = data(8, 4);
    const a = model(6);
    const src = new ArrayBatches(train.x, train.y, { batchSize: 4 });
    const count = counting(src);
    await a.fit(src, { epochs: 2, verbose: 0 });
    expect(count.indexEpochs).toBe(1);
    const frozen = a.layers[1];
    await frozen.setWeights((await frozen.getWeights()).map((w) => ({ shape: w.shape, data: w.data.map((v) => v * 0.5) })));
    const before = count.indexEpochs;
    await a.fit(src, { epochs: 1, verbose: 0 });
    expect(count.indexEpochs).toBe(before); // new weights: recomputed, not replayed
    await a.fit(src, { epochs: 1, verbose: 0 });
    expect(count.indexEpochs).toBe(before + 1);
    // a plain array of batches declares nothing: never cached
    const plain = [{ x: train.x, y: train.y }];
    const h = await a.fit(plain, { epochs: 2, verbose: 0 });
    expect(h.history.loss).toHaveLength(2);
  });
});
