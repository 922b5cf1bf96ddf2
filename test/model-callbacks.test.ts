import { describe, expect, it } from 'vitest';
import { Conv2D, Dense, EarlyStopping, Flatten, Input, Model, ReduceLROnPlateau, SGD, setInitSeed, type CallbackHooks, type CallbackModel, type NamedTensor } from '../src/index.ts';
import { rng } from './helpers/random.ts';

function tiny(): Model {
  const input = Input({ shape: [6, 6, 3] });
  let x = new Conv2D({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(input);
  x = new Flatten().apply(x);
  const out = new Dense({ units: 1, activation: 'sigmoid' }).apply(x);
  const m = new Model({ inputs: input, outputs: out });
  m.compile({ optimizer: new SGD({ learningRate: 0.05, momentum: 0.9 }), loss: 'binary_crossentropy', metrics: ['acc'] });
  return m;
}

function data(n: number, size: number) {
  const r = rng(7);
  return Array.from({ length: n }, () => ({ x: Float32Array.from({ length: size * 108 }, () => r()), y: Float32Array.from({ length: size }, () => (r() < 0.5 ? 1 : 0)) }));
}

describe('fit and callbacks', () => {
  it("calls callbacks in Keras's order, and what they add to the logs reaches History and the progress line", async () => {
    setInitSeed(3);
    const m = tiny();
    const calls: string[] = [];
    let seen: CallbackModel | null = null;
    const cb: CallbackHooks = {
      setModel: (model) => void (seen = model),
      onTrainBegin: () => void calls.push('trainBegin'),
      onEpochBegin: (e) => void calls.push(`epochBegin ${e}`),
      onBatchEnd: (s) => void calls.push(`batch ${s}`),
      onEpochEnd: (e, logs) => {
        calls.push(`epochEnd ${e} ${Object.keys(logs).join(',')}`);
        logs.learning_rate = 0.05;
      },
      onTrainEnd: () => void calls.push('trainEnd'),
    };
    const printed: string[] = [];
    const h = await m.fit(data(2, 2), { epochs: 2, verbose: 2, validationData: data(1, 2), callbacks: [cb], sink: (t) => void printed.push(t) });
    expect(seen).toBe(m);
    expect(calls).toEqual(['trainBegin', 'epochBegin 0', 'batch 0', 'batch 1', 'epochEnd 0 loss,acc,val_loss,val_acc', 'epochBegin 1', 'batch 0', 'batch 1', 'epochEnd 1 loss,acc,val_loss,val_acc', 'trainEnd']);
    expect(Object.keys(h.history)).toEqual(['loss', 'acc', 'val_loss', 'val_acc', 'learning_rate']);
    expect(h.history.learning_rate).toEqual([0.05, 0.05]);
    expect(printed.filter((l) => l.includes('val_acc')).every((l) => / - val_loss: [\d.]+ - val_acc: [\d.]+ - learning_rate: 0\.0500\n$/.test(l))).toBe(true);
    // no validation data: no val_ keys at all (as Keras)
    const h2 = await m.fit(data(1, 2), { epochs: 1, verbose: 0 });
    expect(Object.keys(h2.history)).toEqual(['loss', 'acc']);
  });

  it('getWeights/setWeights round trip every weight; a shape mismatch names the weight', async () => {
    setInitSeed(4);
    const m = tiny();
    const before = await m.getWeights();
    expect(before.map((w) => w.name)).toEqual(m.layers.flatMap((l) => l.params.map((p) => p.name)));
    await m.fit(data(2, 2), { epochs: 1, verbose: 0 });
    const trained = await m.getWeights();
    expect(trained[0].data).not.toEqual(before[0].data);
    const versions = m.layers.flatMap((l) => l.params.map((p) => p.version));
    await m.setWeights(before);
    const restored = await m.getWeights();
    restored.forEach((w, i) => expect(w.data).toEqual(before[i].data));
    // a second restore of the same values rewrites nothing (caches and folds stay valid)
    const after = m.layers.flatMap((l) => l.params.map((p) => p.version));
    await m.setWeights(before);
    expect(m.layers.flatMap((l) => l.params.map((p) => p.version))).toEqual(after);
    expect(after.some((v, i) => v !== versions[i])).toBe(true);
    const bad = before.map((w, i) => (i === 1 ? { ...w, shape: [w.data.length + 1], data: new Float32Array(w.data.length + 1) } : w));
    await expect(m.setWeights(bad)).rejects.toThrow(/setWeights: weight 1 \('.*'\) has shape \[4\]/);
    await expect(m.setWeights(before.slice(1))).rejects.toThrow(/the model has 4 weight tensors, got 3/);
  });

  it('EarlyStopping in a real fit: stops, and restores the best epoch\'s weights; ReduceLROnPlateau lowers the rate the next step uses', async () => {
    setInitSeed(5);
    const m = tiny();
    const train = data(3, 2);
    const snapshots: NamedTensor[][] = [];
    const lines: string[] = [];
    // 'max' on a falling val_loss: epoch 1 is the best, patience 1 stops after epoch 2
    const stop = new EarlyStopping({ monitor: 'val_loss', mode: 'max', patience: 1, restoreBestWeights: true, verbose: 1, print: (l) => void lines.push(l) });
    const h = await m.fit(train, {
      epochs: 6, verbose: 0, validationData: train,
      callbacks: [{ onEpochEnd: async () => void snapshots.push(await m.getWeights()) }, stop],
    });
    expect(h.epoch).toEqual([0, 1]);
    expect(h.history.val_loss[1]).toBeLessThan(h.history.val_loss[0]);
    expect(lines).toEqual(['Epoch 2: early stopping', 'Restoring model weights from the end of the best epoch: 1.']);
    const now = await m.getWeights();
    now.forEach((t, i) => expect(t.data).toEqual(snapshots[0][i].data));

    const plateau = new ReduceLROnPlateau({ monitor: 'loss', mode: 'max', patience: 1, factor: 0.5 });
    const h2 = await m.fit(train, { epochs: 3, verbose: 0, callbacks: [plateau] });
    // Keras logs the rate the epoch trained with, then reduces it for the next
    expect(h2.history.learning_rate).toEqual([0.05, 0.05, 0.025].map(Math.fround));
    expect(m.optimizer.learningRate).toBeCloseTo(0.0125, 7);
    expect(m.optimizer.currentLearningRate(0)).toBeCloseTo(0.0125, 7);
  });
});
