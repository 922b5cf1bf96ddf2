// Stateful metrics and class weights through whole models: the values fit/evaluate report against
// float64 computations from the same model's predictions.
import { describe, expect, it } from 'vitest';
import { Dense, Flatten, Input, Model, SGD, setInitSeed } from '../src/index.ts';
import { rng } from './helpers/random.ts';
import { aucFromCountsRef, confusionRef, precisionRef, recallRef, topKRef } from './reference/metrics.ts';
import { bceRef } from './reference/sigmoid-bce.ts';

function binaryModel(metrics: string[]): Model {
  const input = Input({ shape: [2, 2, 3] });
  const x = new Dense({ units: 4, activation: 'relu' }).apply(new Flatten().apply(input));
  const out = new Dense({ units: 1, activation: 'sigmoid' }).apply(x);
  const m = new Model({ inputs: input, outputs: out });
  m.compile({ optimizer: new SGD({ learningRate: 0.1 }), loss: 'binary_crossentropy', metrics });
  return m;
}

function batches(n: number, size: number, seed: number, per = 12) {
  const r = rng(seed);
  return Array.from({ length: n }, () => ({ x: Float32Array.from({ length: size * per }, () => r() * 2 - 1), y: Float32Array.from({ length: size }, () => (r() < 0.4 ? 1 : 0)) }));
}

const logit = (p: number) => Math.log(p / (1 - p));

describe('stateful metrics', () => {
  it('evaluate: AUC, precision and recall equal Keras formulas on the model predictions (several batches, a short last one)', async () => {
    setInitSeed(21);
    const m = binaryModel(['acc', 'auc', 'precision', 'recall']);
    const data = [...batches(3, 8, 1), ...batches(1, 5, 2)];
    await m.fit(data, { epochs: 1, verbose: 0 });
    const logs = await m.evaluateLogs(data);
    expect(Object.keys(logs)).toEqual(['loss', 'acc', 'auc', 'precision', 'recall']);
    const p: number[] = [];
    const y: number[] = [];
    for (const b of data) {
      p.push(...(await m.predict(b.x)));
      y.push(...b.y);
    }
    const auc = aucFromCountsRef(confusionRef(p, y, null, { kind: 'buckets', count: 200, epsilon: true }));
    const half = confusionRef(p, y, null, { kind: 'compare', thresholds: [0.5] });
    expect(logs.auc).toBeCloseTo(auc, 5);
    expect(logs.precision).toBeCloseTo(precisionRef(half), 6);
    expect(logs.recall).toBeCloseTo(recallRef(half), 6);
    expect(await m.evaluate(data)).toEqual(Object.values(logs));
  });

  it('fit: metrics accumulate over the epoch and start over each epoch; val_ twins; the progress line shows them', async () => {
    setInitSeed(22);
    const m = binaryModel(['acc', 'auc']);
    const data = batches(3, 6, 3);
    const perStep: number[] = [];
    const printed: string[] = [];
    const h = await m.fit(data, { epochs: 2, verbose: 2, validationData: data, sink: (t) => void printed.push(t), callbacks: [{ onBatchEnd: (_s, l) => void perStep.push(l.auc) }] });
    expect(Object.keys(h.history)).toEqual(['loss', 'acc', 'auc', 'val_loss', 'val_acc', 'val_auc']);
    expect(perStep).toHaveLength(6);
    expect(h.history.auc).toEqual([perStep[2], perStep[5]]); // the epoch's value is the last step's running one
    expect(printed.some((l) => / - auc: [\d.]+ - val_loss: [\d.]+ - val_acc: [\d.]+ - val_auc: [\d.]+\n$/.test(l))).toBe(true);
    // trainOnBatch reports the batch alone (Keras resets metrics there), before the update
    const before = await m.predict(data[0].x);
    const [, , auc] = await m.trainOnBatch(data[0].x, data[0].y);
    expect(auc).toBeCloseTo(aucFromCountsRef(confusionRef(before, data[0].y, null, { kind: 'buckets', count: 200, epsilon: true })), 5);
  });

  it('top-k for softmax heads; a metric that does not fit the loss is refused with the valid names', async () => {
    setInitSeed(23);
    const input = Input({ shape: [2, 2, 3] });
    const out = new Dense({ units: 7, activation: 'softmax' }).apply(new Flatten().apply(input));
    const m = new Model({ inputs: input, outputs: out });
    expect(() => m.compile({ optimizer: 'sgd', loss: 'sparse_categorical_crossentropy', metrics: ['auc'] })).toThrow(/auc/);
    m.compile({ optimizer: 'adam', loss: 'sparse_categorical_crossentropy', metrics: ['acc', 'sparse_top_k_categorical_accuracy'] });
    const r = rng(4);
    const x = Float32Array.from({ length: 10 * 12 }, () => r() * 4 - 2);
    const labels = Float32Array.from({ length: 10 }, () => Math.floor(r() * 7));
    const [, , top5] = await m.evaluate([{ x, y: labels }]);
    const probs = await m.predict(x);
    const [hits, n] = topKRef(Array.from(probs, (q) => Math.log(q)), 7, labels, 5, null);
    expect(top5).toBeCloseTo(hits / n, 6);
  });
});

describe('class weights', () => {
  it("trainOnBatch: the loss is sum(w * loss) / batch and the accuracy weighted, as Keras's", async () => {
    setInitSeed(31);
    const m = binaryModel(['acc']);
    const [b] = batches(1, 8, 5);
    const p = await m.predict(b.x);
    const w = Array.from(b.y, (c) => (c === 1 ? 3 : 0.5));
    let loss = 0;
    let correct = 0;
    b.y.forEach((c, i) => {
      loss += w[i] * bceRef(logit(p[i]), c);
      correct += w[i] * (((p[i] > 0.5 ? 1 : 0) === c) ? 1 : 0);
    });
    const [l, a] = await m.trainOnBatch(b.x, b.y, { classWeight: { 0: 0.5, 1: 3 } });
    expect(l).toBeCloseTo(loss / 8, 5);
    expect(a).toBeCloseTo(correct / w.reduce((s, v) => s + v, 0), 6);
  });

  it('weights of 1 change nothing bit for bit; weights of 0 leave the model untouched; bad keys are refused', async () => {
    const run = async (classWeight?: Record<number, number>) => {
      setInitSeed(32);
      const m = binaryModel(['acc']);
      const h = await m.fit(batches(2, 4, 6), { epochs: 1, verbose: 0, classWeight });
      return { m, loss: h.history.loss[0], weights: await m.getWeights() };
    };
    const plain = await run();
    const ones = await run({ 0: 1, 1: 1 });
    expect(ones.loss).toBe(plain.loss);
    ones.weights.forEach((t, i) => expect(t.data).toEqual(plain.weights[i].data));
    setInitSeed(32);
    const before = await binaryModel(['acc']).getWeights();
    const zero = await run({ 0: 0, 1: 0 });
    expect(zero.loss).toBe(0);
    zero.weights.forEach((t, i) => expect(t.data).toEqual(before[i].data));
    await expect(plain.m.fit(batches(1, 4, 6), { verbose: 0, classWeight: { 2: 1 } })).rejects.toThrow(/fit: .*2/);
    // after a weighted fit, an unweighted step is unweighted again
    const [b] = batches(1, 4, 7);
    const p = await ones.m.predict(b.x);
    const expected = Array.from(b.y, (c, i) => bceRef(logit(p[i]), c)).reduce((s, v) => s + v, 0) / 4;
    expect((await ones.m.trainOnBatch(b.x, b.y))[0]).toBeCloseTo(expected, 5);
  });
});
