import { describe, expect, it } from 'vitest';
import { SigmoidBceKernel } from '../src/kernels/sigmoid-bce.ts';
import type { Gpu } from '../src/gpu/index.ts';
import { output, testGpu } from './helpers/gpu.ts';
import { randomArray, rng } from './helpers/random.ts';
import { expectClose, expectRelative } from './helpers/compare.ts';
import { meanBceRef, sigmoidBceRef } from './reference/sigmoid-bce.ts';
import { normalizeClassWeight, sampleWeights } from '../src/graph/class-weights.ts';

/** Labels in {0, 1}. */
function binaryLabels(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() < 0.5 ? 0 : 1));
}

/** One lossAndGradient (weighted when w is given) on poisoned outputs; returns what the GPU wrote. */
async function lossAndGradient(gpu: Gpu, z: Float32Array, y: Float32Array, w?: Float32Array) {
  const k = await SigmoidBceKernel.create(gpu, { batch: z.length, label: 'out', weighted: w !== undefined });
  const logits = gpu.upload('logits', z);
  const labels = gpu.upload('labels', y);
  const dlogits = output(gpu, 'dlogits', z.length);
  const stats = output(gpu, 'stats', 2);
  const weights = w ? gpu.upload('weights', w) : undefined;
  gpu.submit('bce test', k.lossAndGradient({ logits, labels, dlogits, stats, weights }));
  const result = { dlogits: await gpu.readF32(dlogits), stats: await gpu.readF32(stats) };
  for (const b of [logits, labels, dlogits, stats, weights]) if (b) gpu.destroyBuffer(b);
  k.destroy();
  return result;
}

/**
 * Class weights {0: 0.25, 1: 4} turned into per-example weights (as Keras's class_weight), then
 * every 7th example weighted 0 and every 11th 1e4: weighted and unweighted statistics differ.
 */
function mixedWeights(y: Float32Array): Float32Array {
  const w = sampleWeights(y, 'binary_crossentropy', normalizeClassWeight({ 0: 0.25, 1: 4 }, 2), y.length);
  for (let i = 0; i < w.length; i++) {
    if (i % 7 === 3) w[i] = 0;
    else if (i % 11 === 5) w[i] = 1e4;
  }
  return w;
}


describe('sigmoid + binary cross-entropy', () => {
  for (const batch of [1, 3, 32, 1000, 4099]) {
    it(`loss, accuracy and dlogits match float64 (batch ${batch})`, async () => {
      const gpu = await testGpu();
      const z = randomArray(batch, batch, -6, 6);
      const y = binaryLabels(batch, batch + 1);
      const got = await lossAndGradient(gpu, z, y);
      const ref = sigmoidBceRef(z, y);
      expectClose([got.stats[0]], [ref.loss], 1e-5, 'mean loss');
      expectClose([got.stats[1]], [ref.acc], 1e-6, 'accuracy');
      // dlogits are O(1/batch): compare batch * dlogits = sigmoid(z) - y, in [-1, 1]
      expectClose(got.dlogits.map((d) => d * batch), ref.dlogits.map((d) => d * batch), 1e-5, 'batch * dlogits');
    });
  }

  it('is finite and accurate at extreme logits (±30, ±100)', async () => {
    const gpu = await testGpu();
    const z = Float32Array.from([30, 30, -30, -30, 100, 100, -100, -100, 0, 1e-3, -1e-3, 88, -88, 17]);
    const y = Float32Array.from([1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1]);
    const n = z.length;
    const got = await lossAndGradient(gpu, z, y);
    const ref = sigmoidBceRef(z, y);
    expect(Number.isFinite(got.stats[0])).toBe(true);
    expectClose([got.stats[0]], [ref.loss], 1e-5, 'mean loss');
    expectClose([got.stats[1]], [ref.acc], 1e-6, 'accuracy');
    // relative to the tiny gradients of confident correct predictions (e.g. -e^-30 / n), with an
    // absolute floor near f32's subnormals (where exp(-88..-100) may flush to zero)
    expectRelative(got.dlogits, ref.dlogits, 1e-5, 1e-37, 'dlogits');
    // and the per-example losses, through a batch of one
    for (let i = 0; i < n; i++) {
      const one = await lossAndGradient(gpu, z.subarray(i, i + 1), y.subarray(i, i + 1));
      const r = sigmoidBceRef([z[i]], [y[i]]);
      expectRelative([one.stats[0]], [r.loss], 1e-5, 1e-37, `loss of z=${z[i]} y=${y[i]}`);
    }
  });

  it('dlogits match central finite differences of the float64 batch-mean loss', async () => {
    const gpu = await testGpu();
    const n = 7;
    const z = randomArray(n, 21, -4, 4);
    const y = binaryLabels(n, 22);
    const zz = Float64Array.from(z);
    const eps = 1e-3;
    const fd = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const zp = Float64Array.from(zz);
      const zm = Float64Array.from(zz);
      zp[i] += eps;
      zm[i] -= eps;
      fd[i] = (meanBceRef(zp, y) - meanBceRef(zm, y)) / (2 * eps);
    }
    const got = await lossAndGradient(gpu, z, y);
    expectClose(got.dlogits, fd, 1e-4, 'dlogits vs finite differences');
  });

  it('accepts soft labels in [0, 1] (accuracy counts only exact matches, as Keras)', async () => {
    const gpu = await testGpu();
    const z = randomArray(50, 31, -5, 5);
    const y = randomArray(50, 32, 0, 1);
    y[0] = 1;
    z[0] = 2; // one exact, correct example
    const got = await lossAndGradient(gpu, z, y);
    const ref = sigmoidBceRef(z, y);
    expectClose([got.stats[0]], [ref.loss], 1e-5, 'mean loss');
    expect(got.stats[1]).toBeCloseTo(1 / 50, 7);
    expectClose(got.dlogits.map((d) => d * 50), ref.dlogits.map((d) => d * 50), 1e-5, 'batch * dlogits');
  });

  it('loss() writes the stats only (dlogits untouched)', async () => {
    const gpu = await testGpu();
    const batch = 300;
    const k = await SigmoidBceKernel.create(gpu, { batch, label: 'eval' });
    const z = randomArray(batch, 41, -3, 3);
    const y = binaryLabels(batch, 42);
    const logits = gpu.upload('logits', z);
    const labels = gpu.upload('labels', y);
    const dlogits = output(gpu, 'dlogits', batch);
    const stats = output(gpu, 'stats', 2);
    gpu.submit('bce eval', k.loss({ logits, labels, stats }));
    const s = await gpu.readF32(stats);
    const ref = sigmoidBceRef(z, y);
    expectClose(s, [ref.loss, ref.acc], 1e-5, 'stats');
    expect((await gpu.readF32(dlogits)).every(Number.isNaN)).toBe(true);
    for (const b of [logits, labels, dlogits, stats]) gpu.destroyBuffer(b);
    k.destroy();
  });

  it('accumulate over 3 batches equals the float64 sums (loss sum, correct count, count)', async () => {
    const gpu = await testGpu();
    const batch = 33;
    const k = await SigmoidBceKernel.create(gpu, { batch, label: 'acc' });
    const logits = gpu.createBuffer('logits', batch * 4);
    const labels = gpu.createBuffer('labels', batch * 4);
    const dlogits = output(gpu, 'dlogits', batch);
    const stats = output(gpu, 'stats', 2);
    const totals = gpu.upload('totals', new Float32Array(3));
    const step = [k.lossAndGradient({ logits, labels, dlogits, stats }), k.accumulate({ stats, totals })];
    let lossSum = 0;
    let correct = 0;
    for (let b = 0; b < 3; b++) {
      const z = randomArray(batch, 50 + b, -2, 2);
      const y = binaryLabels(batch, 60 + b);
      gpu.write(logits, z);
      gpu.write(labels, y);
      gpu.submit(`bce step ${b}`, step);
      const ref = sigmoidBceRef(z, y);
      lossSum += ref.lossSum;
      correct += ref.correct;
    }
    const t = await gpu.readF32(totals);
    expectClose([t[0]], [lossSum], 1e-5, 'loss sum');
    expect(t[1]).toBe(correct);
    expect(t[2]).toBe(3 * batch);
    for (const b of [logits, labels, dlogits, stats, totals]) gpu.destroyBuffer(b);
    k.destroy();
  });

  it('rejects bad batches and short buffers, naming the layer', async () => {
    const gpu = await testGpu();
    for (const batch of [0, -1, 2.5]) {
      await expect(SigmoidBceKernel.create(gpu, { batch, label: 'dense_2' })).rejects.toThrow(/dense_2: .*batch/);
    }
    const k = await SigmoidBceKernel.create(gpu, { batch: 16, label: 'dense_2' });
    const ok = gpu.createBuffer('ok', 64);
    const short = gpu.createBuffer('short', 32);
    expect(() => k.lossAndGradient({ logits: short, labels: ok, dlogits: ok, stats: ok })).toThrow(/dense_2: sigmoid_bce needs logits of at least 16 floats/);
    expect(() => k.accumulate({ stats: ok, totals: ok })).toThrow(/distinct/);
    gpu.destroyBuffer(ok);
    gpu.destroyBuffer(short);
    k.destroy();
  });
  for (const batch of [1, 5, 300, 1000]) {
    it(`weighted: loss = sum(w loss) / batch, accuracy = sum(w correct) / sum(w), dlogits times w (batch ${batch})`, async () => {
      const gpu = await testGpu();
      const z = randomArray(batch, 200 + batch, -6, 6);
      const y = binaryLabels(batch, 300 + batch);
      const w = mixedWeights(y);
      const got = await lossAndGradient(gpu, z, y, w);
      const ref = sigmoidBceRef(z, y, w);
      expectClose([got.stats[0]], [ref.loss], 1e-5, 'weighted loss');
      expectClose([got.stats[1]], [ref.acc], 1e-6, 'weighted accuracy');
      expectClose(got.dlogits.map((d) => d * batch), ref.dlogits.map((d) => d * batch), 1e-5, 'batch * dlogits');
      w.forEach((wi, i) => { if (wi === 0) expect(Math.abs(got.dlogits[i]), `dlogits of zero-weight example ${i}`).toBe(0); });
      if (batch >= 300) {
        // the weights matter here: a kernel ignoring them (or dividing by sum(w)) would fail
        const plain = sigmoidBceRef(z, y);
        expect(Math.abs(ref.acc - plain.acc)).toBeGreaterThan(1e-3);
        expect(Math.abs(ref.loss - ref.lossSum / ref.weightSum)).toBeGreaterThan(1e-3 * ref.loss);
      }
    });
  }

  it('weighted with all weights 1 is bit-identical to the unweighted pass', async () => {
    const gpu = await testGpu();
    const batch = 777;
    const z = randomArray(batch, 210, -8, 8);
    const y = binaryLabels(batch, 211);
    const plain = await lossAndGradient(gpu, z, y);
    const ones = await lossAndGradient(gpu, z, y, new Float32Array(batch).fill(1));
    expect(Array.from(ones.stats)).toEqual(Array.from(plain.stats));
    expect(Array.from(ones.dlogits)).toEqual(Array.from(plain.dlogits));
    // and the unweighted pass is still the plain batch mean
    const ref = sigmoidBceRef(z, y);
    expectClose(plain.stats, [ref.loss, ref.acc], 1e-5, 'unweighted stats');
  });

  it('weighted with every weight 0: loss 0, accuracy 0 (Keras divide_no_nan), no gradient', async () => {
    const gpu = await testGpu();
    const batch = 40;
    const z = randomArray(batch, 220, -3, 3);
    const y = binaryLabels(batch, 221);
    const got = await lossAndGradient(gpu, z, y, new Float32Array(batch));
    expect(Array.from(got.stats)).toEqual([0, 0]);
    expect(got.dlogits.every((d) => d === 0)).toBe(true);
  });

  it('weighted dlogits match central finite differences of the float64 weighted loss', async () => {
    const gpu = await testGpu();
    const n = 7;
    const z = randomArray(n, 231, -4, 4);
    const y = binaryLabels(n, 232);
    const w = Float32Array.from([0.5, 0, 3, 1, 12.5, 0.125, 2]);
    const zz = Float64Array.from(z);
    const eps = 1e-3;
    const fd = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const zp = Float64Array.from(zz);
      const zm = Float64Array.from(zz);
      zp[i] += eps;
      zm[i] -= eps;
      fd[i] = (meanBceRef(zp, y, w) - meanBceRef(zm, y, w)) / (2 * eps);
    }
    const got = await lossAndGradient(gpu, z, y, w);
    expectClose(got.dlogits, fd, 1e-4, 'weighted dlogits vs finite differences');
  });

  it('weighted loss() writes the weighted stats only, equal to the training pass', async () => {
    const gpu = await testGpu();
    const batch = 300;
    const k = await SigmoidBceKernel.create(gpu, { batch, label: 'eval', weighted: true });
    const z = randomArray(batch, 241, -3, 3);
    const y = binaryLabels(batch, 242);
    const w = mixedWeights(y);
    const logits = gpu.upload('logits', z);
    const labels = gpu.upload('labels', y);
    const weights = gpu.upload('weights', w);
    const dlogits = output(gpu, 'dlogits', batch);
    const stats = output(gpu, 'stats', 2);
    gpu.submit('bce eval weighted', k.loss({ logits, labels, stats, weights }));
    const s = await gpu.readF32(stats);
    const ref = sigmoidBceRef(z, y, w);
    expectClose(s, [ref.loss, ref.acc], 1e-5, 'weighted stats');
    expect((await gpu.readF32(dlogits)).every(Number.isNaN)).toBe(true);
    gpu.submit('bce train weighted', k.lossAndGradient({ logits, labels, dlogits, stats, weights }));
    expect(Array.from(await gpu.readF32(stats))).toEqual(Array.from(s));
    for (const b of [logits, labels, weights, dlogits, stats]) gpu.destroyBuffer(b);
    k.destroy();
  });

  it('weighted accumulate over 3 batches: totals = [sum w loss, sum w correct, sum w, count]', async () => {
    const gpu = await testGpu();
    const batch = 33;
    const k = await SigmoidBceKernel.create(gpu, { batch, label: 'acc' });
    await k.enableWeights(); // the late way: a kernel built unweighted, weights added later
    const logits = gpu.createBuffer('logits', batch * 4);
    const labels = gpu.createBuffer('labels', batch * 4);
    const weights = gpu.createBuffer('weights', batch * 4);
    const dlogits = output(gpu, 'dlogits', batch);
    const stats = output(gpu, 'stats', 2);
    const totals4 = gpu.upload('totals4', new Float32Array(4));
    const totals3 = gpu.upload('totals3', new Float32Array(3));
    const step = [
      k.lossAndGradient({ logits, labels, dlogits, stats, weights }),
      k.accumulate({ stats, totals: totals4, weighted: true }),
      k.accumulate({ stats, totals: totals3, weighted: true }),
    ];
    const sums = [0, 0, 0];
    for (let b = 0; b < 3; b++) {
      const z = randomArray(batch, 250 + b, -2, 2);
      const y = binaryLabels(batch, 260 + b);
      const w = mixedWeights(y);
      gpu.write(logits, z);
      gpu.write(labels, y);
      gpu.write(weights, w);
      gpu.submit(`bce weighted step ${b}`, step);
      const ref = sigmoidBceRef(z, y, w);
      sums[0] += ref.lossSum;
      sums[1] += ref.correct;
      sums[2] += ref.weightSum;
    }
    const t = await gpu.readF32(totals4);
    expectClose(Array.from(t.subarray(0, 3)), sums, 1e-5, 'weighted sums');
    expect(t[3]).toBe(3 * batch);
    expectClose(await gpu.readF32(totals3), sums, 1e-5, 'weighted sums in a 3-float totals');
    // Keras's epoch figures from them: loss sum(w loss) / examples, accuracy sum(w correct) / sum(w)
    expect(sums[0] / (3 * batch)).not.toBeCloseTo(sums[0] / sums[2], 3);
    for (const b of [logits, labels, weights, dlogits, stats, totals4, totals3]) gpu.destroyBuffer(b);
    k.destroy();
  });

  it('rejects a short weights buffer and weights before enableWeights(), naming them', async () => {
    const gpu = await testGpu();
    const k = await SigmoidBceKernel.create(gpu, { batch: 16, label: 'dense_2' });
    const ok = gpu.createBuffer('ok', 64);
    const short = gpu.createBuffer('short_weights', 60);
    expect(() => k.lossAndGradient({ logits: ok, labels: ok, dlogits: ok, stats: ok, weights: ok })).toThrow(/dense_2: sigmoid_bce.lossAndGradient with weights needs the weighted pipelines: create the kernel with \{ weighted: true \} or await enableWeights\(\)/);
    expect(() => k.accumulate({ stats: ok, totals: short, weighted: true })).toThrow(/accumulate with weights needs the weighted pipelines/);
    expect(() => k.lossAndGradient({ logits: ok, labels: ok, dlogits: ok, stats: ok })).not.toThrow();
    await k.enableWeights();
    expect(() => k.lossAndGradient({ logits: ok, labels: ok, dlogits: ok, stats: ok, weights: short })).toThrow(/dense_2: sigmoid_bce needs weights of at least 16 floats .*short_weights/);
    expect(() => k.loss({ logits: ok, labels: ok, stats: ok, weights: short })).toThrow(/needs weights of at least 16 floats/);
    expect(() => k.lossAndGradient({ logits: ok, labels: ok, dlogits: ok, stats: ok, weights: ok })).not.toThrow();
    gpu.destroyBuffer(ok);
    gpu.destroyBuffer(short);
    k.destroy();
  });
});
