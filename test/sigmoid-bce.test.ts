import { describe, expect, it } from 'vitest';
import { SigmoidBceKernel } from '../src/kernels/sigmoid-bce.ts';
import type { Gpu } from '../src/gpu/index.ts';
import { output, testGpu } from './helpers/gpu.ts';
import { randomArray, rng } from './helpers/random.ts';
import { expectClose, expectRelative } from './helpers/compare.ts';
import { meanBceRef, sigmoidBceRef } from './reference/sigmoid-bce.ts';

/** Labels in {0, 1}. */
function binaryLabels(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() < 0.5 ? 0 : 1));
}

/** One lossAndGradient on poisoned outputs; returns what the GPU wrote. */
async function lossAndGradient(gpu: Gpu, z: Float32Array, y: Float32Array) {
  const k = await SigmoidBceKernel.create(gpu, { batch: z.length, label: 'out' });
  const logits = gpu.upload('logits', z);
  const labels = gpu.upload('labels', y);
  const dlogits = output(gpu, 'dlogits', z.length);
  const stats = output(gpu, 'stats', 2);
  gpu.submit('bce test', k.lossAndGradient({ logits, labels, dlogits, stats }));
  const result = { dlogits: await gpu.readF32(dlogits), stats: await gpu.readF32(stats) };
  for (const b of [logits, labels, dlogits, stats]) gpu.destroyBuffer(b);
  k.destroy();
  return result;
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
});
