import { describe, expect, it } from 'vitest';
import { BatchNormKernel, type BatchNormShape } from '../src/kernels/batchnorm.ts';
import { foldBatchNorm } from '../src/kernels/batchnorm-fold.ts';
import type { Gpu } from '../src/gpu/index.ts';
import { output, testGpu } from './helpers/gpu.ts';
import { randomArray } from './helpers/random.ts';
import { expectClose } from './helpers/compare.ts';
import {
  bnInferBackwardRef, bnInferForwardRef, bnMomentsRef, bnMovingRef, bnTrainBackwardRef, bnTrainForwardRef, type BnDims,
} from './reference/batchnorm.ts';
import { conv2dPreactivationRef } from './reference/conv2d.ts';
import { denseForwardRef } from './reference/dense.ts';

interface Inputs {
  x: Float32Array; dy: Float32Array;
  gamma: Float32Array | null; beta: Float32Array | null;
  movingMean: Float32Array; movingVar: Float32Array;
}

function inputs(rows: number, channels: number, seed: number, o: { center?: boolean; scale?: boolean; offset?: number } = {}): Inputs {
  const n = rows * channels;
  const off = o.offset ?? 0;
  return {
    x: randomArray(n, seed, off - 1, off + 1),
    dy: randomArray(n, seed + 1),
    gamma: o.scale === false ? null : randomArray(channels, seed + 2, 0.5, 2),
    beta: o.center === false ? null : randomArray(channels, seed + 3),
    movingMean: randomArray(channels, seed + 4),
    movingVar: randomArray(channels, seed + 5, 0.2, 3),
  };
}

/**
 * One submit: inferForward and inferBackward (with the initial moving statistics), then
 * trainForward and trainBackward. Outputs start as NaN.
 */
async function runAll(gpu: Gpu, shape: BatchNormShape, inp: Inputs) {
  const k = await BatchNormKernel.create(gpu, { label: 'test_bn', ...shape });
  const n = shape.rows * shape.channels;
  const C = shape.channels;
  const X = gpu.upload('x', inp.x);
  const DY = gpu.upload('dy', inp.dy);
  const G = inp.gamma ? gpu.upload('gamma', inp.gamma) : undefined;
  const B = inp.beta ? gpu.upload('beta', inp.beta) : undefined;
  const MM = gpu.upload('movingMean', inp.movingMean);
  const MV = gpu.upload('movingVar', inp.movingVar);
  const out = {
    y: output(gpu, 'y', n), mean: output(gpu, 'mean', C), invStd: output(gpu, 'invStd', C), dx: output(gpu, 'dx', n),
    dgamma: G ? output(gpu, 'dgamma', C) : undefined, dbeta: B ? output(gpu, 'dbeta', C) : undefined,
    yInf: output(gpu, 'yInf', n), dxInf: output(gpu, 'dxInf', n),
  };
  gpu.submit('batchnorm test', [
    k.inferForward({ x: X, gamma: G, beta: B, movingMean: MM, movingVar: MV, y: out.yInf }),
    k.inferBackward({ dy: DY, gamma: G, movingVar: MV, dx: out.dxInf }),
    k.trainForward({ x: X, gamma: G, beta: B, y: out.y, mean: out.mean, invStd: out.invStd, movingMean: MM, movingVar: MV }),
    k.trainBackward({ x: X, dy: DY, gamma: G, mean: out.mean, invStd: out.invStd, dx: out.dx, dgamma: out.dgamma, dbeta: out.dbeta }),
  ]);
  const read = (b: GPUBuffer | undefined) => (b ? gpu.readF32(b) : Promise.resolve(undefined));
  const r = {
    y: (await read(out.y))!, mean: (await read(out.mean))!, invStd: (await read(out.invStd))!, dx: (await read(out.dx))!,
    dgamma: await read(out.dgamma), dbeta: await read(out.dbeta), yInf: (await read(out.yInf))!, dxInf: (await read(out.dxInf))!,
    movingMean: (await read(MM))!, movingVar: (await read(MV))!,
  };
  for (const b of [X, DY, G, B, MM, MV, ...Object.values(out)]) if (b) gpu.destroyBuffer(b);
  k.destroy();
  return r;
}

/** Compares every output of runAll with the float64 reference. */
function checkAll(r: Awaited<ReturnType<typeof runAll>>, inp: Inputs, shape: BatchNormShape, tol: { y: number; dx: number }) {
  const d: BnDims = { rows: shape.rows, channels: shape.channels, epsilon: shape.epsilon ?? 1e-3 };
  const momentum = shape.momentum ?? 0.99;
  const what = `rows=${d.rows} C=${d.channels}${inp.gamma ? '' : ' scale=false'}${inp.beta ? '' : ' center=false'}`;
  const f = bnTrainForwardRef(inp.x, d, inp.gamma, inp.beta);
  expectClose(r.y, f.y, tol.y, `${what} train y`);
  expectClose(r.mean, f.mean, 1e-5, `${what} mean`);
  expectClose(r.invStd, f.invStd, 1e-4, `${what} invStd`);
  expectClose(r.movingMean, bnMovingRef(inp.movingMean, f.mean, momentum), 1e-5, `${what} movingMean`);
  expectClose(r.movingVar, bnMovingRef(inp.movingVar, f.variance, momentum), 1e-5, `${what} movingVar`);
  const b = bnTrainBackwardRef(inp.x, inp.dy, d, inp.gamma);
  expectClose(r.dx, b.dx, tol.dx, `${what} train dx`);
  // sums over the rows: compare relative to their natural scale, sqrt(rows)
  const scale = Math.sqrt(d.rows);
  if (r.dgamma) expectClose(r.dgamma.map((v) => v / scale), b.dgamma.map((v) => v / scale), 1e-4, `${what} dgamma`);
  if (r.dbeta) expectClose(r.dbeta.map((v) => v / scale), b.dbeta.map((v) => v / scale), 1e-4, `${what} dbeta`);
  expectClose(r.yInf, bnInferForwardRef(inp.x, d, inp.gamma, inp.beta, inp.movingMean, inp.movingVar), 1e-5, `${what} infer y`);
  expectClose(r.dxInf, bnInferBackwardRef(inp.dy, d, inp.gamma, inp.movingVar), 1e-5, `${what} infer dx`);
}

/** Same device, pretending to have smaller limits (2-D grids, capped reduction chunks). */
function withLimits(gpu: Gpu, overrides: Record<string, number>): Gpu {
  const limits: Record<string, number> = {};
  for (const k in gpu.limits) limits[k] = (gpu.limits as unknown as Record<string, number>)[k];
  return Object.create(gpu, { limits: { value: { ...limits, ...overrides } } }) as Gpu;
}

describe('batchnorm', () => {
  it('training and inference ops match the reference (odd sizes, scalar and vec4 channels, multi-workgroup reductions)', async () => {
    const gpu = await testGpu();
    // (7,3): one workgroup; (129,5): rows past a power of two; (301,33): a partial channel
    // tile; (3*37*41,3): several row chunks, lanes with no chunk in the merge; (1000,64):
    // vec4, more chunks than merge lanes; (1,4): a batch of one (variance 0).
    const cases: [number, number][] = [[7, 3], [129, 5], [301, 33], [3 * 37 * 41, 3], [1000, 64], [50, 8], [1, 4]];
    for (const [rows, channels] of cases) {
      const shape = { rows, channels };
      const inp = inputs(rows, channels, rows + channels);
      checkAll(await runAll(gpu, shape, inp), inp, shape, { y: 5e-6, dx: 5e-6 });
    }
  });

  it('variance stays accurate with a large common offset (values 100 +- 1)', async () => {
    const gpu = await testGpu();
    for (const [rows, channels] of [[3 * 37 * 41, 3], [1000, 64]] as [number, number][]) {
      const shape = { rows, channels, epsilon: 1e-5 };
      const inp = inputs(rows, channels, 7 * rows, { offset: 100 });
      const r = await runAll(gpu, shape, inp);
      checkAll(r, inp, shape, { y: 1e-4, dx: 1e-4 });
      // The test can tell: E[x^2] - E[x]^2 summed in f32 is far off for these inputs.
      const d = { rows, channels, epsilon: 1e-5 };
      const ref = bnMomentsRef(inp.x, d);
      let s = 0;
      let q = 0;
      for (let i = 0; i < rows; i++) {
        const v = inp.x[i * channels];
        s = Math.fround(s + v);
        q = Math.fround(q + Math.fround(v * v));
      }
      const naive = Math.fround(q / rows) - Math.fround(Math.fround(s / rows) ** 2);
      expect(Math.abs(naive - ref.variance[0]) / ref.variance[0]).toBeGreaterThan(1e-2);
      const gpuVar = 1 / r.invStd[0] ** 2 - 1e-5;
      expect(Math.abs(gpuVar - ref.variance[0]) / ref.variance[0]).toBeLessThan(1e-4);
    }
  });

  it('moving statistics after two consecutive trainForward calls', async () => {
    const gpu = await testGpu();
    for (const [rows, channels, momentum] of [[129, 5, undefined], [200, 12, 0.9]] as [number, number, number | undefined][]) {
      const k = await BatchNormKernel.create(gpu, { rows, channels, momentum, label: 'bn_moving' });
      const a = inputs(rows, channels, 11);
      const x2 = randomArray(rows * channels, 12, -3, 5);
      const X1 = gpu.upload('x1', a.x);
      const X2 = gpu.upload('x2', x2);
      const G = gpu.upload('gamma', a.gamma!);
      const B = gpu.upload('beta', a.beta!);
      const MM = gpu.upload('movingMean', a.movingMean);
      const MV = gpu.upload('movingVar', a.movingVar);
      const Y1 = output(gpu, 'y1', rows * channels);
      const Y2 = output(gpu, 'y2', rows * channels);
      const mean = output(gpu, 'mean', channels);
      const invStd = output(gpu, 'invStd', channels);
      gpu.submit('two steps', [
        k.trainForward({ x: X1, gamma: G, beta: B, y: Y1, mean, invStd, movingMean: MM, movingVar: MV }),
        k.trainForward({ x: X2, gamma: G, beta: B, y: Y2, mean, invStd, movingMean: MM, movingVar: MV }),
      ]);
      const m = momentum ?? 0.99;
      const d = { rows, channels, epsilon: 1e-3 };
      const s1 = bnTrainForwardRef(a.x, d, a.gamma, a.beta);
      const s2 = bnTrainForwardRef(x2, d, a.gamma, a.beta);
      const mm = bnMovingRef(bnMovingRef(a.movingMean, s1.mean, m), s2.mean, m);
      const mv = bnMovingRef(bnMovingRef(a.movingVar, s1.variance, m), s2.variance, m);
      expectClose(await gpu.readF32(MM), mm, 1e-6, `momentum ${m} movingMean`);
      expectClose(await gpu.readF32(MV), mv, 1e-5, `momentum ${m} movingVar`);
      expectClose(await gpu.readF32(Y1), s1.y, 5e-6, 'first step y');
      expectClose(await gpu.readF32(Y2), s2.y, 5e-6, 'second step y');
      expectClose(await gpu.readF32(mean), s2.mean, 1e-5, 'mean holds the last step');
      for (const b of [X1, X2, G, B, MM, MV, Y1, Y2, mean, invStd]) gpu.destroyBuffer(b);
      k.destroy();
    }
  });

  it('center=false and scale=false (no beta / gamma bound, none given back)', async () => {
    const gpu = await testGpu();
    for (const [rows, channels] of [[129, 5], [200, 12]] as [number, number][]) {
      for (const [center, scale] of [[false, true], [true, false], [false, false]]) {
        const shape = { rows, channels, center, scale };
        const inp = inputs(rows, channels, rows * 3 + channels, { center, scale });
        const r = await runAll(gpu, shape, inp);
        expect(r.dgamma === undefined, 'dgamma only with scale').toBe(!scale);
        checkAll(r, inp, shape, { y: 5e-6, dx: 5e-6 });
      }
    }
  });

  it('large grids fold into 2-D and row chunks are capped by the per-dimension limit', async () => {
    const base = await testGpu();
    const gpu = withLimits(base, { maxComputeWorkgroupsPerDimension: 16 });
    for (const [rows, channels] of [[3 * 37 * 41, 3], [2100, 32]] as [number, number][]) {
      const shape = { rows, channels };
      const inp = inputs(rows, channels, 5 * rows);
      checkAll(await runAll(gpu, shape, inp), inp, shape, { y: 5e-6, dx: 5e-6 });
    }
  });

  it('the reference training backward matches central finite differences through the batch statistics', () => {
    for (const [rows, channels, scaled] of [[6, 3, true], [5, 2, false], [1, 2, true]] as [number, number, boolean][]) {
      const d = { rows, channels, epsilon: 1e-3 };
      const x = Float64Array.from(randomArray(rows * channels, 31 + rows));
      const gamma = scaled ? Float64Array.from(randomArray(channels, 32, 0.5, 2)) : null;
      const beta = Float64Array.from(randomArray(channels, 33));
      const r = randomArray(rows * channels, 34);
      const loss = () => bnTrainForwardRef(x, d, gamma, beta).y.reduce((s, v, i) => s + v * r[i], 0);
      const numeric = (v: Float64Array) => Float64Array.from(v, (old, i) => {
        const eps = 1e-5;
        v[i] = old + eps;
        const up = loss();
        v[i] = old - eps;
        const down = loss();
        v[i] = old;
        return (up - down) / (2 * eps);
      });
      const b = bnTrainBackwardRef(x, r, d, gamma);
      expectClose(b.dx, numeric(x), 1e-7, `rows=${rows} C=${channels} dx vs finite differences`);
      expectClose(b.dbeta, numeric(beta), 1e-7, `rows=${rows} C=${channels} dbeta vs finite differences`);
      if (gamma) expectClose(b.dgamma, numeric(gamma), 1e-7, `rows=${rows} C=${channels} dgamma vs finite differences`);
    }
  });

  it('foldBatchNorm: conv, depthwise and dense layers folded give BN(layer(x))', () => {
    const eps = 1e-3;
    const bn = (C: number, seed: number, o: { scale?: boolean; center?: boolean } = {}) => ({
      gamma: o.scale === false ? null : randomArray(C, seed, 0.5, 2),
      beta: o.center === false ? null : randomArray(C, seed + 1),
      movingMean: randomArray(C, seed + 2),
      movingVar: randomArray(C, seed + 3, 0.2, 3),
      epsilon: eps,
    });
    const bnApply = (z: Float64Array, C: number, p: ReturnType<typeof bn>) =>
      bnInferForwardRef(z, { rows: z.length / C, channels: C, epsilon: eps }, p.gamma, p.beta, p.movingMean, p.movingVar);

    // Conv2D 3x3 valid, HWIO [3,3,4,5], with and without bias, all gamma/beta combinations.
    const s = { batch: 2, height: 5, width: 6, inChannels: 4, outChannels: 5, kernelSize: [3, 3] as [number, number], padding: 'valid' as const, activation: 'linear' as const };
    const x = randomArray(2 * 5 * 6 * 4, 41);
    const w = randomArray(3 * 3 * 4 * 5, 42);
    for (const [withBias, scale, center] of [[true, true, true], [false, true, true], [true, false, true], [false, true, false]]) {
      const bias = withBias ? randomArray(5, 43) : null;
      const p = bn(5, 44, { scale, center });
      const folded = foldBatchNorm({ kernel: w, kernelShape: [3, 3, 4, 5], bias, ...p });
      const direct = bnApply(conv2dPreactivationRef(x, w, bias ?? new Float32Array(5), s), 5, p);
      expectClose(conv2dPreactivationRef(x, folded.kernel, folded.bias, s), direct, 1e-5, `conv bias=${withBias} scale=${scale} center=${center}`);
    }
    // The fold itself, in float64 then rounded once.
    {
      const p = bn(5, 45);
      const folded = foldBatchNorm({ kernel: w, kernelShape: [3, 3, 4, 5], bias: null, ...p });
      const k = (i: number) => p.gamma![i % 5] / Math.sqrt(p.movingVar[i % 5] + eps);
      expect(Array.from(folded.kernel.slice(0, 7))).toEqual(Array.from(w.slice(0, 7), (v, i) => Math.fround(v * k(i))));
      expect(folded.bias[2]).toBe(Math.fround(-p.movingMean[2] * k(2) + p.beta![2]));
    }

    // DepthwiseConv2D 2x2 valid, [2,2,3,2] (depth multiplier 2): output channel c*2 + m.
    {
      const [N, H, W, Cin, M] = [1, 4, 5, 3, 2];
      const xd = randomArray(N * H * W * Cin, 46);
      const wd = randomArray(2 * 2 * Cin * M, 47);
      const bd = randomArray(Cin * M, 48);
      const depthwise = (wk: ArrayLike<number>, b: ArrayLike<number>) => {
        const OH = H - 1;
        const OW = W - 1;
        const z = new Float64Array(N * OH * OW * Cin * M);
        for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) for (let c = 0; c < Cin; c++) for (let m = 0; m < M; m++) {
          let v = b[c * M + m];
          for (let ky = 0; ky < 2; ky++) for (let kx = 0; kx < 2; kx++) v += xd[((oh + ky) * W + ow + kx) * Cin + c] * wk[((ky * 2 + kx) * Cin + c) * M + m];
          z[(oh * OW + ow) * Cin * M + c * M + m] = v;
        }
        return z;
      };
      const p = bn(Cin * M, 49);
      const folded = foldBatchNorm({ kernel: wd, kernelShape: [2, 2, Cin, M], bias: bd, ...p });
      expectClose(depthwise(folded.kernel, folded.bias), bnApply(depthwise(wd, bd), Cin * M, p), 1e-5, 'depthwise');
    }

    // Dense [7, 6].
    {
      const dd = { batch: 3, inFeatures: 7, outFeatures: 6, activation: 'linear' as const };
      const xs = randomArray(3 * 7, 50);
      const wk = randomArray(7 * 6, 51);
      const b = randomArray(6, 52);
      const p = bn(6, 53);
      const folded = foldBatchNorm({ kernel: wk, kernelShape: [7, 6], bias: b, ...p });
      expectClose(denseForwardRef(xs, folded.kernel, folded.bias, dd), bnApply(denseForwardRef(xs, wk, b, dd), 6, p), 1e-5, 'dense');
    }

    const p = bn(4, 54);
    expect(() => foldBatchNorm({ kernel: new Float32Array(30), kernelShape: [5, 6], bias: null, ...p, label: 'fc1' }))
      .toThrow(/fc1: folding BatchNormalization \[4\] into kernel \[5,6\]: the BatchNormalization has 4 channels but the kernel has 6 output channels/);
    expect(() => foldBatchNorm({ kernel: new Float32Array(29), kernelShape: [5, 4], bias: null, ...p }))
      .toThrow(/the kernel holds 29 values, its shape needs 20/);
  });

  it('rejects shapes and buffers it cannot use, naming the layer', async () => {
    const gpu = await testGpu();
    await expect(BatchNormKernel.create(gpu, { rows: 0, channels: 3, label: 'bn_conv1' }))
      .rejects.toThrow(/bn_conv1: BatchNormalization input \[0,3\].*rows must be a positive integer, got 0/);
    await expect(BatchNormKernel.create(gpu, { rows: 4, channels: 3, momentum: 1.5, label: 'bn2' }))
      .rejects.toThrow(/bn2: .*momentum must be in \[0, 1\], got 1.5/);
    await expect(BatchNormKernel.create(gpu, { rows: 4, channels: 3, epsilon: 0, label: 'bn3' }))
      .rejects.toThrow(/bn3: .*epsilon must be a finite number > 0/);
    const tooBig = Math.floor(gpu.limits.maxStorageBufferBindingSize / 4 / 64) + 1;
    await expect(BatchNormKernel.create(gpu, { rows: tooBig, channels: 64, label: 'big' }))
      .rejects.toThrow(/big: .*over this adapter's maxStorageBufferBindingSize/);

    const k = await BatchNormKernel.create(gpu, { rows: 4, channels: 2, label: 'bn4' });
    const buf = (label: string, floats: number) => gpu.createBuffer(label, floats * 4);
    const x = buf('x', 8);
    const y = buf('y', 8);
    const c = () => buf('c', 2);
    const [gamma, beta, mean, invStd, mm, mv] = [c(), c(), c(), c(), c(), c()];
    expect(() => k.trainForward({ x: buf('short', 4), gamma, beta, y, mean, invStd, movingMean: mm, movingVar: mv }))
      .toThrow(/bn4 batchnorm.trainForward rows=4 C=2: buffer 'x' \(short\) is 16 bytes, needs 32/);
    expect(() => k.trainForward({ x, gamma, y, mean, invStd, movingMean: mm, movingVar: mv }))
      .toThrow(/bn4 batchnorm.trainForward.*'beta' is required \(center=true\)/);
    expect(() => k.inferForward({ x, gamma, beta, y: x, movingMean: mm, movingVar: mv }))
      .toThrow(/bn4 batchnorm.inferForward.*'x' and 'y' are the same buffer/);
    expect(() => k.inferBackward({ dy: x, movingVar: mv, dx: y }))
      .toThrow(/'gamma' is required \(scale=true\)/);
    k.destroy();
    const k2 = await BatchNormKernel.create(gpu, { rows: 4, channels: 2, scale: false, center: false, label: 'bn5' });
    expect(() => k2.inferForward({ x, gamma, y, movingMean: mm, movingVar: mv }))
      .toThrow(/bn5 batchnorm.inferForward.*'gamma' given but the layer has scale=false/);
    expect(() => k2.trainBackward({ x, dy: y, mean, invStd, dx: buf('dx', 8), dbeta: beta }))
      .toThrow(/'dbeta' given but the layer has center=false/);
    k2.destroy();
  });
});
