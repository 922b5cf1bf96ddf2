import { describe, expect, it } from 'vitest';
import { DenseKernel, subgroupGemmSupported, type DenseGemmKind } from '../src/kernels/dense.ts';
import type { Gpu } from '../src/gpu/index.ts';
import { output, testGpu } from './helpers/gpu.ts';
import { randomArray } from './helpers/random.ts';
import { expectClose } from './helpers/compare.ts';
import { denseBackwardRef, denseForwardRef, type Activation, type DenseDims } from './reference/dense.ts';

const ACTIVATIONS: Activation[] = ['linear', 'relu', 'sigmoid'];

interface Run {
  kernel: DenseKernel;
  x: Float32Array; w: Float32Array; b: Float32Array; dy: Float32Array;
  y: Float32Array; dx: Float32Array; dw: Float32Array; db: Float32Array;
}

/** Runs forward, backwardInput and backwardWeights once on random data; outputs start as NaN. */
async function runDense(gpu: Gpu, d: DenseDims, opts: { gemm?: DenseGemmKind; splitK?: number; seed?: number; data?: Partial<Run> } = {}): Promise<Run> {
  const { batch: B, inFeatures: I, outFeatures: O } = d;
  const seed = opts.seed ?? 1;
  const kernel = await DenseKernel.create(gpu, { ...d, label: 'test_dense', gemm: opts.gemm, splitK: opts.splitK });
  // Weights at Glorot-like scale keep sigmoid away from saturation.
  const scale = Math.sqrt(6 / (I + O));
  const x = opts.data?.x ?? randomArray(B * I, seed);
  const w = opts.data?.w ?? randomArray(I * O, seed + 1, -scale, scale);
  const b = opts.data?.b ?? randomArray(O, seed + 2, -0.5, 0.5);
  const dy = opts.data?.dy ?? randomArray(B * O, seed + 3);
  const X = gpu.upload('x', x), W = gpu.upload('w', w), Bb = gpu.upload('b', b), DY = gpu.upload('dy', dy);
  const Y = output(gpu, 'y', B * O), DX = output(gpu, 'dx', B * I), DW = output(gpu, 'dw', I * O), DB = output(gpu, 'db', O);
  gpu.submit('dense test', [
    kernel.forward({ x: X, w: W, b: Bb, y: Y }),
    kernel.backwardInput({ dy: DY, y: Y, w: W, dx: DX }),
    kernel.backwardWeights({ x: X, dy: DY, y: Y, dw: DW, db: DB }),
  ]);
  const [y, dx, dw, db] = await Promise.all([gpu.readF32(Y), gpu.readF32(DX), gpu.readF32(DW), gpu.readF32(DB)]);
  for (const buf of [X, W, Bb, DY, Y, DX, DW, DB]) gpu.destroyBuffer(buf);
  kernel.destroy();
  return { kernel, x, w, b, dy, y, dx, dw, db };
}

function expectMatchesReference(r: Run, d: DenseDims, what: string, backward = true): void {
  expectClose(r.y, denseForwardRef(r.x, r.w, r.b, d), 1e-5, `${what} y`);
  if (!backward) return;
  const ref = denseBackwardRef(r.x, r.w, r.b, r.dy, d);
  expectClose(r.dx, ref.dx, 1e-5, `${what} dx`);
  expectClose(r.dw, ref.dw, 1e-5, `${what} dw`);
  expectClose(r.db, ref.db, 1e-5, `${what} db`);
}

const dimsText = (d: DenseDims) => `${d.batch}x${d.inFeatures}->${d.outFeatures} ${d.activation}`;

describe('dense', () => {
  // Sizes that divide no tile: batch 1, 3, 8; in 5, 65, 300, 1031; out 1, 5, 64, 65.
  const odd: [number, number, number][] = [[1, 5, 1], [3, 65, 5], [8, 300, 64], [3, 1031, 65], [1, 300, 64], [8, 65, 1]];
  for (const activation of ACTIVATIONS) {
    it(`forward and backward match the float64 reference on odd sizes: ${activation}`, async () => {
      const gpu = await testGpu();
      for (const [batch, inFeatures, outFeatures] of odd) {
        const d = { batch, inFeatures, outFeatures, activation };
        expectMatchesReference(await runDense(gpu, d), d, dimsText(d));
      }
    });
  }

  it('forward with a long K (3x4100 -> 17) for any number of K splits', async () => {
    const gpu = await testGpu();
    const d: DenseDims = { batch: 3, inFeatures: 4100, outFeatures: 17, activation: 'relu' };
    for (const splitK of [undefined, 1, 2, 7]) {
      const r = await runDense(gpu, d, { splitK });
      if (splitK) expect(r.kernel.forwardSplits).toBe(splitK);
      else expect(r.kernel.forwardSplits).toBeGreaterThan(1); // the default splits a long K
      expectMatchesReference(r, d, `${dimsText(d)} splitK=${splitK ?? 'auto'}`, splitK === undefined);
    }
  });

  // Both GEMM implementations on shapes the subgroup one accepts (multiples of 4), including
  // more rows and columns than one tile (36 x 260), split K with a bias + activation reduce,
  // and a long K. Mostly out = 64, so the shapes share compiled pipelines.
  const aligned: [number, number, number, Activation, number | undefined][] = [
    [8, 300, 64, 'relu', undefined], [32, 1032, 64, 'sigmoid', 3], [36, 40, 260, 'relu', undefined], [4, 4100, 64, 'linear', undefined],
  ];
  for (const gemm of ['tiled', 'subgroup'] as const) {
    it(`${gemm} GEMMs match the reference (forward, split K, backward)`, async (ctx) => {
      const gpu = await testGpu();
      if (gemm === 'subgroup' && !subgroupGemmSupported(gpu)) ctx.skip(); // a device property, not a failure
      for (const [batch, inFeatures, outFeatures, activation, splitK] of aligned) {
        const d = { batch, inFeatures, outFeatures, activation };
        const r = await runDense(gpu, d, { gemm, splitK, seed: 7 });
        expect(r.kernel.describe()).toContain(gemm);
        expectMatchesReference(r, d, `${gemm} ${dimsText(d)}`);
      }
    });
  }

  // L = sum(y .* r): dL/dy = r. Central differences of the float64 forward vs the GPU backward.
  const fdShapes: [number, number, number][] = [[3, 5, 4], [4, 8, 8]]; // tiled; subgroup where supported
  for (const activation of ACTIVATIONS) {
    it(`backward matches central finite differences: ${activation}`, async () => {
      const gpu = await testGpu();
      for (const [batch, inFeatures, outFeatures] of fdShapes) {
        const d = { batch, inFeatures, outFeatures, activation };
        const seed = 5; // all |z| > 0.1 for both shapes
        const x = randomArray(batch * inFeatures, seed);
        const w = randomArray(inFeatures * outFeatures, seed + 1, -0.8, 0.8);
        const b = randomArray(outFeatures, seed + 2, -0.5, 0.5);
        const r = randomArray(batch * outFeatures, seed + 3);
        // ReLU's kink must be far from every z for differences of step 1e-3 to be valid.
        const z = denseForwardRef(x, w, b, { ...d, activation: 'linear' });
        expect(Math.min(...Array.from(z, Math.abs)), 'min |z| (pick another seed)').toBeGreaterThan(0.02);

        const run = await runDense(gpu, d, { data: { x, w, b, dy: r } });
        const loss = (xx: Float64Array, ww: Float64Array, bb: Float64Array) => {
          const y = denseForwardRef(xx, ww, bb, d);
          let s = 0;
          for (let i = 0; i < y.length; i++) s += y[i] * r[i];
          return s;
        };
        const params = { x: Float64Array.from(x), w: Float64Array.from(w), b: Float64Array.from(b) };
        const eps = 1e-3;
        const numeric = (p: Float64Array) => Float64Array.from(p, (v, i) => {
          p[i] = v + eps;
          const up = loss(params.x, params.w, params.b);
          p[i] = v - eps;
          const down = loss(params.x, params.w, params.b);
          p[i] = v;
          return (up - down) / (2 * eps);
        });
        const what = `${dimsText(d)} (${run.kernel.describe().split(';')[0]})`;
        expectClose(run.dx, numeric(params.x), 1e-3, `${what} dx vs finite differences`);
        expectClose(run.dw, numeric(params.w), 1e-3, `${what} dw vs finite differences`);
        expectClose(run.db, numeric(params.b), 1e-3, `${what} db vs finite differences`);
      }
    });
  }

  it('overwrites gradients (replaying a backward op gives the same result, not a sum)', async () => {
    const gpu = await testGpu();
    for (const gemm of ['tiled', subgroupGemmSupported(gpu) ? 'subgroup' : 'tiled'] as const) {
      const d: DenseDims = { batch: 4, inFeatures: 12, outFeatures: 8, activation: 'sigmoid' };
      const k = await DenseKernel.create(gpu, { ...d, gemm });
      const X = gpu.upload('x', randomArray(4 * 12, 3)), W = gpu.upload('w', randomArray(12 * 8, 4)), Bb = gpu.upload('b', randomArray(8, 5));
      const DY = gpu.upload('dy', randomArray(4 * 8, 6));
      const Y = output(gpu, 'y', 32), DX = output(gpu, 'dx', 48), DW = output(gpu, 'dw', 96), DB = output(gpu, 'db', 8);
      const ops = [k.backwardInput({ dy: DY, y: Y, w: W, dx: DX }), k.backwardWeights({ x: X, dy: DY, y: Y, dw: DW, db: DB })];
      gpu.submit('forward', k.forward({ x: X, w: W, b: Bb, y: Y }));
      gpu.submit('once', ops);
      const once = await Promise.all([DX, DW, DB].map((buf) => gpu.readF32(buf)));
      gpu.submit('twice', ops);
      const twice = await Promise.all([DX, DW, DB].map((buf) => gpu.readF32(buf)));
      for (let i = 0; i < 3; i++) expect(Array.from(twice[i]), `${gemm} output ${i}`).toEqual(Array.from(once[i]));
      k.destroy();
    }
  });

  it('rejects bad shapes and missing inputs with messages naming the layer', async () => {
    const gpu = await testGpu();
    await expect(DenseKernel.create(gpu, { batch: 0, inFeatures: 4, outFeatures: 4, activation: 'relu', label: 'fc1' }))
      .rejects.toThrow(/fc1: Dense batch=0 in=4 out=4.*batch must be a positive integer/);
    await expect(DenseKernel.create(gpu, { batch: 2, inFeatures: 4, outFeatures: 4, activation: 'tanh' as Activation, label: 'fc1' }))
      .rejects.toThrow(/fc1.*activation must be/);
    const tooMany = Math.floor(gpu.limits.maxStorageBufferBindingSize / 4 / 1000) + 1;
    await expect(DenseKernel.create(gpu, { batch: 2, inFeatures: tooMany, outFeatures: 1000, activation: 'relu', label: 'huge' }))
      .rejects.toThrow(new RegExp(`huge.*w \\[in,out\\] is ${tooMany * 4000} bytes, over this adapter's maxStorageBufferBindingSize`));
    const k = await DenseKernel.create(gpu, { batch: 2, inFeatures: 3, outFeatures: 5, activation: 'relu', label: 'fc2' });
    const small = gpu.createBuffer('small', 8);
    const ok = (n: number) => gpu.createBuffer('ok', n * 4);
    expect(() => k.forward({ x: small, w: ok(15), b: ok(5), y: ok(10) })).toThrow(/fc2 dense B=2 in=3 out=5 relu: buffer 'x' \(small\) is 8 bytes, needs 24/);
    expect(() => k.backwardInput({ dy: ok(10), w: ok(15), dx: ok(6) })).toThrow(/fc2.*backwardInput needs y/);
    k.destroy();
  });
});
