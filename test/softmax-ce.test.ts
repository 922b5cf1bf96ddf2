import { describe, expect, it } from 'vitest';
import { SoftmaxCeKernel } from '../src/kernels/softmax-ce.ts';
import type { Gpu } from '../src/gpu/index.ts';
import { output, testGpu } from './helpers/gpu.ts';
import { randomArray, rng } from './helpers/random.ts';
import { expectClose, expectRelative } from './helpers/compare.ts';
import { argmaxRef, meanSoftmaxCeRef, softmaxCeRef, softmaxRef, type LabelKind } from './reference/softmax-ce.ts';
import { normalizeClassWeight, sampleWeights } from '../src/graph/class-weights.ts';

/** Random class indices in [0, classes). */
function classIndices(batch: number, classes: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: batch }, () => Math.min(classes - 1, Math.floor(r() * classes)));
}

/** Labels in the kernel's layout for the given class indices. */
function encodeLabels(cls: number[], classes: number, kind: LabelKind): Float32Array {
  if (kind === 'sparse') return Float32Array.from(cls);
  const y = new Float32Array(cls.length * classes);
  cls.forEach((c, i) => { y[i * classes + c] = 1; });
  return y;
}

/** Random soft label rows (positive weights summing to 1). */
function softLabels(batch: number, classes: number, seed: number): Float32Array {
  const y = randomArray(batch * classes, seed, 0.01, 1);
  for (let i = 0; i < batch; i++) {
    let s = 0;
    for (let k = 0; k < classes; k++) s += y[i * classes + k];
    for (let k = 0; k < classes; k++) y[i * classes + k] /= s;
  }
  return y;
}

/**
 * Random logits in [-4, 4); the true class of about half the rows is raised by 5 so that the
 * accuracy is neither 0 nor 1 for many classes.
 */
function logitsFor(cls: number[], classes: number, seed: number): Float32Array {
  const z = randomArray(cls.length * classes, seed, -4, 4);
  cls.forEach((c, i) => { if (i % 2 === 0) z[i * classes + c] += 5; });
  return z;
}

/** One lossAndGradient (weighted when w is given) on poisoned outputs; returns what the GPU wrote. */
async function lossAndGradient(gpu: Gpu, z: Float32Array, y: Float32Array, classes: number, kind: LabelKind, w?: Float32Array) {
  const batch = z.length / classes;
  const k = await SoftmaxCeKernel.create(gpu, { batch, classes, labels: kind, label: 'predictions', weighted: w !== undefined });
  const logits = gpu.upload('logits', z);
  const labels = gpu.upload('labels', y);
  const dlogits = output(gpu, 'dlogits', z.length);
  const stats = output(gpu, 'stats', 2);
  const weights = w ? gpu.upload('weights', w) : undefined;
  gpu.submit('softmax_ce test', k.lossAndGradient({ logits, labels, dlogits, stats, weights }));
  const result = { dlogits: await gpu.readF32(dlogits), stats: await gpu.readF32(stats) };
  for (const b of [logits, labels, dlogits, stats, weights]) if (b) gpu.destroyBuffer(b);
  k.destroy();
  return result;
}

/**
 * Class weights {0: 0.25, 1: 4, 2: 2.5} (those in range; other classes weigh 1) turned into
 * per-example weights as Keras's class_weight does, then every 7th example weighted 0 and every
 * 11th 1e4: weighted and unweighted statistics differ.
 */
function mixedWeights(y: Float32Array, classes: number, kind: LabelKind, batch: number): Float32Array {
  const map = Object.fromEntries(Object.entries({ 0: 0.25, 1: 4, 2: 2.5 }).filter(([c]) => Number(c) < classes));
  const loss = kind === 'sparse' ? 'sparse_categorical_crossentropy' : 'categorical_crossentropy';
  const w = sampleWeights(y, loss, normalizeClassWeight(map, classes), batch);
  for (let i = 0; i < batch; i++) {
    if (i % 7 === 3) w[i] = 0;
    else if (i % 11 === 5) w[i] = 1e4;
  }
  return w;
}


/** Central differences of the float64 batch-mean loss with respect to every logit. */
function finiteDifferences(z: ArrayLike<number>, y: ArrayLike<number>, classes: number, kind: LabelKind): Float64Array {
  const eps = 1e-3;
  const zz = Float64Array.from(z);
  const fd = new Float64Array(zz.length);
  for (let j = 0; j < zz.length; j++) {
    const zp = Float64Array.from(zz);
    const zm = Float64Array.from(zz);
    zp[j] += eps;
    zm[j] -= eps;
    fd[j] = (meanSoftmaxCeRef(zp, y, classes, kind) - meanSoftmaxCeRef(zm, y, classes, kind)) / (2 * eps);
  }
  return fd;
}

const scaled = (v: ArrayLike<number>, s: number) => Array.from(v, (x) => x * s);

describe('softmax + categorical cross-entropy', () => {
  for (const kind of ['onehot', 'sparse'] as const) {
    for (const classes of [2, 3, 10, 1000]) {
      for (const batch of [1, 3, 32, 300]) {
        it(`${kind}: loss, accuracy and dlogits match float64 (classes ${classes}, batch ${batch})`, async () => {
          const gpu = await testGpu();
          const cls = classIndices(batch, classes, classes * 1000 + batch);
          const z = logitsFor(cls, classes, classes + batch);
          const y = encodeLabels(cls, classes, kind);
          const got = await lossAndGradient(gpu, z, y, classes, kind);
          const ref = softmaxCeRef(z, y, classes, kind);
          expectClose([got.stats[0]], [ref.loss], 1e-5, 'mean loss');
          expect(got.stats[1], 'accuracy').toBeCloseTo(ref.acc, 6);
          // dlogits are O(1/batch): compare batch * dlogits = p - y, in [-1, 1]
          expectClose(scaled(got.dlogits, batch), scaled(ref.dlogits, batch), 1e-5, 'batch * dlogits');
        });
      }
    }
  }

  it('onehot: soft label rows (Keras categorical_crossentropy on label distributions)', async () => {
    const gpu = await testGpu();
    const classes = 7;
    const batch = 37;
    const z = randomArray(batch * classes, 71, -5, 5);
    const y = softLabels(batch, classes, 72);
    const got = await lossAndGradient(gpu, z, y, classes, 'onehot');
    const ref = softmaxCeRef(z, y, classes, 'onehot');
    expectClose([got.stats[0]], [ref.loss], 1e-5, 'mean loss');
    expect(got.stats[1], 'accuracy').toBeCloseTo(ref.acc, 6);
    expect(ref.acc, 'a test where some but not all argmaxes agree').toBeGreaterThan(0);
    expect(ref.acc).toBeLessThan(1);
    expectClose(scaled(got.dlogits, batch), scaled(ref.dlogits, batch), 1e-5, 'batch * dlogits');
  });

  for (const [kind, what] of [['onehot', 'one-hot rows'], ['onehot', 'soft rows, one summing to 0.5 and one to 2'], ['sparse', 'class indices']] as const) {
    it(`${kind}: dlogits match central finite differences of the float64 batch-mean loss (${what})`, async () => {
      const gpu = await testGpu();
      const classes = 5;
      const batch = 4;
      const z = randomArray(batch * classes, 81, -3, 3);
      const cls = classIndices(batch, classes, 82);
      let y = encodeLabels(cls, classes, kind);
      if (what.startsWith('soft')) {
        y = softLabels(batch, classes, 83);
        for (let k = 0; k < classes; k++) {
          y[k] *= 0.5; // rows that are not distributions: the gradient is sum(y) p - y
          y[classes + k] *= 2;
        }
      }
      const fd = finiteDifferences(z, y, classes, kind);
      const got = await lossAndGradient(gpu, z, y, classes, kind);
      expectClose(scaled(got.dlogits, batch), scaled(fd, batch), 1e-4, 'batch * dlogits vs finite differences');
      expectClose([got.stats[0]], [meanSoftmaxCeRef(z, y, classes, kind)], 1e-5, 'mean loss');
    });
  }

  for (const kind of ['onehot', 'sparse'] as const) {
    it(`${kind}: finite and accurate at extreme logits (±100, large differences, ties at the max)`, async () => {
      const gpu = await testGpu();
      const classes = 4;
      const rows: [number[], number][] = [
        [[100, -100, 0, 0], 0],       // confident and right: loss ~ e^-100, gradients ~ e^-100
        [[100, -100, 0, 0], 1],       // confident and wrong: loss 200
        [[-100, 100, 100, -100], 2],  // a tie at the max: p = 1/2 each
        [[100, 100, 100, 100], 3],    // all equal: loss log 4
        [[88, -88, 87, 0], 2],        // a near tie between large logits
        [[30, 0, -30, 10], 0],
        [[1e4, -1e4, 0, 5e3], 3],     // differences far beyond exp's range
        [[-100, -100, -99, -100], 1], // all very negative
      ];
      const z = Float32Array.from(rows.flatMap((r) => r[0]));
      const y = encodeLabels(rows.map((r) => r[1]), classes, kind);
      const batch = rows.length;
      const got = await lossAndGradient(gpu, z, y, classes, kind);
      const ref = softmaxCeRef(z, y, classes, kind);
      expect(Number.isFinite(got.stats[0])).toBe(true);
      expectClose([got.stats[0]], [ref.loss], 1e-5, 'mean loss');
      expect(got.stats[1], 'accuracy').toBeCloseTo(ref.acc, 6);
      // relative to the tiny gradients of confident predictions (e.g. e^-30 / batch), with an
      // absolute floor near f32's subnormals (where exp(-88..-200) may flush to zero)
      expectRelative(got.dlogits, ref.dlogits, 1e-5, 1e-37, 'dlogits');
      // and the per-example losses, through a batch of one
      for (let i = 0; i < batch; i++) {
        const zi = z.subarray(i * classes, (i + 1) * classes);
        const yi = kind === 'sparse' ? y.subarray(i, i + 1) : y.subarray(i * classes, (i + 1) * classes);
        const one = await lossAndGradient(gpu, zi, yi, classes, kind);
        expectRelative([one.stats[0]], [ref.losses[i]], 1e-5, 1e-37, `loss of row ${i} (${rows[i][0]}, label ${rows[i][1]})`);
      }
    });
  }

  it('argmax ties go to the first index, in the logits and in the label rows', async () => {
    const gpu = await testGpu();
    const classes = 3;
    // [logits, onehot label row, sparse label, expected correct (onehot), expected correct (sparse)]
    const cases: [number[], number[], number, boolean, boolean][] = [
      [[1, 1, 0], [1, 0, 0], 0, true, true],           // predicted 0 (first of the tie)
      [[1, 1, 0], [0, 1, 0], 1, false, false],
      [[0, 2, 2], [0, 0.5, 0.5], 1, true, true],       // label tie: 1; predicted 1
      [[0, 1, 1], [0.5, 0.5, 0], 2, false, false],     // label tie: 0; predicted 1
      [[3, 3, 3], [0.2, 0.4, 0.4], 0, false, true],    // predicted 0, label 1 (onehot)
      [[-1, 5, 5], [0, 0, 1], 2, false, false],
    ];
    const z = Float32Array.from(cases.flatMap((c) => c[0]));
    const onehot = Float32Array.from(cases.flatMap((c) => c[1]));
    const sparse = Float32Array.from(cases.map((c) => c[2]));
    const n = cases.length;
    const a = await lossAndGradient(gpu, z, onehot, classes, 'onehot');
    const b = await lossAndGradient(gpu, z, sparse, classes, 'sparse');
    expect(a.stats[1]).toBeCloseTo(cases.filter((c) => c[3]).length / n, 7);
    expect(b.stats[1]).toBeCloseTo(cases.filter((c) => c[4]).length / n, 7);
    // the references agree with the hand-made expectations
    expect(softmaxCeRef(z, onehot, classes, 'onehot').acc).toBeCloseTo(a.stats[1], 7);
    expect(softmaxCeRef(z, sparse, classes, 'sparse').acc).toBeCloseTo(b.stats[1], 7);
    expect(argmaxRef([2, 5, 5, 1])).toBe(1);
  });

  it('argmax ties across invocations (1000 classes: the later invocation holds the first index)', async () => {
    const gpu = await testGpu();
    const classes = 1000;
    // With up to 256 invocations per row, class 260 is seen by invocation 4 and class 5 by
    // invocation 5: the workgroup reduction must still pick 5.
    const z = randomArray(4 * classes, 140, -1, 1);
    const y = new Float32Array(4 * classes);
    for (let i = 0; i < 4; i++) {
      z[i * classes + 5] = 10;
      z[i * classes + 260] = 10;
    }
    y[5] = 1;                                                // row 0: label 5, right
    y[classes + 260] = 1;                                    // row 1: label 260, wrong
    y[2 * classes + 260] = 0.5; y[2 * classes + 5] = 0.5;    // row 2: label tie, first is 5: right
    y[3 * classes + 261] = 0.5; y[3 * classes + 517] = 0.5;  // row 3: label tie, first is 261: wrong
    const sparse = Float32Array.from([5, 260, 5, 261]);
    const a = await lossAndGradient(gpu, z, y, classes, 'onehot');
    const b = await lossAndGradient(gpu, z, sparse, classes, 'sparse');
    expect(a.stats[1]).toBe(0.5);
    expect(b.stats[1]).toBe(0.5);
    expectClose(scaled(a.dlogits, 4), scaled(softmaxCeRef(z, y, classes, 'onehot').dlogits, 4), 1e-5, 'batch * dlogits');
  });

  it('a sparse label outside 0..K-1 or not an integer makes the loss NaN (and only its dlogits row)', async () => {
    const gpu = await testGpu();
    const classes = 4;
    const batch = 5;
    const z = randomArray(batch * classes, 91, -2, 2);
    const good = [0, 3, 1, 2, 0];
    for (const bad of [4, -1, 1.5, 1e9, Number.NaN]) {
      const y = Float32Array.from(good);
      y[2] = bad;
      const got = await lossAndGradient(gpu, z, y, classes, 'sparse');
      expect(got.stats[0], `loss with label ${bad}`).toBeNaN();
      expect(Number.isFinite(got.stats[1]), 'accuracy stays a number').toBe(true);
      const ref = softmaxCeRef(z, Float32Array.from(good), classes, 'sparse');
      for (let i = 0; i < batch; i++) {
        const row = got.dlogits.subarray(i * classes, (i + 1) * classes);
        if (i === 2) expect(Array.from(row).every(Number.isNaN), `dlogits row of label ${bad}`).toBe(true);
        else expectClose(scaled(row, batch), scaled(ref.dlogits.subarray(i * classes, (i + 1) * classes), batch), 1e-5, `dlogits row ${i}`);
      }
    }
    // nothing sticks: the same shapes with good labels give a finite loss
    const ok = await lossAndGradient(gpu, z, Float32Array.from(good), classes, 'sparse');
    expectClose([ok.stats[0]], [softmaxCeRef(z, good, classes, 'sparse').loss], 1e-5, 'loss with good labels');
  });

  it('loss() writes the stats only (dlogits untouched)', async () => {
    const gpu = await testGpu();
    const batch = 300;
    const classes = 10;
    for (const kind of ['onehot', 'sparse'] as const) {
      const k = await SoftmaxCeKernel.create(gpu, { batch, classes, labels: kind, label: 'eval' });
      const cls = classIndices(batch, classes, 101);
      const z = logitsFor(cls, classes, 102);
      const y = encodeLabels(cls, classes, kind);
      const logits = gpu.upload('logits', z);
      const labels = gpu.upload('labels', y);
      const dlogits = output(gpu, 'dlogits', batch * classes);
      const stats = output(gpu, 'stats', 2);
      gpu.submit('softmax_ce eval', k.loss({ logits, labels, stats }));
      const s = await gpu.readF32(stats);
      const ref = softmaxCeRef(z, y, classes, kind);
      expectClose(s, [ref.loss, ref.acc], 1e-5, 'stats');
      expect((await gpu.readF32(dlogits)).every(Number.isNaN)).toBe(true);
      // the same batch twice gives bit-identical stats (fixed reduction order)
      gpu.submit('softmax_ce eval again', k.loss({ logits, labels, stats }));
      expect(Array.from(await gpu.readF32(stats))).toEqual(Array.from(s));
      for (const b of [logits, labels, dlogits, stats]) gpu.destroyBuffer(b);
      k.destroy();
    }
  });

  it('accumulate over 3 batches equals the float64 sums (loss sum, correct count, count)', async () => {
    const gpu = await testGpu();
    const batch = 33;
    const classes = 6;
    for (const kind of ['onehot', 'sparse'] as const) {
      const k = await SoftmaxCeKernel.create(gpu, { batch, classes, labels: kind, label: 'acc' });
      const logits = gpu.createBuffer('logits', batch * classes * 4);
      const labels = gpu.createBuffer('labels', (kind === 'sparse' ? batch : batch * classes) * 4);
      const dlogits = output(gpu, 'dlogits', batch * classes);
      const stats = output(gpu, 'stats', 2);
      const totals = gpu.upload('totals', new Float32Array(3));
      const step = [k.lossAndGradient({ logits, labels, dlogits, stats }), k.accumulate({ stats, totals })];
      let lossSum = 0;
      let correct = 0;
      for (let b = 0; b < 3; b++) {
        const cls = classIndices(batch, classes, 110 + b);
        const z = logitsFor(cls, classes, 120 + b);
        const y = encodeLabels(cls, classes, kind);
        gpu.write(logits, z);
        gpu.write(labels, y);
        gpu.submit(`softmax_ce step ${b}`, step);
        const ref = softmaxCeRef(z, y, classes, kind);
        lossSum += ref.lossSum;
        correct += ref.correct;
      }
      const t = await gpu.readF32(totals);
      expectClose([t[0]], [lossSum], 1e-5, 'loss sum');
      expect(t[1]).toBe(correct);
      expect(t[2]).toBe(3 * batch);
      for (const b of [logits, labels, dlogits, stats, totals]) gpu.destroyBuffer(b);
      k.destroy();
    }
  });

  for (const classes of [3, 1000]) {
    it(`probabilities: softmax rows that sum to 1 (classes ${classes})`, async () => {
      const gpu = await testGpu();
      const batch = 5;
      const k = await SoftmaxCeKernel.create(gpu, { batch, classes, labels: 'sparse', label: 'predict' });
      const z = randomArray(batch * classes, 130 + classes, -6, 6);
      z.set(Array.from({ length: classes }, (_, j) => (j === 1 ? 100 : j === 2 ? 99 : -100)), 0); // extreme row
      const logits = gpu.upload('logits', z);
      const probs = output(gpu, 'probs', batch * classes);
      gpu.submit('softmax_ce probabilities', k.probabilities({ logits, probs }));
      const p = await gpu.readF32(probs);
      expectRelative(p, softmaxRef(z, classes), 1e-5, 1e-37, 'probabilities');
      for (let i = 0; i < batch; i++) {
        const s = p.subarray(i * classes, (i + 1) * classes).reduce((a, v) => a + v, 0);
        expect(Math.abs(s - 1), `row ${i} sums to ${s}`).toBeLessThan(1e-5);
      }
      gpu.destroyBuffer(logits);
      gpu.destroyBuffer(probs);
      k.destroy();
    });
  }

  it('rejects bad shapes and short buffers, naming the layer', async () => {
    const gpu = await testGpu();
    for (const batch of [0, -1, 2.5]) {
      await expect(SoftmaxCeKernel.create(gpu, { batch, classes: 3, labels: 'onehot', label: 'dense_3' })).rejects.toThrow(/dense_3: .*batch .*got/);
    }
    for (const classes of [1, 0, 2.5, Number.NaN]) {
      await expect(SoftmaxCeKernel.create(gpu, { batch: 4, classes, labels: 'sparse', label: 'dense_3' })).rejects.toThrow(/dense_3: .*classes .*got/);
    }
    const labels = 'binary' as unknown as 'onehot';
    await expect(SoftmaxCeKernel.create(gpu, { batch: 4, classes: 3, labels, label: 'dense_3' })).rejects.toThrow(/dense_3: .*'onehot' or 'sparse', got binary/);
    await expect(SoftmaxCeKernel.create(gpu, { batch: 1 << 20, classes: 1 << 20, labels: 'sparse', label: 'dense_3' })).rejects.toThrow(/dense_3: .*maxStorageBufferBindingSize/);

    const batch = 4;
    const classes = 3;
    const full = gpu.createBuffer('full', batch * classes * 4);
    const perExample = gpu.createBuffer('per_example', batch * 4);
    const stats = gpu.createBuffer('stats', 8);
    const sparse = await SoftmaxCeKernel.create(gpu, { batch, classes, labels: 'sparse', label: 'dense_3' });
    const onehot = await SoftmaxCeKernel.create(gpu, { batch, classes, labels: 'onehot', label: 'dense_3' });
    expect(() => sparse.lossAndGradient({ logits: full, labels: perExample, dlogits: full, stats })).not.toThrow();
    expect(() => onehot.lossAndGradient({ logits: full, labels: perExample, dlogits: full, stats })).toThrow(/dense_3: softmax_ce needs labels of at least 12 floats/);
    expect(() => sparse.lossAndGradient({ logits: perExample, labels: perExample, dlogits: full, stats })).toThrow(/needs logits of at least 12 floats/);
    expect(() => sparse.lossAndGradient({ logits: full, labels: perExample, dlogits: perExample, stats })).toThrow(/needs dlogits of at least 12 floats/);
    const one = gpu.createBuffer('one_float', 4);
    expect(() => sparse.loss({ logits: full, labels: perExample, stats: one })).toThrow(/needs stats of at least 2 floats/);
    expect(() => sparse.probabilities({ logits: full, probs: perExample })).toThrow(/needs probs of at least 12 floats/);
    expect(() => sparse.probabilities({ logits: full, probs: full })).toThrow(/distinct/);
    expect(() => sparse.accumulate({ stats, totals: stats })).toThrow(/distinct/);
    expect(() => sparse.accumulate({ stats: perExample, totals: stats })).toThrow(/needs totals of at least 3 floats/);
    for (const b of [full, perExample, stats, one]) gpu.destroyBuffer(b);
    sparse.destroy();
    onehot.destroy();
  });
  for (const kind of ['onehot', 'sparse'] as const) {
    for (const classes of [2, 10, 1000]) {
      for (const batch of [1, 5, 300]) {
        it(`${kind} weighted: loss = sum(w loss) / batch, accuracy = sum(w correct) / sum(w), dlogits rows times w (classes ${classes}, batch ${batch})`, async () => {
          const gpu = await testGpu();
          const cls = classIndices(batch, classes, classes * 77 + batch);
          const z = logitsFor(cls, classes, classes + batch + 5);
          const y = encodeLabels(cls, classes, kind);
          const w = mixedWeights(y, classes, kind, batch);
          const got = await lossAndGradient(gpu, z, y, classes, kind, w);
          const ref = softmaxCeRef(z, y, classes, kind, w);
          expectClose([got.stats[0]], [ref.loss], 1e-5, 'weighted loss');
          expectClose([got.stats[1]], [ref.acc], 1e-6, 'weighted accuracy');
          expectClose(scaled(got.dlogits, batch), scaled(ref.dlogits, batch), 1e-5, 'batch * dlogits');
          for (let i = 0; i < batch; i++) {
            if (w[i] === 0) expect(got.dlogits.subarray(i * classes, (i + 1) * classes).every((d) => d === 0), `dlogits row ${i} of weight 0`).toBe(true);
          }
          if (batch === 300) {
            // the weights matter here: a kernel ignoring them (or dividing by sum(w)) would fail
            expect(Math.abs(ref.acc - softmaxCeRef(z, y, classes, kind).acc)).toBeGreaterThan(1e-3);
            expect(Math.abs(ref.loss - ref.lossSum / ref.weightSum)).toBeGreaterThan(1e-3 * ref.loss);
          }
        });
      }
    }
  }

  for (const kind of ['onehot', 'sparse'] as const) {
    it(`${kind}: weighted with all weights 1 is bit-identical to the unweighted pass`, async () => {
      const gpu = await testGpu();
      const classes = 37;
      const batch = 301;
      const cls = classIndices(batch, classes, 400);
      const z = logitsFor(cls, classes, 401);
      const y = encodeLabels(cls, classes, kind);
      const plain = await lossAndGradient(gpu, z, y, classes, kind);
      const ones = await lossAndGradient(gpu, z, y, classes, kind, new Float32Array(batch).fill(1));
      expect(Array.from(ones.stats)).toEqual(Array.from(plain.stats));
      expect(Array.from(ones.dlogits)).toEqual(Array.from(plain.dlogits));
      const ref = softmaxCeRef(z, y, classes, kind);
      expectClose(plain.stats, [ref.loss, ref.acc], 1e-5, 'unweighted stats');
    });
  }

  it('weighted with every weight 0: loss 0, accuracy 0 (Keras divide_no_nan), no gradient', async () => {
    const gpu = await testGpu();
    const classes = 5;
    const batch = 9;
    const cls = classIndices(batch, classes, 410);
    const z = logitsFor(cls, classes, 411);
    const got = await lossAndGradient(gpu, z, Float32Array.from(cls), classes, 'sparse', new Float32Array(batch));
    expect(Array.from(got.stats)).toEqual([0, 0]);
    expect(got.dlogits.every((d) => d === 0)).toBe(true);
  });

  for (const [kind, what] of [['onehot', 'soft rows'], ['sparse', 'class indices']] as const) {
    it(`${kind}: weighted dlogits match central finite differences of the float64 weighted loss (${what})`, async () => {
      const gpu = await testGpu();
      const classes = 5;
      const batch = 4;
      const z = randomArray(batch * classes, 421, -3, 3);
      const y = kind === 'sparse' ? encodeLabels(classIndices(batch, classes, 422), classes, kind) : softLabels(batch, classes, 423);
      const w = Float32Array.from([0.5, 0, 7, 1.25]);
      const eps = 1e-3;
      const zz = Float64Array.from(z);
      const fd = new Float64Array(zz.length);
      for (let j = 0; j < zz.length; j++) {
        const zp = Float64Array.from(zz);
        const zm = Float64Array.from(zz);
        zp[j] += eps;
        zm[j] -= eps;
        fd[j] = (meanSoftmaxCeRef(zp, y, classes, kind, w) - meanSoftmaxCeRef(zm, y, classes, kind, w)) / (2 * eps);
      }
      const got = await lossAndGradient(gpu, z, y, classes, kind, w);
      expectClose(scaled(got.dlogits, batch), scaled(fd, batch), 1e-4, 'batch * weighted dlogits vs finite differences');
      expectClose([got.stats[0]], [meanSoftmaxCeRef(z, y, classes, kind, w)], 1e-5, 'weighted loss');
    });
  }

  it('weighted: a bad sparse label makes the loss NaN even at weight 0 (and only its dlogits row)', async () => {
    const gpu = await testGpu();
    const classes = 4;
    const batch = 5;
    const z = randomArray(batch * classes, 431, -2, 2);
    const y = Float32Array.from([0, 3, 7, 2, 0]);
    const w = Float32Array.from([2, 0.5, 0, 3, 1]);
    const got = await lossAndGradient(gpu, z, y, classes, 'sparse', w);
    expect(got.stats[0]).toBeNaN();
    expect(Number.isFinite(got.stats[1]), 'accuracy stays a number').toBe(true);
    const good = Float32Array.from([0, 3, 1, 2, 0]);
    const ref = softmaxCeRef(z, good, classes, 'sparse', w);
    for (let i = 0; i < batch; i++) {
      const row = got.dlogits.subarray(i * classes, (i + 1) * classes);
      if (i === 2) expect(Array.from(row).every(Number.isNaN), 'dlogits row of the bad label').toBe(true);
      else expectClose(scaled(row, batch), scaled(ref.dlogits.subarray(i * classes, (i + 1) * classes), batch), 1e-5, `dlogits row ${i}`);
    }
  });

  it('weighted loss() writes the weighted stats only, equal to the training pass', async () => {
    const gpu = await testGpu();
    const batch = 300;
    const classes = 10;
    for (const kind of ['onehot', 'sparse'] as const) {
      const k = await SoftmaxCeKernel.create(gpu, { batch, classes, labels: kind, label: 'eval', weighted: true });
      const cls = classIndices(batch, classes, 441);
      const z = logitsFor(cls, classes, 442);
      const y = encodeLabels(cls, classes, kind);
      const w = mixedWeights(y, classes, kind, batch);
      const logits = gpu.upload('logits', z);
      const labels = gpu.upload('labels', y);
      const weights = gpu.upload('weights', w);
      const dlogits = output(gpu, 'dlogits', batch * classes);
      const stats = output(gpu, 'stats', 2);
      gpu.submit('softmax_ce eval weighted', k.loss({ logits, labels, stats, weights }));
      const s = await gpu.readF32(stats);
      const ref = softmaxCeRef(z, y, classes, kind, w);
      expectClose(s, [ref.loss, ref.acc], 1e-5, 'weighted stats');
      expect((await gpu.readF32(dlogits)).every(Number.isNaN)).toBe(true);
      gpu.submit('softmax_ce train weighted', k.lossAndGradient({ logits, labels, dlogits, stats, weights }));
      expect(Array.from(await gpu.readF32(stats))).toEqual(Array.from(s));
      // an unweighted pass right after is the plain mean again
      gpu.submit('softmax_ce eval', k.loss({ logits, labels, stats }));
      expectClose(await gpu.readF32(stats), [softmaxCeRef(z, y, classes, kind).loss, softmaxCeRef(z, y, classes, kind).acc], 1e-5, 'unweighted stats');
      for (const b of [logits, labels, weights, dlogits, stats]) gpu.destroyBuffer(b);
      k.destroy();
    }
  });

  it('weighted accumulate over 3 batches: totals = [sum w loss, sum w correct, sum w, count]', async () => {
    const gpu = await testGpu();
    const batch = 33;
    const classes = 6;
    for (const kind of ['onehot', 'sparse'] as const) {
      const k = await SoftmaxCeKernel.create(gpu, { batch, classes, labels: kind, label: 'acc' });
      await k.enableWeights(); // the late way: a kernel built unweighted, weights added later
      const logits = gpu.createBuffer('logits', batch * classes * 4);
      const labels = gpu.createBuffer('labels', (kind === 'sparse' ? batch : batch * classes) * 4);
      const weights = gpu.createBuffer('weights', batch * 4);
      const dlogits = output(gpu, 'dlogits', batch * classes);
      const stats = output(gpu, 'stats', 2);
      const totals4 = gpu.upload('totals4', new Float32Array(4));
      const totals3 = gpu.upload('totals3', new Float32Array(3));
      const train = [k.lossAndGradient({ logits, labels, dlogits, stats, weights }), k.accumulate({ stats, totals: totals4, weighted: true }), k.accumulate({ stats, totals: totals3, weighted: true })];
      const evaluate = [k.loss({ logits, labels, stats, weights }), k.accumulate({ stats, totals: totals4, weighted: true }), k.accumulate({ stats, totals: totals3, weighted: true })];
      const sums = [0, 0, 0];
      for (let b = 0; b < 3; b++) {
        const cls = classIndices(batch, classes, 450 + b);
        const z = logitsFor(cls, classes, 460 + b);
        const y = encodeLabels(cls, classes, kind);
        const w = mixedWeights(y, classes, kind, batch);
        gpu.write(logits, z);
        gpu.write(labels, y);
        gpu.write(weights, w);
        gpu.submit(`softmax_ce weighted step ${b}`, b === 1 ? evaluate : train);
        const ref = softmaxCeRef(z, y, classes, kind, w);
        sums[0] += ref.lossSum;
        sums[1] += ref.correct;
        sums[2] += ref.weightSum;
      }
      const t = await gpu.readF32(totals4);
      expectClose(Array.from(t.subarray(0, 3)), sums, 1e-5, 'weighted sums');
      expect(t[3]).toBe(3 * batch);
      expectClose(await gpu.readF32(totals3), sums, 1e-5, 'weighted sums in a 3-float totals');
      for (const b of [logits, labels, weights, dlogits, stats, totals4, totals3]) gpu.destroyBuffer(b);
      k.destroy();
    }
  });

  it('rejects a short weights buffer and weights before enableWeights(), naming them', async () => {
    const gpu = await testGpu();
    const batch = 4;
    const classes = 3;
    const k = await SoftmaxCeKernel.create(gpu, { batch, classes, labels: 'sparse', label: 'dense_3' });
    const full = gpu.createBuffer('full', batch * classes * 4);
    const stats = gpu.createBuffer('stats', 8);
    const short = gpu.createBuffer('short_weights', 12);
    for (const [what, call] of [
      ['lossAndGradient', () => k.lossAndGradient({ logits: full, labels: full, dlogits: full, stats, weights: full })],
      ['loss', () => k.loss({ logits: full, labels: full, stats, weights: full })],
      ['accumulate', () => k.accumulate({ stats, totals: full, weighted: true })],
    ] as const) {
      expect(call, what).toThrow(new RegExp(`dense_3: softmax_ce.${what} with weights needs the weighted pipelines: create the kernel with \\{ weighted: true \\} or await enableWeights\\(\\)`));
    }
    expect(() => k.loss({ logits: full, labels: full, stats })).not.toThrow();
    await k.enableWeights();
    expect(() => k.lossAndGradient({ logits: full, labels: full, dlogits: full, stats, weights: short })).toThrow(/dense_3: softmax_ce needs weights of at least 4 floats .*short_weights/);
    expect(() => k.loss({ logits: full, labels: full, stats, weights: short })).toThrow(/needs weights of at least 4 floats/);
    expect(() => k.loss({ logits: full, labels: full, stats, weights: full })).not.toThrow();
    for (const b of [full, stats, short]) gpu.destroyBuffer(b);
    k.destroy();
  });
});
