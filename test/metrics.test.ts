import { describe, expect, it } from 'vitest';
import type { Gpu } from '../src/gpu/index.ts';
import { BinaryConfusionKernel, isEvenlyDistributed, TopKKernel } from '../src/kernels/metrics.ts';
import { aucResult, aucThresholds, meanResult, precisionResult, recallResult, resolveMetrics } from '../src/graph/metrics.ts';
import { testGpu } from './helpers/gpu.ts';
import { randomArray, rng } from './helpers/random.ts';
import { expectClose } from './helpers/compare.ts';
import { sigmoidRef } from './reference/sigmoid-bce.ts';
import { argmaxRows, aucFromCountsRef, confusionRef, mannWhitneyAuc, precisionRef, recallRef, topKRef, type ThresholdRule } from './reference/metrics.ts';

interface Batch { z: Float32Array; y: Float32Array; w?: Float32Array }

/** Runs accumulate() over the batches into one zeroed accumulator and reads it back. */
async function accumulate(gpu: Gpu, kernel: BinaryConfusionKernel | TopKKernel, floats: number, batches: Batch[]): Promise<Float32Array> {
  const counts = gpu.upload('counts', new Float32Array(floats));
  const made: GPUBuffer[] = [counts];
  for (const b of batches) {
    const logits = gpu.upload('logits', b.z);
    const labels = gpu.upload('labels', b.y);
    const weights = b.w ? gpu.upload('weights', b.w) : null;
    made.push(logits, labels, ...(weights ? [weights] : []));
    gpu.submit('metrics test', kernel.accumulate({ logits, labels, weights, counts }));
  }
  const out = await gpu.readF32(counts);
  for (const x of made) gpu.destroyBuffer(x);
  return out;
}

async function confusion(gpu: Gpu, thresholds: number[], batches: Batch[]): Promise<Float32Array> {
  const k = await BinaryConfusionKernel.create(gpu, { batch: batches[0].z.length, thresholds, label: 'test' });
  const out = await accumulate(gpu, k, k.floats, batches);
  k.destroy();
  return out;
}

async function topK(gpu: Gpu, shape: { classes: number; k: number; labels: 'onehot' | 'sparse' }, batches: Batch[]): Promise<Float32Array> {
  const batch = shape.labels === 'sparse' ? batches[0].y.length : batches[0].y.length / shape.classes;
  const k = await TopKKernel.create(gpu, { batch, ...shape, label: 'test' });
  const out = await accumulate(gpu, k, 2, batches);
  k.destroy();
  return out;
}

function binaryLabels(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() < 0.4 ? 0 : 1));
}

/**
 * Logits whose sigmoid stays at least 1e-4 (in p * 199) away from every AUC bucket edge and from
 * 0.5, so float32 (GPU) and float64 (reference) put each example on the same side.
 */
function safeLogits(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    for (;;) {
      const z = Math.fround(-5 + 10 * r());
      const x = sigmoidRef(z) * 199;
      if (Math.abs(x - Math.round(x)) > 1e-3 && Math.abs(sigmoidRef(z) - 0.5) > 1e-5) { out[i] = z; break; }
    }
  }
  return out;
}

const probs = (z: Float32Array) => Array.from(z, sigmoidRef);
const AUC_RULE: ThresholdRule = { kind: 'buckets', count: 200, epsilon: true };
const HALF_RULE: ThresholdRule = { kind: 'compare', thresholds: [0.5] };

function sumBatches(batches: Batch[], rule: ThresholdRule): Float64Array {
  let total: Float64Array | null = null;
  for (const b of batches) {
    const c = confusionRef(probs(b.z), b.y, b.w ?? null, rule);
    total = total ? total.map((v, i) => v + c[i]) : c;
  }
  return total!;
}

describe('BinaryConfusionKernel', () => {
  it("detects Keras's evenly spaced thresholds as Keras does", () => {
    expect(isEvenlyDistributed(aucThresholds())).toBe(true);
    expect(isEvenlyDistributed(aucThresholds(3))).toBe(true);
    expect(isEvenlyDistributed([0.5])).toBe(false);
    expect(isEvenlyDistributed([0, 0.5])).toBe(false);
    expect(isEvenlyDistributed([0.1, 0.5, 0.9])).toBe(false);
  });

  for (const batch of [1, 7, 256, 1000]) {
    it(`AUC counts over 3 batches match float64 (batch ${batch}, no weights)`, async () => {
      const gpu = await testGpu();
      const batches = [0, 1, 2].map((s) => ({ z: safeLogits(batch, 10 * batch + s), y: binaryLabels(batch, 20 * batch + s) }));
      const got = await confusion(gpu, aucThresholds(), batches);
      const ref = sumBatches(batches, AUC_RULE);
      expect(Array.from(got)).toEqual(Array.from(ref)); // integer counts: exact
      expectClose([aucResult(got)], [aucFromCountsRef(ref)], 1e-6, 'auc');
    });
  }

  it('weighted AUC, precision and recall counts over batches match float64 (weights 0, fractional, large)', async () => {
    const gpu = await testGpu();
    const batch = 300;
    const batches = [0, 1, 2].map((s) => {
      const w = randomArray(batch, 50 + s, 0, 3);
      for (let i = 0; i < batch; i += 7) w[i] = 0;
      for (let i = 3; i < batch; i += 41) w[i] = 1e6;
      return { z: safeLogits(batch, 30 + s), y: binaryLabels(batch, 40 + s), w };
    });
    const got = await confusion(gpu, aucThresholds(), batches);
    const ref = sumBatches(batches, AUC_RULE);
    // relative to the large totals (f32 sums of ~1e7)
    const scale = Math.max(...ref);
    expectClose(Array.from(got, (v) => v / scale), Array.from(ref, (v) => v / scale), 1e-6, 'weighted counts / max');
    expectClose([aucResult(got)], [aucFromCountsRef(ref)], 1e-5, 'weighted auc');
    const half = await confusion(gpu, [0.5], batches);
    const refHalf = sumBatches(batches, HALF_RULE);
    expectClose(Array.from(half, (v) => v / scale), Array.from(refHalf, (v) => v / scale), 1e-6, 'counts at 0.5');
    expectClose([precisionResult(half), recallResult(half)], [precisionRef(refHalf), recallRef(refHalf)], 1e-5, 'precision, recall');
  });

  it('a weight of 0 masks the example exactly; a large weight counts it that many times', async () => {
    const gpu = await testGpu();
    const z = Float32Array.from([2, -1, 0.7, -3]);
    const y = Float32Array.from([1, 0, 0, 1]);
    const masked = await confusion(gpu, [0.5], [{ z, y, w: Float32Array.from([1, 1, 0, 1]) }]);
    // the same as never seeing example 2 (a would-be false positive)
    const without = await confusion(gpu, [0.5], [{ z: Float32Array.from([2, -1, -3]), y: Float32Array.from([1, 0, 1]) }]);
    expect(Array.from(masked)).toEqual([1, 0, 1, 1]);
    expect(Array.from(without)).toEqual(Array.from(masked));
    const heavy = await confusion(gpu, [0.5], [{ z, y, w: Float32Array.from([1, 1, 1e7, 1]) }]);
    expect(Array.from(heavy)).toEqual([1, 1e7, 1, 1]);
  });

  it('predictions exactly at a threshold are negative (p > t), and p = 0 / 1 land in the end thresholds', async () => {
    const gpu = await testGpu();
    // sigmoid(0) = 0.5 exactly; sigmoid(+-200) = 1 and 0 exactly in float32
    const z = Float32Array.from([0, 0, 200, -200]);
    const y = Float32Array.from([1, 0, 1, 0]);
    const half = await confusion(gpu, [0.5], [{ z, y }]);
    // 0.5 is not > 0.5: the positive at 0.5 is a false negative, the negative a true negative
    expect(Array.from(half)).toEqual([1, 0, 2, 1]);
    // a rule of p >= t would have called both 0.5s positive: it must not match
    const wrong = confusionRef([0.5, 0.5, 1, 0], y, null, { kind: 'compare', thresholds: [0.5 - 1e-12] });
    expect(Array.from(half)).not.toEqual(Array.from(wrong));

    const auc = await confusion(gpu, aucThresholds(), [{ z, y }]);
    expect(Array.from(auc)).toEqual(Array.from(confusionRef([0.5, 0.5, 1, 0], y, null, AUC_RULE)));
    // threshold 0 (-1e-7): everything positive, p = 0 included; the last (1 + 1e-7): nothing
    expect(Array.from(auc.subarray(0, 4))).toEqual([2, 2, 0, 0]);
    expect(Array.from(auc.subarray(4 * 199, 4 * 200))).toEqual([0, 0, 2, 2]);
    // threshold 198/199 < 1: p = 1 still positive there, p = 0.5 not
    expect(Array.from(auc.subarray(4 * 198, 4 * 199))).toEqual([1, 0, 2, 1]);
    // p = 0.5: 0.5 * 199 = 99.5, bucket 99, so positive at j <= 99 and negative from j = 100
    expect(Array.from(auc.subarray(4 * 99, 4 * 100))).toEqual([2, 1, 1, 0]);
    expect(Array.from(auc.subarray(4 * 100, 4 * 101))).toEqual([1, 0, 2, 1]);
  });

  it("Keras's docstring cases by hand: AUC(num_thresholds=3) = 0.75 (weighted 1.0), Precision / Recall = 2/3 (weighted 1.0)", async () => {
    const gpu = await testGpu();
    const logit = (p: number) => Math.log(p / (1 - p));
    // y_true [0, 0, 1, 1], y_pred [0, 0.5, 0.3, 0.9]; thresholds [-1e-7, 0.5, 1 + 1e-7]
    const z = Float32Array.from([-200, 0, logit(0.3), logit(0.9)]);
    const y = Float32Array.from([0, 0, 1, 1]);
    const c = await confusion(gpu, aucThresholds(3), [{ z, y }]);
    // tp = [2, 1, 0], fp = [2, 0, 0], tn = [0, 2, 2], fn = [0, 1, 2]
    expect(Array.from(c)).toEqual([2, 2, 0, 0, 1, 0, 2, 1, 0, 0, 2, 2]);
    // recall [1, 0.5, 0], fpr [1, 0, 0]: (1 - 0) (1 + 0.5) / 2 + (0 - 0) (0.5 + 0) / 2 = 0.75
    expect(aucResult(c)).toBeCloseTo(0.75, 12);
    const cw = await confusion(gpu, aucThresholds(3), [{ z, y, w: Float32Array.from([1, 0, 0, 1]) }]);
    expect(aucResult(cw)).toBeCloseTo(1.0, 12);

    // y_true [0, 1, 1, 1], y_pred [1, 0, 1, 1]: tp 2, fp 1, fn 1
    const zp = Float32Array.from([200, -200, 200, 200]);
    const yp = Float32Array.from([0, 1, 1, 1]);
    const pr = await confusion(gpu, [0.5], [{ z: zp, y: yp }]);
    expect(precisionResult(pr)).toBeCloseTo(2 / 3, 7);
    expect(recallResult(pr)).toBeCloseTo(2 / 3, 7);
    const prw = await confusion(gpu, [0.5], [{ z: zp, y: yp, w: Float32Array.from([0, 0, 1, 0]) }]);
    expect(precisionResult(prw)).toBe(1);
    expect(recallResult(prw)).toBe(1);

    // 200 thresholds, y [1, 0, 1, 0], p [0.9, 0.2, 0.6, 0.7]: pairs (0.9 > 0.2, 0.9 > 0.7,
    // 0.6 > 0.2, 0.6 < 0.7), each p in its own bucket, so the trapezoids give exactly 3/4
    const c200 = await confusion(gpu, aucThresholds(), [{ z: Float32Array.from([0.9, 0.2, 0.6, 0.7].map(logit)), y: Float32Array.from([1, 0, 1, 0]) }]);
    expect(aucResult(c200)).toBeCloseTo(0.75, 6);
  });

  it('all-one-class labels: division by zero gives 0 (Keras divide_no_nan)', async () => {
    const gpu = await testGpu();
    const z = safeLogits(20, 5);
    const ones = await confusion(gpu, aucThresholds(), [{ z, y: new Float32Array(20).fill(1) }]);
    expect(aucResult(ones)).toBe(0); // no negatives: fpr = 0 everywhere
    const zeros = await confusion(gpu, aucThresholds(), [{ z, y: new Float32Array(20) }]);
    expect(aucResult(zeros)).toBe(0); // no positives: recall = 0 everywhere
    const half = await confusion(gpu, [0.5], [{ z, y: new Float32Array(20) }]);
    expect(recallResult(half)).toBe(0);
    const none = await confusion(gpu, [0.5], [{ z: new Float32Array(20).fill(-3), y: new Float32Array(20).fill(1) }]);
    expect(precisionResult(none)).toBe(0); // nothing predicted positive
    const nothing = await confusion(gpu, aucThresholds(), [{ z, y: new Float32Array(20), w: new Float32Array(20) }]);
    expect(aucResult(nothing)).toBe(0);
  });

  it('with many thresholds the AUC approaches the exact Mann-Whitney AUC', async () => {
    const gpu = await testGpu();
    const n = 400;
    const y = binaryLabels(n, 77);
    const r = rng(78);
    // informative but overlapping scores
    const z = Float32Array.from(y, (v) => Math.fround((v ? 0.8 : -0.8) + 2 * (r() - 0.5) * 2));
    const p = probs(z);
    const exact = mannWhitneyAuc(p, y);
    // reference alone: the interpolated AUC converges as the thresholds get finer
    const err = (t: number) => Math.abs(aucFromCountsRef(confusionRef(p, y, null, { kind: 'buckets', count: t, epsilon: true })) - exact);
    expect(err(10001)).toBeLessThan(2e-4);
    expect(err(10001)).toBeLessThan(err(20));
    // the GPU with 2001 thresholds
    const got = await confusion(gpu, aucThresholds(2001), [{ z, y }]);
    expect(Math.abs(aucResult(got) - exact)).toBeLessThan(2e-3);
    expect(Math.abs(aucResult(got) - exact)).toBeLessThan(err(10) / 2);
  });

  it('rejects a bad batch, thresholds or buffer with an actionable error', async () => {
    const gpu = await testGpu();
    await expect(BinaryConfusionKernel.create(gpu, { batch: 0, thresholds: [0.5] })).rejects.toThrow(/batch that is an integer in \[1, 2\^24\], got 0/);
    await expect(BinaryConfusionKernel.create(gpu, { batch: 2, thresholds: [] })).rejects.toThrow(/between 1 and/);
    await expect(BinaryConfusionKernel.create(gpu, { batch: 2, thresholds: [Number.NaN] })).rejects.toThrow(/threshold 0 is NaN/);
    const k = await BinaryConfusionKernel.create(gpu, { batch: 8, thresholds: [0.5], label: 'out' });
    const small = gpu.createBuffer('small', 16);
    expect(() => k.accumulate({ logits: small, labels: small, weights: null, counts: small })).toThrow(/logits of at least 8 floats/);
    gpu.destroyBuffer(small);
    k.destroy();
  });
});

/** Logits on a grid of 1/4 in [-3, 3]: exact ties, and distinct values far apart in float32. */
function gridLogits(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => Math.round((r() * 6 - 3) * 4) / 4);
}

function oneHot(targets: number[], classes: number): Float32Array {
  const y = new Float32Array(targets.length * classes);
  targets.forEach((t, i) => { y[i * classes + t] = 1; });
  return y;
}

describe('TopKKernel', () => {
  for (const [batch, classes] of [[1, 10], [5, 3], [300, 10], [257, 7]] as const) {
    for (const labels of ['onehot', 'sparse'] as const) {
      it(`matches in_top_k over 2 batches (batch ${batch}, ${classes} classes, ${labels}, k 5, weighted and not)`, async () => {
        const gpu = await testGpu();
        const batches: { z: Float32Array; t: number[]; w: Float32Array }[] = [0, 1].map((s) => {
          const r = rng(batch + s);
          return {
            z: gridLogits(batch * classes, 100 * batch + s),
            t: Array.from({ length: batch }, () => Math.floor(r() * classes)),
            w: randomArray(batch, 7 + s, 0, 2).map((v, i) => (i % 5 === 0 ? 0 : v)),
          };
        });
        const y = (t: number[]) => (labels === 'sparse' ? Float32Array.from(t) : oneHot(t, classes));
        for (const weighted of [false, true]) {
          const got = await topK(gpu, { classes, k: 5, labels }, batches.map((b) => ({ z: b.z, y: y(b.t), ...(weighted ? { w: b.w } : {}) })));
          const refs = batches.map((b) => topKRef(b.z, classes, b.t, 5, weighted ? b.w : null));
          const ref = [refs[0][0] + refs[1][0], refs[0][1] + refs[1][1]];
          expectClose(got, ref, 1e-5, `${weighted ? 'weighted ' : ''}[hits, weight sum]`);
          if (!weighted) expect(got[1]).toBe(2 * batch);
        }
      });
    }
  }

  it('ties with the target count as in the top k (TF in_top_k), by probability', async () => {
    const gpu = await testGpu();
    const classes = 7;
    // row 0: target (class 6) tied with 5 others below one larger: 1 larger < k = 2, a hit
    //        (a rule that breaks ties by index would rank class 6 last and miss)
    // row 1: two classes larger than the target: a miss at k = 2
    // row 2: probabilities of classes 1..6 all underflow to 0 in float32: target 6 ties with
    //        them and only one class is larger, a hit, although its logit is the smallest
    const z = Float32Array.from([
      2, 1, 1, 1, 1, 1, 1,
      3, 2, 1, 1, 1, 1, 1,
      0, -200, -300, -400, -500, -600, -700,
    ]);
    const t = [6, 6, 6];
    const got = await topK(gpu, { classes, k: 2, labels: 'sparse' }, [{ z, y: Float32Array.from(t) }]);
    expect(Array.from(got)).toEqual([2, 3]);
    expect(topKRef(z, classes, t, 2, null)).toEqual([2, 3]);
    const oh = await topK(gpu, { classes, k: 2, labels: 'onehot' }, [{ z, y: oneHot(t, classes) }]);
    expect(Array.from(oh)).toEqual([2, 3]);
    // ranking logits instead of probabilities would miss row 2
    const byLogit = [0, 1, 2].filter((r) => Array.from(z.subarray(r * 7, r * 7 + 7)).filter((v) => v > z[r * 7 + 6]).length < 2).length;
    expect(byLogit).toBe(1);
  });

  it('k >= classes always hits (TF backend); non-finite rows and out-of-range labels miss', async () => {
    const gpu = await testGpu();
    const classes = 3;
    const z = Float32Array.from([5, 0, -5, 1, 2, 3, 0, 0, 0, Number.NaN, 1, 2, Number.POSITIVE_INFINITY, 0, 0, 1, 2, 3]);
    const t = [2, 0, 1, 1, 1, 3];
    const got = await topK(gpu, { classes, k: 5, labels: 'sparse' }, [{ z, y: Float32Array.from(t) }]);
    // rows 0-2 hit; row 3 has NaN, row 4 +inf (softmax NaN), row 5 label 3 is not a class
    expect(Array.from(got)).toEqual([3, 6]);
    const oh = await topK(gpu, { classes, k: 3, labels: 'onehot' }, [{ z: z.subarray(0, 9), y: oneHot([2, 0, 1], classes) }]);
    expect(Array.from(oh)).toEqual([3, 3]);
    // fractional sparse labels truncate as Keras's int32 cast does: 1.7 -> class 1
    const trunc = await topK(gpu, { classes, k: 1, labels: 'sparse' }, [{ z: Float32Array.from([0, 9, 1]), y: Float32Array.from([1.7]) }]);
    expect(Array.from(trunc)).toEqual([1, 1]);
  });

  it("Keras's docstring case by hand: TopKCategoricalAccuracy(k=1) = 0.5, weighted [0.7, 0.3] = 0.3", async () => {
    const gpu = await testGpu();
    // y_pred [[0.1, 0.9, 0.8], [0.05, 0.95, 0]] given as logits log(p) (0 -> -100)
    const z = Float32Array.from([0.1, 0.9, 0.8, 0.05, 0.95, 1e-44].map((p) => Math.max(-100, Math.log(p))));
    const y = Float32Array.from([0, 0, 1, 0, 1, 0]);
    const c = await topK(gpu, { classes: 3, k: 1, labels: 'onehot' }, [{ z, y }]);
    expect(meanResult(c)).toBe(0.5);
    const cw = await topK(gpu, { classes: 3, k: 1, labels: 'onehot' }, [{ z, y, w: Float32Array.from([0.7, 0.3]) }]);
    expect(meanResult(cw)).toBeCloseTo(0.3, 7);
    const sparse = await topK(gpu, { classes: 3, k: 1, labels: 'sparse' }, [{ z, y: Float32Array.from([2, 1]), w: Float32Array.from([0.7, 0.3]) }]);
    expect(meanResult(sparse)).toBeCloseTo(0.3, 7);
    expect(meanResult(new Float32Array([0, 0]))).toBe(0);
    // one-hot labels are argmax'ed (first maximum)
    expect(argmaxRows([0, 1, 1, 0.2, 0.1, 0], 3)).toEqual([1, 0]);
  });
});

describe('resolveMetrics', () => {
  it('maps Keras names and aliases to log keys and skips the accuracies', () => {
    const bin = resolveMetrics(['acc', 'AUC', 'precision', 'binary_accuracy', 'Recall', 'accuracy'], 'binary_crossentropy', 1);
    expect(bin.map((m) => [m.name, m.floats])).toEqual([['auc', 800], ['precision', 4], ['recall', 4]]);
    expect(resolveMetrics(['top_k_categorical_accuracy', 'categorical_accuracy'], 'categorical_crossentropy', 10).map((m) => [m.name, m.floats])).toEqual([['top_k_categorical_accuracy', 2]]);
    expect(resolveMetrics(['SparseTopKCategoricalAccuracy'], 'sparse_categorical_crossentropy', 3).map((m) => m.name)).toEqual(['sparse_top_k_categorical_accuracy']);
    expect(resolveMetrics([], 'binary_crossentropy', 1)).toEqual([]);
  });

  it('rejects unknown names and names that do not fit the loss, listing the valid ones', () => {
    expect(() => resolveMetrics(['f1'], 'binary_crossentropy', 1)).toThrow(/metric "f1" is not supported; with binary_crossentropy use 'acc', 'accuracy', 'binary_accuracy', 'BinaryAccuracy', 'auc', 'AUC', 'precision'/);
    expect(() => resolveMetrics(['auc'], 'categorical_crossentropy', 5)).toThrow(/'auc' needs loss binary_crossentropy .*use .*'top_k_categorical_accuracy'/);
    expect(() => resolveMetrics(['top_k_categorical_accuracy'], 'sparse_categorical_crossentropy', 5)).toThrow(/needs loss categorical_crossentropy.*'sparse_top_k_categorical_accuracy'/);
    expect(() => resolveMetrics(['binary_accuracy'], 'categorical_crossentropy', 5)).toThrow(/not supported; with categorical_crossentropy/);
    expect(() => resolveMetrics(['auc', 'AUC'], 'binary_crossentropy', 1)).toThrow(/twice/);
  });

  it('specs build working kernels whose result() is the Keras value', async () => {
    const gpu = await testGpu();
    const [auc, precision] = resolveMetrics(['auc', 'precision'], 'binary_crossentropy', 1);
    const z = Float32Array.from([-200, 0, Math.log(0.3 / 0.7), Math.log(9)]);
    const y = Float32Array.from([0, 0, 1, 1]);
    const run = async (spec: typeof auc, zz: Float32Array, yy: Float32Array) => {
      const k = await spec.createKernel(gpu, 4, 'model');
      const logits = gpu.upload('logits', zz);
      const labels = gpu.upload('labels', yy);
      const counts = gpu.upload('counts', new Float32Array(spec.floats));
      gpu.submit('spec', k.accumulate({ logits, labels, weights: null, counts }));
      const value = spec.result(await gpu.readF32(counts));
      for (const b of [logits, labels, counts]) gpu.destroyBuffer(b);
      k.destroy();
      return value;
    };
    // 200 thresholds: p 0.3 (bucket 59) and 0.9 (bucket 179) vs 0 and 0.5 (bucket 99): the
    // positive 0.3 ranks below the negative 0.5, so the AUC is 3/4 as with 3 thresholds
    expect(await run(auc, z, y)).toBeCloseTo(0.75, 6);
    expect(await run(precision, z, y)).toBe(1); // only 0.9 is > 0.5, and it is a positive
    const [top] = resolveMetrics(['sparse_top_k_categorical_accuracy'], 'sparse_categorical_crossentropy', 6);
    const zz = Float32Array.from([0, 1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
    expect(await run(top, zz, Float32Array.from([0, 0, 3, 1]))).toBe(0.75); // row 0: class 0 is 6th of 6
  });
});
