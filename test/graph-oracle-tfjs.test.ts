// Checks the TF.js whole-graph oracle itself (test/reference/graph-oracle-tfjs.ts), so that a
// disagreement between it and the engine points at the engine.
import { describe, expect, it } from 'vitest';
import { tfCpu } from './helpers/tfjs.ts';
import { randomArray } from './helpers/random.ts';
import { expectClose, expectRelative } from './helpers/compare.ts';
import {
  BN_EPSILON, BN_MOMENTUM, ORACLE_TRAINABLE, ORACLE_WEIGHT_SHAPES, conv2dSame, depthwiseSame,
  oracleActivations, oracleBatches, oracleInit, oracleLossAndGrads, runGraphOracle, type OracleWeights,
} from './reference/graph-oracle-tfjs.ts';

interface Geo { n: number; h: number; w: number; c: number; kh: number; kw: number; stride: number }

/** Keras 'same': out = ceil(in / s), total pad max((out - 1) s + k - in, 0), floor(total / 2) on top / left. */
function same(size: number, k: number, s: number): { out: number; before: number } {
  const out = Math.ceil(size / s);
  return { out, before: Math.floor(Math.max((out - 1) * s + k - size, 0) / 2) };
}

/**
 * Naive float64 'same' convolution; `tap(c, f)` gives the kernel offset for input channel c and
 * output channel f at a tap (or -1: no connection), so one loop serves Conv2D and DepthwiseConv2D.
 */
function naive(x: Float32Array, w: Float32Array, g: Geo, outC: number, tap: (ky: number, kx: number, c: number, f: number) => number): Float64Array {
  const H = same(g.h, g.kh, g.stride);
  const W = same(g.w, g.kw, g.stride);
  const y = new Float64Array(g.n * H.out * W.out * outC);
  for (let n = 0; n < g.n; n++) for (let oy = 0; oy < H.out; oy++) for (let ox = 0; ox < W.out; ox++) for (let f = 0; f < outC; f++) {
    let s = 0;
    for (let ky = 0; ky < g.kh; ky++) {
      const iy = oy * g.stride + ky - H.before;
      if (iy < 0 || iy >= g.h) continue;
      for (let kx = 0; kx < g.kw; kx++) {
        const ix = ox * g.stride + kx - W.before;
        if (ix < 0 || ix >= g.w) continue;
        for (let c = 0; c < g.c; c++) {
          const o = tap(ky, kx, c, f);
          if (o >= 0) s += x[((n * g.h + iy) * g.w + ix) * g.c + c] * w[o];
        }
      }
    }
    y[((n * H.out + oy) * W.out + ox) * outC + f] = s;
  }
  return y;
}

const SHAPES = ORACLE_WEIGHT_SHAPES;

function channelStats(a: Float32Array, c: number): { mean: Float64Array; variance: Float64Array } {
  const rows = a.length / c;
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  for (let i = 0; i < a.length; i++) mean[i % c] += a[i] / rows;
  for (let i = 0; i < a.length; i++) variance[i % c] += (a[i] - mean[i % c]) ** 2 / rows; // biased, like Keras
  return { mean, variance };
}

function bnByHand(x: Float32Array, mean: ArrayLike<number>, variance: ArrayLike<number>, gamma: Float32Array, beta: Float32Array): Float64Array {
  const c = gamma.length;
  return Float64Array.from(x, (v, i) => gamma[i % c] * (v - mean[i % c]) / Math.sqrt(variance[i % c] + BN_EPSILON) + beta[i % c]);
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

function clone(w: OracleWeights): OracleWeights {
  return Object.fromEntries(Object.entries(w).map(([l, ws]) => [l, ws.map((a) => Float32Array.from(a))]));
}

describe('TF.js graph oracle (CPU backend)', () => {
  it('(a) tf.conv2d / tf.depthwiseConv2d as the oracle calls them: asymmetric TF same padding, depthwise channel order c * mult + m', async () => {
    const tf = await tfCpu();
    const convCases: (Geo & { f: number })[] = [
      { n: 2, h: 6, w: 7, c: 3, kh: 3, kw: 3, stride: 2, f: 5 }, // even H: pad 0 top, 1 bottom; odd W: 1 / 1
      { n: 1, h: 5, w: 4, c: 2, kh: 4, kw: 2, stride: 1, f: 3 }, // even kernels: 1 top, 2 bottom; 0 left, 1 right
      { n: 2, h: 9, w: 9, c: 3, kh: 3, kw: 3, stride: 2, f: 8 }, // the stem's geometry
      { n: 1, h: 5, w: 5, c: 16, kh: 1, kw: 1, stride: 1, f: 8 }, // proj
    ];
    convCases.forEach((g, i) => {
      const x = randomArray(g.n * g.h * g.w * g.c, 10 + i);
      const w = randomArray(g.kh * g.kw * g.c * g.f, 20 + i);
      const want = naive(x, w, g, g.f, (ky, kx, c, f) => ((ky * g.kw + kx) * g.c + c) * g.f + f);
      const got = tf.tidy(() => conv2dSame(tf, tf.tensor4d(x, [g.n, g.h, g.w, g.c]), tf.tensor4d(w, [g.kh, g.kw, g.c, g.f]), g.stride).dataSync());
      expectClose(got, want, 1e-5, `conv2d case ${i}`);
    });
    const dwCases: (Geo & { mult: number })[] = [
      { n: 2, h: 5, w: 6, c: 3, kh: 3, kw: 3, stride: 1, mult: 2 },
      { n: 1, h: 6, w: 6, c: 3, kh: 3, kw: 3, stride: 2, mult: 3 }, // even input, stride 2: asymmetric
      { n: 1, h: 5, w: 5, c: 8, kh: 3, kw: 3, stride: 1, mult: 2 }, // the dw layer's geometry
    ];
    dwCases.forEach((g, i) => {
      const x = randomArray(g.n * g.h * g.w * g.c, 30 + i);
      const w = randomArray(g.kh * g.kw * g.c * g.mult, 40 + i);
      // Output channel f = c * mult + m reads input channel c through kernel [ky, kx, c, m] only.
      const tap = (ky: number, kx: number, c: number, f: number) => (Math.floor(f / g.mult) === c ? ((ky * g.kw + kx) * g.c + c) * g.mult + (f % g.mult) : -1);
      const want = naive(x, w, g, g.c * g.mult, tap);
      const got = tf.tidy(() => depthwiseSame(tf, tf.tensor4d(x, [g.n, g.h, g.w, g.c]), tf.tensor4d(w, [g.kh, g.kw, g.c, g.mult]), g.stride).dataSync());
      expectClose(got, want, 1e-5, `depthwise case ${i}`);
      // The other plausible order (m * cin + c) must not also match, or the check proves nothing.
      const other = naive(x, w, g, g.c * g.mult, (ky, kx, c, f) => (f % g.c === c ? ((ky * g.kw + kx) * g.c + c) * g.mult + Math.floor(f / g.c) : -1));
      expect(other.some((v, j) => Math.abs(v - got[j]) > 1e-3)).toBe(true);
    });
  });

  it('(b) frozen weights come back bit for bit, trainable ones move, the caller\'s arrays are untouched; BN layers normalize as Keras does', async () => {
    const init = oracleInit(1);
    const keep = clone(init);
    const batches = oracleBatches(2, 2);
    const { losses, weights } = await runGraphOracle(init, batches);
    expect(losses).toHaveLength(2);
    for (const [l, ws] of Object.entries(keep)) ws.forEach((a, i) => expect(sameBits(init[l][i], a), `init ${l}[${i}] mutated`).toBe(true));
    for (const [l, shapes] of Object.entries(SHAPES)) {
      expect(weights[l].map((a) => a.length)).toEqual(shapes.map((s) => s.reduce((a, b) => a * b, 1)));
    }
    expect(sameBits(weights.stem_conv[0], init.stem_conv[0])).toBe(true);
    weights.stem_bn.forEach((a, i) => expect(sameBits(a, init.stem_bn[i]), `stem_bn weight ${i}`).toBe(true));
    for (const [l, i] of ORACLE_TRAINABLE) {
      // dw's bias is cancelled by dw_bn's batch mean: its gradient is only rounding, so it barely moves.
      if (l === 'dw' && i === 1) expectClose(weights.dw[1], init.dw[1], 1e-5, 'dw bias (zero true gradient)');
      else expect(sameBits(weights[l][i], init[l][i]), `${l}[${i}] should have been updated`).toBe(false);
    }
    for (const i of [2, 3]) expect(sameBits(weights.dw_bn[i], init.dw_bn[i]), `dw_bn moving statistic ${i}`).toBe(false);

    // Inference-mode BN for the frozen stem (moving statistics), batch statistics for dw_bn.
    const { outputs: o, dwMean, dwVariance } = await oracleActivations(init, batches[0].x);
    const [g, b, mm, mv] = init.stem_bn;
    expectClose(o.stem_bn, bnByHand(o.stem_conv, mm, mv, g, b), 1e-5, 'stem_bn from moving statistics');
    const s = channelStats(o.dw, 16);
    expectClose(dwMean, s.mean, 1e-5, 'dw_bn batch mean');
    expectClose(dwVariance, s.variance, 1e-5, 'dw_bn batch variance');
    expectClose(o.dw_bn, bnByHand(o.dw, s.mean, s.variance, init.dw_bn[0], init.dw_bn[1]), 1e-4, 'dw_bn from batch statistics');
    expectClose(o.stem_relu, Float64Array.from(o.stem_bn, (v) => Math.min(Math.max(v, 0), 6)), 0, 'ReLU6');
    expectClose(o.add, Float64Array.from(o.stem_relu, (v, i) => v + o.proj[i]), 1e-6, 'add');
    // The network is not degenerate: ReLU6 zeroes some values and passes others; down's ReLU leaves many alive.
    expect(o.stem_relu.some((v) => v === 0) && o.stem_relu.some((v) => v > 0)).toBe(true);
    expect(o.down.filter((v) => v > 0).length).toBeGreaterThan(o.down.length / 5);
  });

  it('(c) dw_bn moving statistics after one step = momentum * old + (1 - momentum) * batch statistics (float64, by hand)', async () => {
    const init = oracleInit(3);
    const [batch] = oracleBatches(4, 1);
    const { weights } = await runGraphOracle(init, [batch]);
    const { outputs } = await oracleActivations(init, batch.x);
    const s = channelStats(outputs.dw, 16);
    const wantMean = Float64Array.from(s.mean, (v, c) => BN_MOMENTUM * init.dw_bn[2][c] + (1 - BN_MOMENTUM) * v);
    const wantVar = Float64Array.from(s.variance, (v, c) => BN_MOMENTUM * init.dw_bn[3][c] + (1 - BN_MOMENTUM) * v);
    expectRelative(weights.dw_bn[2], wantMean, 1e-5, 1e-7, 'moving_mean');
    expectRelative(weights.dw_bn[3], wantVar, 1e-5, 1e-7, 'moving_variance');
  });

  it('(d) the loss changes over 3 steps, and decreases when one batch is repeated', async () => {
    const init = oracleInit(5);
    const { losses } = await runGraphOracle(init, oracleBatches(6, 3));
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(Math.abs(losses[1] - losses[0]) + Math.abs(losses[2] - losses[1])).toBeGreaterThan(1e-4);
    const [b] = oracleBatches(7, 1);
    const same = await runGraphOracle(init, [b, b, b]);
    expect(same.losses[2]).toBeLessThan(same.losses[0]);
    // The first step's loss is the forward before any update: the loss of the initial weights.
    expect(same.losses[0]).toBe((await oracleLossAndGrads(init, b)).loss);
  });

  it('(e) central finite differences agree with TF.js autodiff for one entry of each trainable tensor', async () => {
    const init = oracleInit(8);
    const [batch] = oracleBatches(9, 1);
    const { grads } = await oracleLossAndGrads(init, batch);
    const h = 1e-2;
    for (let k = 0; k < ORACLE_TRAINABLE.length; k++) {
      const [l, i] = ORACLE_TRAINABLE[k];
      // The entry with the largest gradient, so float32 rounding in the loss stays far below it.
      let e = 0;
      grads[k].forEach((v, j) => { if (Math.abs(v) > Math.abs(grads[k][e])) e = j; });
      const at = async (d: number) => {
        const w = clone(init);
        w[l][i][e] += d;
        return (await oracleLossAndGrads(w, batch)).loss;
      };
      const fd = ((await at(h)) - (await at(-h))) / (2 * h);
      if (l === 'dw' && i === 1) {
        // dw's bias feeds a batch-statistics BN, which subtracts it again: its true gradient is 0,
        // and autodiff's is float32 rounding; the finite difference must be flat too.
        expect(Math.abs(grads[k][e]), 'dw bias gradient').toBeLessThan(1e-5);
        expect(Math.abs(fd), 'dw bias finite difference').toBeLessThan(1e-4);
        continue;
      }
      expect(Math.abs(grads[k][e]), `${l}[${i}] gradient is not negligible`).toBeGreaterThan(1e-3);
      expectRelative([fd], [grads[k][e]], 2e-2, 2e-5, `${l}[${i}] entry ${e}: finite difference vs autodiff`);
    }
  });

  it('rejects weights of the wrong shape and batches whose x and y disagree, naming the layer and shapes', async () => {
    const init = oracleInit(1);
    const bad = clone(init);
    bad.dw[0] = new Float32Array(10);
    await expect(runGraphOracle(bad, oracleBatches(1, 1))).rejects.toThrow(/'dw' weight 0 must have shape \[3,3,8,2\]/);
    const [b] = oracleBatches(1, 1);
    await expect(runGraphOracle(init, [{ x: b.x, y: new Float32Array(3) }])).rejects.toThrow(/batch 0 .* x must be \[3, 9,9,3\]/);
  });
});
