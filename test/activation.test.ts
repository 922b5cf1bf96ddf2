import { describe, expect, it } from 'vitest';
import { ActivationKernel, describeActivation, type ActivationSpec } from '../src/kernels/activation.ts';
import type { Gpu } from '../src/gpu/index.ts';
import { output, testGpu } from './helpers/gpu.ts';
import { randomArray } from './helpers/random.ts';
import { expectClose } from './helpers/compare.ts';
import { activationBackwardRef, activationForwardRef, activationGradScalarRef, activationScalarRef } from './reference/activation.ts';

/** Runs forward and backward on x and dy; outputs start as NaN. */
async function runActivation(gpu: Gpu, activation: ActivationSpec, x: Float32Array, dy: Float32Array): Promise<{ y: Float32Array; dx: Float32Array }> {
  const kernel = await ActivationKernel.create(gpu, { size: x.length, activation, label: 'test_act' });
  const X = gpu.upload('x', x);
  const DY = gpu.upload('dy', dy);
  const Y = output(gpu, 'y', x.length);
  const DX = output(gpu, 'dx', x.length);
  gpu.submit('activation test', [kernel.forward({ x: X, y: Y }), kernel.backward({ x: X, dy: DY, dx: DX })]);
  const [y, dx] = await Promise.all([gpu.readF32(Y), gpu.readF32(DX)]);
  for (const b of [X, DY, Y, DX]) gpu.destroyBuffer(b);
  kernel.destroy();
  return { y, dx };
}

const RELUS: ActivationSpec[] = [
  { kind: 'relu' },
  { kind: 'relu', maxValue: 6 },                                    // relu6: native Relu6 op
  { kind: 'relu', maxValue: 5 },                                    // clip_by_value path
  { kind: 'relu', negativeSlope: 0.1 },                             // native LeakyRelu op
  { kind: 'relu', threshold: 0.5 },
  { kind: 'relu', maxValue: 6, negativeSlope: 0.1 },
  { kind: 'relu', maxValue: 6, negativeSlope: 0.1, threshold: 0.5 },
];
const ALL: ActivationSpec[] = [{ kind: 'linear' }, ...RELUS, { kind: 'sigmoid' }, { kind: 'tanh' }, { kind: 'swish' }];

/** Values on and just either side of every kink, and |x| large enough to overflow a naive exp. */
const f32 = Math.fround;
const SPECIAL = [
  0, -0, f32(1e-6), f32(-1e-6), 0.5, f32(0.5 + 1e-6), f32(0.5 - 1e-6), 5, f32(5 + 1e-5), f32(5 - 1e-5),
  6, f32(6 + 1e-5), f32(6 - 1e-5), -6, 1, -1,
  20, -20, 50, -50, 88, -88, 89, -89, 100, -100, 1e4, -1e4, f32(1e30), f32(-1e30), f32(3e38), f32(-3e38),
];

/** `n` values: SPECIAL first, then uniform in [-8, 8). */
function inputs(n: number, seed: number): Float32Array {
  const x = randomArray(n, seed, -8, 8);
  x.set(SPECIAL.slice(0, n));
  return x;
}

describe('activation', () => {
  it('forward and backward match the float64 reference (vec4 and scalar sizes, kinks, large |x|)', async () => {
    const gpu = await testGpu();
    // 1000: vec4 path, 250 invocations (not a multiple of 128); 1001 and 517: scalar path.
    for (const n of [1000, 1001, 517]) {
      for (const a of ALL) {
        const x = inputs(n, n + 7);
        const dy = randomArray(n, n + 8);
        const r = await runActivation(gpu, a, x, dy);
        const what = `${describeActivation(a)} n=${n}`;
        expect(r.y.every(Number.isFinite), `${what}: y finite`).toBe(true);
        expect(r.dx.every(Number.isFinite), `${what}: dx finite`).toBe(true);
        expectClose(r.y, activationForwardRef(x, a), 1e-5, `${what} y`);
        expectClose(r.dx, activationBackwardRef(x, dy, a), 1e-5, `${what} dx`);
      }
    }
  });

  it('relu at its kinks: the values Keras gives and the subgradients TF gives', async () => {
    const gpu = await testGpu();
    // [activation, x, f(x), f'(x)]
    const table: [ActivationSpec, number, number, number][] = [
      [{ kind: 'relu' }, 0, 0, 0],
      [{ kind: 'relu' }, 2, 2, 1],
      [{ kind: 'relu', maxValue: 6 }, 6, 6, 0],             // Relu6 op: 0 < x < 6
      [{ kind: 'relu', maxValue: 6 }, 0, 0, 0],
      [{ kind: 'relu', maxValue: 5 }, 5, 5, 1],             // clip_by_value: ties pass
      [{ kind: 'relu', maxValue: 5 }, 7, 5, 0],
      [{ kind: 'relu', negativeSlope: 0.1 }, 0, 0, f32(0.1)], // LeakyRelu op: x > 0 ? 1 : a
      [{ kind: 'relu', negativeSlope: 0.1 }, -2, f32(-0.2), f32(0.1)],
      [{ kind: 'relu', threshold: 0.5 }, 0.5, 0, 0],        // x * (x > t): f(t) = 0
      [{ kind: 'relu', threshold: 0.5 }, 0.25, 0, 0],
      [{ kind: 'relu', threshold: 0.5 }, 0.75, 0.75, 1],
      [{ kind: 'relu', maxValue: 6, negativeSlope: 0.1 }, 0, 0, 0], // relu6 - a*relu(-x)
      [{ kind: 'relu', maxValue: 6, negativeSlope: 0.1 }, 6, 6, 0],
      [{ kind: 'relu', maxValue: 6, negativeSlope: 0.1, threshold: 0.5 }, 6, 6, 1], // clip path
      [{ kind: 'relu', maxValue: 6, negativeSlope: 0.1, threshold: 0.5 }, 0.5, 0, 0],
      [{ kind: 'relu', maxValue: 6, negativeSlope: 0.1, threshold: 0.5 }, -1.5, f32(-0.2), f32(0.1)],
      [{ kind: 'relu', maxValue: 6, negativeSlope: 0.1, threshold: 0.5 }, 9, 6, 0],
    ];
    for (const [a, x, y, g] of table) {
      const what = `${describeActivation(a)} at x=${x}`;
      expect(activationScalarRef(x, a), `${what}: reference f`).toBeCloseTo(y, 6);
      expect(activationGradScalarRef(x, a), `${what}: reference f'`).toBeCloseTo(g, 6);
      // 5 elements: scalar path; all the same x so every lane is checked.
      const r = await runActivation(gpu, a, new Float32Array(5).fill(x), new Float32Array(5).fill(1));
      for (let i = 0; i < 5; i++) {
        expect(r.y[i], `${what}: GPU f`).toBeCloseTo(y, 6);
        expect(r.dx[i], `${what}: GPU f'`).toBeCloseTo(g, 6);
      }
    }
  });

  it("matches the Keras docstring's relu examples", async () => {
    const gpu = await testGpu();
    const x = Float32Array.from([-10, -5, 0, 5, 10, 0, 0, 0]); // 8: vec4 path
    const cases: [ActivationSpec, number[]][] = [
      [{ kind: 'relu' }, [0, 0, 0, 5, 10]],
      [{ kind: 'relu', negativeSlope: 0.5 }, [-5, -2.5, 0, 5, 10]],
      [{ kind: 'relu', maxValue: 5 }, [0, 0, 0, 5, 5]],
      [{ kind: 'relu', threshold: 5 }, [-0, -0, 0, 0, 10]],
    ];
    for (const [a, want] of cases) {
      const r = await runActivation(gpu, a, x, new Float32Array(8).fill(1));
      expect(Array.from(r.y.slice(0, 5)), describeActivation(a)).toEqual(want.map((v) => v + 0)); // -0 == 0
      expect(Array.from(activationForwardRef(x, a).slice(0, 5)).map((v) => v + 0)).toEqual(want.map((v) => v + 0));
    }
  });

  it('reference backward matches central finite differences of the reference forward, away from kinks', () => {
    const n = 600;
    const eps = 1e-4;
    for (const a of ALL) {
      // Inputs at least 1e-2 from every kink (0, threshold, maxValue), some with large |x|.
      const kinks = [0, 0.5, 5, 6];
      const x = Float64Array.from(randomArray(n, 3, -9, 9), (v) => (kinks.some((k) => Math.abs(v - k) < 1e-2) ? v + 0.05 : v));
      x.set([20, -20, 40, -40], 0);
      const r = Float64Array.from(randomArray(n, 4));
      const loss = (xs: Float64Array) => activationForwardRef(xs, a).reduce((s, v, i) => s + v * r[i], 0);
      const numeric = Float64Array.from(x, (v, i) => {
        x[i] = v + eps;
        const up = loss(x);
        x[i] = v - eps;
        const down = loss(x);
        x[i] = v;
        return (up - down) / (2 * eps);
      });
      expectClose(activationBackwardRef(x, r, a), numeric, 1e-6, `${describeActivation(a)} reference dx vs finite differences`);
    }
  });

  it('ops are replayable and overwrite their outputs', async () => {
    const gpu = await testGpu();
    const a: ActivationSpec = { kind: 'swish' };
    const kernel = await ActivationKernel.create(gpu, { size: 133, activation: a, label: 'replay' });
    const x = randomArray(133, 1, -4, 4);
    const X = gpu.upload('x', x);
    const Y = output(gpu, 'y', 133);
    const op = kernel.forward({ x: X, y: Y });
    gpu.submit('first', op);
    gpu.write(X, Float32Array.from(x, (v) => -v));
    gpu.submit('second', op);
    expectClose(await gpu.readF32(Y), activationForwardRef(Float32Array.from(x, (v) => -v), a), 1e-5, 'replayed y');
    for (const b of [X, Y]) gpu.destroyBuffer(b);
    kernel.destroy();
  });

  it('rejects bad specs, sizes and buffers, naming the layer', async () => {
    const gpu = await testGpu();
    await expect(ActivationKernel.create(gpu, { size: 8, activation: { kind: 'relu', maxValue: -1 }, label: 'block1_relu' }))
      .rejects.toThrow(/block1_relu: relu\(maxValue=-1\) activation of 8 elements: maxValue must be a finite number >= 0/);
    await expect(ActivationKernel.create(gpu, { size: 8, activation: { kind: 'relu', negativeSlope: Number.NaN }, label: 'r' }))
      .rejects.toThrow(/r: .*negativeSlope must be a finite number >= 0/);
    await expect(ActivationKernel.create(gpu, { size: 8, activation: { kind: 'gelu' } as unknown as ActivationSpec, label: 'g' }))
      .rejects.toThrow(/g: unsupported activation "gelu"; supported: linear, relu, sigmoid, tanh, swish/);
    await expect(ActivationKernel.create(gpu, { size: 0, activation: { kind: 'tanh' }, label: 't' }))
      .rejects.toThrow(/t: tanh activation of 0 elements: size must be a positive integer/);
    const tooBig = gpu.limits.maxStorageBufferBindingSize / 4 + 4;
    await expect(ActivationKernel.create(gpu, { size: tooBig, activation: { kind: 'relu' }, label: 'big' }))
      .rejects.toThrow(/big: .*over this adapter's maxStorageBufferBindingSize/);
    const k = await ActivationKernel.create(gpu, { size: 10, activation: { kind: 'sigmoid' }, label: 's' });
    const b40 = gpu.createBuffer('b40', 40);
    const b40b = gpu.createBuffer('b40b', 40);
    expect(() => k.forward({ x: gpu.createBuffer('small', 8), y: b40 })).toThrow(/s activation.forward sigmoid n=10: buffer 'x' \(small\) is 8 bytes, needs 40/);
    expect(() => k.forward({ x: b40, y: b40 })).toThrow(/s activation.forward sigmoid n=10: 'x' and 'y' are the same buffer \(b40\)/);
    expect(() => k.backward({ x: b40, dy: b40b, dx: b40b })).toThrow(/'dy' and 'dx' are the same buffer/);
    expect(() => k.backward({ x: b40, dy: b40, dx: b40b })).not.toThrow(); // inputs may share
    k.destroy();
  });
});
