// BatchNormalization in inference mode with gamma / beta training (Keras's base(x,
// training=False) after unfreezing the top of a base): the kernel's inferAffineBackward against
// float64, the layer's gradients against finite differences, and a small model trained two steps
// against a TF.js autodiff oracle.
import { describe, expect, it } from 'vitest';
import { BatchNormKernel, type BatchNormShape } from '../src/kernels/batchnorm.ts';
import { BatchNormalization, setInferenceMode } from '../src/graph/layers/batchnorm.ts';
import { Conv2D, Dense, Flatten, Input, Model, ReLU, SGD, type Layer } from '../src/index.ts';
import type { ProgramContext } from '../src/graph/layer.ts';
import type { Gpu } from '../src/gpu/index.ts';
import type * as TF from '@tensorflow/tfjs';
import { output, testGpu } from './helpers/gpu.ts';
import { randomArray } from './helpers/random.ts';
import { expectClose } from './helpers/compare.ts';
import { tfCpu } from './helpers/tfjs.ts';
import { bnInferAffineBackwardRef, bnInferBackwardRef, bnInferForwardRef, bnTrainBackwardRef, type BnDims } from './reference/batchnorm.ts';

interface Inputs { x: Float32Array; dy: Float32Array; gamma: Float32Array | null; movingMean: Float32Array; movingVar: Float32Array }

function inputs(rows: number, channels: number, seed: number, scale = true): Inputs {
  const n = rows * channels;
  return {
    x: randomArray(n, seed, -1, 2),
    dy: randomArray(n, seed + 1),
    gamma: scale ? randomArray(channels, seed + 2, 0.5, 2) : null,
    movingMean: randomArray(channels, seed + 4, -0.5, 0.5),
    movingVar: randomArray(channels, seed + 5, 0.2, 3),
  };
}

/** inferAffineBackward (outputs poisoned first) and, for comparison, the plain inferBackward. */
async function runKernel(gpu: Gpu, shape: BatchNormShape, inp: Inputs, want: { dx: boolean; dgamma: boolean; dbeta: boolean }) {
  const k = await BatchNormKernel.create(gpu, { label: 'bn_inf_mode', ...shape });
  const n = shape.rows * shape.channels;
  const C = shape.channels;
  const X = gpu.upload('x', inp.x);
  const DY = gpu.upload('dy', inp.dy);
  const G = inp.gamma ? gpu.upload('gamma', inp.gamma) : undefined;
  const MM = gpu.upload('movingMean', inp.movingMean);
  const MV = gpu.upload('movingVar', inp.movingVar);
  const dx = want.dx ? output(gpu, 'dx', n) : undefined;
  const dgamma = want.dgamma ? output(gpu, 'dgamma', C) : undefined;
  const dbeta = want.dbeta ? output(gpu, 'dbeta', C) : undefined;
  const dxPlain = output(gpu, 'dx plain', n);
  gpu.submit('inference-mode backward', [
    k.inferAffineBackward({ x: X, dy: DY, gamma: G, movingMean: MM, movingVar: MV, dx, dgamma, dbeta }),
    k.inferBackward({ dy: DY, gamma: G, movingVar: MV, dx: dxPlain }),
  ]);
  const read = (b: GPUBuffer | undefined) => (b ? gpu.readF32(b) : Promise.resolve(undefined));
  const r = {
    dx: await read(dx), dgamma: await read(dgamma), dbeta: await read(dbeta), dxPlain: await gpu.readF32(dxPlain),
    movingMean: await gpu.readF32(MM), movingVar: await gpu.readF32(MV),
  };
  for (const b of [X, DY, G, MM, MV, dx, dgamma, dbeta, dxPlain]) if (b) gpu.destroyBuffer(b);
  k.destroy();
  return r;
}

/** Sums over the rows compared relative to their natural scale, sqrt(rows). */
function expectSums(actual: Float32Array, expected: Float64Array, rows: number, what: string) {
  const s = Math.sqrt(rows);
  expectClose(actual.map((v) => v / s), expected.map((v) => v / s), 1e-5, what);
}

function withLimits(gpu: Gpu, overrides: Record<string, number>): Gpu {
  const limits: Record<string, number> = {};
  for (const k in gpu.limits) limits[k] = (gpu.limits as unknown as Record<string, number>)[k];
  return Object.create(gpu, { limits: { value: { ...limits, ...overrides } } }) as Gpu;
}

describe('BatchNormalization inference mode: kernel', () => {
  it('inferAffineBackward matches float64 (odd rows and channels, vec4, several row chunks, 2-D grids)', async () => {
    const base = await testGpu();
    // (7,3) one workgroup; (129,5) and (301,33) rows not a multiple of 128, a partial channel
    // tile; (4551,3) several row chunks; (1000,64) vec4; (50,8) vec4 small; (1,6) one row.
    const cases: [number, number, Gpu][] = [[7, 3, base], [129, 5, base], [301, 33, base], [3 * 37 * 41, 3, base], [1000, 64, base], [50, 8, base], [1, 6, base],
      [3 * 37 * 41, 3, withLimits(base, { maxComputeWorkgroupsPerDimension: 16 })]];
    for (const [rows, channels, gpu] of cases) {
      const inp = inputs(rows, channels, 3 * rows + channels);
      const r = await runKernel(gpu, { rows, channels }, inp, { dx: true, dgamma: true, dbeta: true });
      const d: BnDims = { rows, channels, epsilon: 1e-3 };
      const ref = bnInferAffineBackwardRef(inp.x, inp.dy, d, inp.gamma, inp.movingMean, inp.movingVar);
      const what = `rows=${rows} C=${channels}`;
      expectClose(r.dx!, ref.dx, 1e-6, `${what} dx`);
      expectSums(r.dgamma!, ref.dgamma, rows, `${what} dgamma`);
      expectSums(r.dbeta!, ref.dbeta, rows, `${what} dbeta`);
      // dx is the plain inference backward's, bit for bit; the moving statistics are untouched
      expect(Array.from(r.dx!), `${what} dx vs inferBackward`).toEqual(Array.from(r.dxPlain));
      expect(Array.from(r.movingMean)).toEqual(Array.from(inp.movingMean));
      expect(Array.from(r.movingVar)).toEqual(Array.from(inp.movingVar));
      if (rows > 1) {
        // the test can tell: dgamma around the batch mean (training's rule) is far from this one
        const wrong = bnTrainBackwardRef(inp.x, inp.dy, d, inp.gamma).dgamma;
        const gap = Math.max(...Array.from(wrong, (v, c) => Math.abs(v - ref.dgamma[c]) / Math.sqrt(rows)));
        expect(gap, `${what}: batch-mean dgamma differs`).toBeGreaterThan(1e-3);
      }
    }
  });

  it('center / scale false and omitted outputs: only what is given is written', async () => {
    const gpu = await testGpu();
    for (const [rows, channels] of [[129, 5], [200, 12]] as [number, number][]) {
      for (const [center, scale] of [[true, true], [false, true], [true, false]]) {
        for (const withDx of [true, false]) {
          const inp = inputs(rows, channels, rows + channels + (center ? 1 : 0) + (scale ? 2 : 0), scale);
          const r = await runKernel(gpu, { rows, channels, center, scale }, inp, { dx: withDx, dgamma: scale, dbeta: center });
          const ref = bnInferAffineBackwardRef(inp.x, inp.dy, { rows, channels, epsilon: 1e-3 }, inp.gamma, inp.movingMean, inp.movingVar);
          const what = `rows=${rows} C=${channels} center=${center} scale=${scale} dx=${withDx}`;
          if (withDx) expectClose(r.dx!, ref.dx, 1e-6, `${what} dx`);
          else expect(r.dx).toBeUndefined();
          if (scale) expectSums(r.dgamma!, ref.dgamma, rows, `${what} dgamma`);
          if (center) expectSums(r.dbeta!, ref.dbeta, rows, `${what} dbeta`);
          expectClose(r.dxPlain, bnInferBackwardRef(inp.dy, { rows, channels, epsilon: 1e-3 }, inp.gamma, inp.movingVar), 1e-6, `${what} plain dx`);
        }
      }
    }
  });

  it('rejects outputs the layer does not have, or none at all', async () => {
    const gpu = await testGpu();
    const buf = (label: string, floats: number) => gpu.createBuffer(label, floats * 4);
    const k = await BatchNormKernel.create(gpu, { rows: 4, channels: 2, center: false, label: 'bn_x' });
    const [x, dy, dx] = [buf('x', 8), buf('dy', 8), buf('dx', 8)];
    const [gamma, mm, mv, dbeta] = [buf('g', 2), buf('mm', 2), buf('mv', 2), buf('db', 2)];
    expect(() => k.inferAffineBackward({ x, dy, gamma, movingMean: mm, movingVar: mv })).toThrow(/bn_x batchnorm.inferAffineBackward.*no output given/);
    expect(() => k.inferAffineBackward({ x, dy, gamma, movingMean: mm, movingVar: mv, dx, dbeta })).toThrow(/'dbeta' given but the layer has center=false/);
    expect(() => k.inferAffineBackward({ x, dy, movingMean: mm, movingVar: mv, dx })).toThrow(/'gamma' is required \(scale=true\)/);
    expect(() => k.inferAffineBackward({ x, dy: x, gamma, movingMean: mm, movingVar: mv, dx })).toThrow(/'x' and 'dy' are the same buffer/);
    expect(() => k.inferAffineBackward({ x: buf('short', 6), dy, gamma, movingMean: mm, movingVar: mv, dx })).toThrow(/buffer 'x' \(short\) is 24 bytes, needs 32/);
    k.destroy();
  });
});

const CTX = (gpu: Gpu, shape: number[], batch: number, paramGrads: boolean, training = true): ProgramContext => ({
  gpu, batch, inShapes: [shape], outShape: shape, training, activation: { kind: 'linear' }, folded: false,
  inputGrads: [true], paramGrads, seed: 0, label: 'bn_layer_test',
});

describe('BatchNormalization inference mode: layer', () => {
  it('flags: same program in training and evaluation, no fold while trainable, x read only when gradients are wanted', () => {
    const bn = new BatchNormalization({ inferenceMode: true });
    bn.apply(Input({ shape: [3, 4] }));
    const ctx = { training: true, paramGrads: true, activation: { kind: 'linear' as const }, inputGrads: [true] };
    expect(bn.trainingDependent).toBe(false);
    expect(bn.canFold).toBe(false);
    expect(bn.backwardReads(ctx).inputs).toBe(true);
    expect(bn.backwardReads({ ...ctx, paramGrads: false }).inputs).toBe(false);
    bn.trainable = false;
    expect(bn.canFold).toBe(true);
    expect(bn.backwardReads(ctx).inputs).toBe(false);
    const plain = new BatchNormalization();
    expect(plain.inferenceMode).toBe(false);
    expect(plain.trainingDependent).toBe(true);
    expect(() => new BatchNormalization({ inferenceMode: 'yes' as unknown as boolean, name: 'bn_q' })).toThrow(/bn_q: inferenceMode must be true or false/);
  });

  it('setInferenceMode sets every BatchNormalization among the layers and nothing else', () => {
    const input = Input({ shape: [6, 6, 3] });
    let x = new Conv2D({ filters: 4, kernelSize: 3, name: 'c1' }).apply(input);
    x = new BatchNormalization({ name: 'b1' }).apply(x);
    x = new ReLU().apply(x);
    x = new BatchNormalization({ name: 'b2' }).apply(x);
    const m = new Model({ inputs: input, outputs: x });
    const bns = () => m.layers.filter((l): l is BatchNormalization => l instanceof BatchNormalization).map((l) => l.inferenceMode);
    expect(setInferenceMode(m.layers, true)).toBe(2);
    expect(bns()).toEqual([true, true]);
    expect(setInferenceMode(m.layers.slice(0, 3), false)).toBe(1);
    expect(bns()).toEqual([false, true]);
    expect(() => setInferenceMode(m.layers, 1 as unknown as boolean)).toThrow(/setInferenceMode: 'on' must be true or false/);
  });

  it('gamma / beta gradients through the layer match central finite differences of its forward (moving statistics unchanged)', async () => {
    const gpu = await testGpu();
    for (const [h, w, C, center, scale] of [[5, 7, 3, true, true], [4, 3, 8, true, true], [3, 3, 5, false, true], [6, 2, 4, true, false]] as [number, number, number, boolean, boolean][]) {
      const batch = 2;
      const shape = [h, w, C];
      const bn = new BatchNormalization({ inferenceMode: true, center, scale });
      bn.apply(Input({ shape }));
      const n = batch * h * w * C;
      const seed = h * 100 + w * 10 + C;
      const init = [...(scale ? [randomArray(C, seed, 0.5, 2)] : []), ...(center ? [randomArray(C, seed + 1)] : []), randomArray(C, seed + 2, -0.5, 0.5), randomArray(C, seed + 3, 0.3, 2)];
      await bn.setWeights(init.map((data) => ({ shape: [C], data })));
      const prog = await bn.createProgram(CTX(gpu, shape, batch, true));
      const params = bn.params.map((p) => p.place(gpu));
      const X = gpu.upload('x', randomArray(n, seed + 4, -1, 2));
      const Y = output(gpu, 'y', n);
      const forward = async () => {
        gpu.submit('bn forward', prog.forward({ xs: [X], y: Y, params }));
        return gpu.readF32(Y);
      };
      // L = 0.5 * sum(wt * y^2): dL/dy = wt * y, quadratic in gamma / beta (central differences exact up to rounding)
      const wt = randomArray(n, seed + 5, 0.5, 1.5);
      const loss = (y: Float32Array) => y.reduce((s, v, i) => s + 0.5 * wt[i] * v * v, 0);
      const y0 = await forward();
      const DY = gpu.upload('dy', Float32Array.from(y0, (v, i) => wt[i] * v));
      const DX = output(gpu, 'dx', n);
      const grads = bn.params.map((p) => (p.trainable ? output(gpu, `d${p.name}`, C) : null));
      gpu.submit('bn backward', prog.backward!({ xs: [X], y: Y, params, dy: DY, dxs: [DX], grads }));
      const what = `[${batch},${shape}] center=${center} scale=${scale}`;
      for (const [i, p] of bn.params.entries()) {
        if (!p.trainable) continue;
        const g = await gpu.readF32(grads[i]!);
        const host = await p.read();
        const eps = 1e-2;
        const numeric = new Float64Array(C);
        for (let c = 0; c < C; c++) {
          const v = host.slice();
          v[c] = host[c] + eps;
          gpu.write(params[i], v);
          const up = loss(await forward());
          v[c] = host[c] - eps;
          gpu.write(params[i], v);
          const down = loss(await forward());
          numeric[c] = (up - down) / (2 * eps);
        }
        gpu.write(params[i], host);
        const s = Math.max(...Array.from(numeric, Math.abs));
        expectClose(g.map((v) => v / s), numeric.map((v) => v / s), 2e-4, `${what} ${p.name} vs finite differences`);
      }
      // dx still the inference rule
      const got = await gpu.readF32(DX);
      const d = { rows: batch * h * w, channels: C, epsilon: 1e-3 };
      expectClose(got, bnInferAffineBackwardRef(await gpu.readF32(X), await gpu.readF32(DY), d, scale ? init[0] : null, init[init.length - 2], init[init.length - 1]).dx, 1e-6, `${what} dx`);
      // the forward used the moving statistics and left them alone
      expectClose(y0, bnInferForwardRef(await gpu.readF32(X), d, scale ? init[0] : null, center ? init[scale ? 1 : 0] : null, init[init.length - 2], init[init.length - 1]), 1e-5, `${what} y`);
      const moving = await Promise.all(bn.params.slice(-2).map((p) => p.read()));
      expect(moving.map((m) => Array.from(m))).toEqual(init.slice(-2).map((m) => Array.from(m)));
      for (const b of [X, Y, DY, DX, ...grads]) if (b) gpu.destroyBuffer(b);
      for (const p of bn.params) if (p.buffer) gpu.destroyBuffer(p.buffer);
      prog.destroy();
    }
  });
});

// ---------------------------------------------------------------- model: Conv2D -> BN(inference mode) -> Dense

const IN: [number, number, number] = [5, 5, 2];
const FILTERS = 4;
const EPS = 1e-3;
const LR = 0.1;

interface Weights { convK: Float32Array; convB: Float32Array; gamma: Float32Array; beta: Float32Array; mm: Float32Array; mv: Float32Array; denseK: Float32Array; denseB: Float32Array }

function modelInit(): Weights {
  return {
    convK: randomArray(3 * 3 * 2 * FILTERS, 61, -0.5, 0.5), convB: randomArray(FILTERS, 62, -0.1, 0.1),
    gamma: randomArray(FILTERS, 63, 0.5, 1.5), beta: randomArray(FILTERS, 64, -0.3, 0.3),
    mm: randomArray(FILTERS, 65, -0.3, 0.3), mv: randomArray(FILTERS, 66, 0.3, 2),
    denseK: randomArray(3 * 3 * FILTERS, 67, -0.5, 0.5), denseB: randomArray(1, 68, -0.1, 0.1),
  };
}

/**
 * The oracle: TF.js elementary ops with autodiff (nothing from src/), BN written out with the
 * moving statistics as constants, BCE from the logit, plain SGD (w -= lr * g). Returns the
 * trained variables after each batch and each step's loss.
 */
async function oracle(w: Weights, batches: { x: Float32Array; y: Float32Array }[], convTrainable: boolean) {
  const tf: typeof TF = await tfCpu();
  const vars = {
    convK: tf.tensor4d(w.convK, [3, 3, 2, FILTERS]), convB: tf.tensor1d(w.convB), gamma: tf.tensor1d(w.gamma), beta: tf.tensor1d(w.beta),
    denseK: tf.tensor2d(w.denseK, [3 * 3 * FILTERS, 1]), denseB: tf.tensor1d(w.denseB),
  };
  const mm = tf.tensor1d(w.mm);
  const mv = tf.tensor1d(w.mv);
  const names = (convTrainable ? ['convK', 'convB'] : []).concat(['gamma', 'beta', 'denseK', 'denseB']) as (keyof typeof vars)[];
  const losses: number[] = [];
  for (const b of batches) {
    const n = b.y.length;
    const x = tf.tensor4d(b.x, [n, ...IN]);
    const y = tf.tensor2d(b.y, [n, 1]);
    const { value, grads } = tf.valueAndGrads((...ts: TF.Tensor[]) => {
      const v: Record<string, TF.Tensor> = { ...vars };
      names.forEach((k, i) => { v[k] = ts[i]; });
      const z = tf.add(tf.conv2d(x, v.convK as TF.Tensor4D, 1, 'valid'), v.convB);
      const bn = tf.add(tf.mul(tf.div(tf.sub(z, mm), tf.sqrt(tf.add(mv, EPS))), v.gamma), v.beta);
      const logits = tf.add(tf.matMul(tf.reshape(bn, [n, 3 * 3 * FILTERS]) as TF.Tensor2D, v.denseK as TF.Tensor2D), v.denseB);
      return tf.mean(tf.add(tf.sub(tf.relu(logits), tf.mul(logits, y)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))))) as TF.Scalar;
    })(names.map((k) => vars[k]));
    losses.push(value.dataSync()[0]);
    names.forEach((k, i) => { vars[k] = tf.sub(vars[k], tf.mul(grads[i], LR)) as never; });
  }
  const out = Object.fromEntries(Object.entries(vars).map(([k, t]) => [k, t.dataSync() as Float32Array]));
  return { losses, weights: out as Record<keyof typeof vars, Float32Array> };
}

function buildModel(w: Weights, inferenceMode: boolean, convTrainable: boolean) {
  const input = Input({ shape: IN });
  const conv = new Conv2D({ filters: FILTERS, kernelSize: 3, padding: 'valid', name: 'conv' });
  const bn = new BatchNormalization({ epsilon: EPS, name: 'bn' });
  let x = conv.apply(input);
  x = bn.apply(x);
  x = new Flatten().apply(x);
  const dense = new Dense({ units: 1, activation: 'sigmoid', name: 'head' });
  const m = new Model({ inputs: input, outputs: dense.apply(x) });
  conv.trainable = convTrainable;
  setInferenceMode([conv, bn] as Layer[], inferenceMode);
  return { m, conv, bn, dense };
}

async function setModel(parts: ReturnType<typeof buildModel>, w: Weights) {
  const v = (data: Float32Array, shape: number[]) => ({ data, shape });
  await parts.conv.setWeights([v(w.convK, [3, 3, 2, FILTERS]), v(w.convB, [FILTERS])]);
  await parts.bn.setWeights([v(w.gamma, [FILTERS]), v(w.beta, [FILTERS]), v(w.mm, [FILTERS]), v(w.mv, [FILTERS])]);
  await parts.dense.setWeights([v(w.denseK, [3 * 3 * FILTERS, 1]), v(w.denseB, [1])]);
}

describe('BatchNormalization inference mode: model', () => {
  it('Conv2D -> BN(inference mode) -> Dense, two SGD steps: moving statistics bit-identical, gamma / beta trained as TF.js autodiff says', async () => {
    const w = modelInit();
    const batches = [0, 1].map((i) => ({ x: randomArray(4 * 5 * 5 * 2, 70 + i, -1, 2), y: new Float32Array(i === 0 ? [1, 0, 0, 1] : [0, 1, 1, 1]) }));
    for (const convTrainable of [true, false]) {
      const parts = buildModel(w, true, convTrainable);
      await setModel(parts, w);
      parts.m.compile({ optimizer: new SGD({ learningRate: LR }), loss: 'binary_crossentropy' });
      const losses: number[] = [];
      for (const b of batches) losses.push((await parts.m.trainOnBatch(b.x, b.y))[0]);
      const plan = await parts.m.compiledPlan(4);
      expect(plan.layout.nodes.some((n) => n.fold !== null), 'no fold while gamma / beta train').toBe(false);
      const ref = await oracle(w, batches, convTrainable);
      const what = `conv trainable=${convTrainable}`;
      expectClose(losses, ref.losses, 1e-5, `${what} losses`);
      const [gamma, beta, mm, mv] = (await parts.bn.getWeights()).map((t) => t.data);
      expect(Array.from(mm), `${what} moving mean`).toEqual(Array.from(w.mm));
      expect(Array.from(mv), `${what} moving variance`).toEqual(Array.from(w.mv));
      expect(gamma.some((v, i) => Math.abs(v - w.gamma[i]) > 1e-4), `${what} gamma changed`).toBe(true);
      expect(beta.some((v, i) => Math.abs(v - w.beta[i]) > 1e-4), `${what} beta changed`).toBe(true);
      expectClose(gamma, ref.weights.gamma, 1e-5, `${what} gamma`);
      expectClose(beta, ref.weights.beta, 1e-5, `${what} beta`);
      const [convK, convB] = (await parts.conv.getWeights()).map((t) => t.data);
      expectClose(convK, ref.weights.convK, 1e-5, `${what} conv kernel`);
      expectClose(convB, ref.weights.convB, 1e-5, `${what} conv bias`);
      if (!convTrainable) expect(Array.from(convK)).toEqual(Array.from(w.convK));
      const [denseK, denseB] = (await parts.dense.getWeights()).map((t) => t.data);
      expectClose(denseK, ref.weights.denseK, 1e-5, `${what} dense kernel`);
      expectClose(denseB, ref.weights.denseB, 1e-5, `${what} dense bias`);
      expect(plan.gradientBuffers.has('bn/moving_mean'), 'no gradient for the moving statistics').toBe(false);
      expect(plan.gradientBuffers.has('bn/gamma')).toBe(true);
    }
  });

  it('the test can tell: without inference mode the same steps move the moving statistics and differ from the oracle', async () => {
    const w = modelInit();
    const batches = [0, 1].map((i) => ({ x: randomArray(4 * 5 * 5 * 2, 70 + i, -1, 2), y: new Float32Array(i === 0 ? [1, 0, 0, 1] : [0, 1, 1, 1]) }));
    const parts = buildModel(w, false, true);
    await setModel(parts, w);
    parts.m.compile({ optimizer: new SGD({ learningRate: LR }), loss: 'binary_crossentropy' });
    for (const b of batches) await parts.m.trainOnBatch(b.x, b.y);
    const [gamma, , mm] = (await parts.bn.getWeights()).map((t) => t.data);
    expect(Array.from(mm)).not.toEqual(Array.from(w.mm));
    const ref = await oracle(w, batches, true);
    const gap = Math.max(...Array.from(gamma, (v, i) => Math.abs(v - ref.weights.gamma[i])));
    expect(gap).toBeGreaterThan(1e-3);
  });
});

describe('inferenceMode and compile', () => {
  it('changing it after compile() is refused until compile() runs again (plans build the mode in)', async () => {
    const { Input, Conv2D, BatchNormalization: BN, Flatten, Dense, Model } = await import('../src/index.ts');
    const input = Input({ shape: [4, 4, 3] });
    const bn = new BN();
    const x = new Flatten().apply(bn.apply(new Conv2D({ filters: 2, kernelSize: 3, padding: 'same' }).apply(input)));
    const m = new Model({ inputs: input, outputs: new Dense({ units: 1, activation: 'sigmoid' }).apply(x) });
    m.compile({ optimizer: 'sgd', loss: 'binary_crossentropy' });
    const xs = new Float32Array(2 * 48).map((_, i) => (i % 7) / 7);
    const ys = new Float32Array([0, 1]);
    await m.trainOnBatch(xs, ys);
    bn.inferenceMode = true;
    await expect(m.trainOnBatch(xs, ys)).rejects.toThrow(/inferenceMode changed after compile\(\)/);
    m.compile({ optimizer: 'sgd', loss: 'binary_crossentropy' });
    const before = await bn.getWeights();
    await m.trainOnBatch(xs, ys);
    const after = await bn.getWeights();
    expect(after[2].data).toEqual(before[2].data); // moving mean untouched in inference mode
    expect(after[0].data).not.toEqual(before[0].data); // gamma trained
  });
});
