import { describe, expect, it } from 'vitest';
import { DropoutKernel, dropoutBits, dropoutKeep, dropoutThreshold } from '../src/kernels/dropout.ts';
import type { Gpu } from '../src/gpu/index.ts';
import { output, testGpu } from './helpers/gpu.ts';
import { randomArray, rng } from './helpers/random.ts';
import { expectClose } from './helpers/compare.ts';
import { dropoutBitsRef, dropoutRef } from './reference/dropout.ts';

/** Runs forward (and optionally backward) once at `step`; returns the outputs. */
async function run(gpu: Gpu, k: DropoutKernel, x: Float32Array, step: number, dy?: Float32Array) {
  const n = x.length;
  const xb = gpu.upload('x', x);
  const yb = output(gpu, 'y', n);
  const ops = [k.forward({ x: xb, y: yb })];
  let dyb: GPUBuffer | undefined;
  let dxb: GPUBuffer | undefined;
  if (dy) {
    dyb = gpu.upload('dy', dy);
    dxb = output(gpu, 'dx', n);
    ops.push(k.backward({ dy: dyb, dx: dxb }));
  }
  k.setStep(step);
  gpu.submit(`dropout test step ${step}`, ops);
  const y = await gpu.readF32(yb);
  const dx = dxb ? await gpu.readF32(dxb) : undefined;
  for (const b of [xb, yb, dyb, dxb]) if (b) gpu.destroyBuffer(b);
  return { y, dx };
}

/** Same device, pretending to have smaller limits (chunked bindings, folded grids). */
function withLimits(gpu: Gpu, overrides: Record<string, number>): Gpu {
  const limits: Record<string, number> = {};
  for (const k in gpu.limits) limits[k] = (gpu.limits as unknown as Record<string, number>)[k];
  return Object.create(gpu, { limits: { value: { ...limits, ...overrides } } }) as Gpu;
}

/** Nonzero x (so a zero output can only mean "dropped"). */
function nonzero(n: number, seed: number): Float32Array {
  const x = randomArray(n, seed, 0.1, 2);
  const r = rng(seed + 1);
  for (let i = 0; i < n; i++) if (r() < 0.5) x[i] = -x[i];
  return x;
}

describe('dropout hash', () => {
  it('matches its definition (BigInt arithmetic) on edge and random counters', () => {
    const r = rng(5);
    const cases: [number, number, number][] = [[0, 0, 0], [0xffffffff, 0xffffffff, 0xffffffff], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0x9e3779b9, 3, 12345]];
    for (let i = 0; i < 200; i++) cases.push([Math.floor(r() * 2 ** 32), Math.floor(r() * 2 ** 20), Math.floor(r() * 2 ** 32)]);
    for (const [seed, step, index] of cases) expect(dropoutBits(seed, step, index), `${seed},${step},${index}`).toBe(dropoutBitsRef(seed, step, index));
  });

  it('thresholds rates exactly: 0 keeps everything, 0.5 is 2^31', () => {
    expect(dropoutThreshold(0)).toBe(0);
    expect(dropoutThreshold(0.5)).toBe(2 ** 31);
    expect(dropoutThreshold(1 - 2 ** -40)).toBe(0xffffffff);
    for (let i = 0; i < 1000; i++) expect(dropoutKeep(77, 3, i, 0)).toBe(true);
  });
});

describe('dropout kernel', () => {
  it('forward matches the reference mask exactly and values within 1e-6 (n=1037, rate 0.5)', async () => {
    const gpu = await testGpu();
    const n = 1037; // not a multiple of the workgroup size
    const k = await DropoutKernel.create(gpu, { size: n, rate: 0.5, seed: 1234, label: 'drop' });
    const x = nonzero(n, 1);
    const { y } = await run(gpu, k, x, 7);
    const ref = dropoutRef(x, 1234, 7, 0.5);
    for (let i = 0; i < n; i++) expect(y[i] === 0, `mask at ${i}`).toBe(ref[i] === 0);
    expectClose(y, ref, 1e-6, 'y');
    k.destroy();
  });

  for (const rate of [0.5, 0.2]) {
    it(`keeps a fraction 1 - ${rate} of 1e5 elements (within 4 sigma)`, async () => {
      const gpu = await testGpu();
      const n = 100_000;
      const k = await DropoutKernel.create(gpu, { size: n, rate, seed: 99, label: 'drop' });
      const x = nonzero(n, 2);
      const { y } = await run(gpu, k, x, 0);
      let kept = 0;
      for (let i = 0; i < n; i++) if (y[i] !== 0) kept++;
      const p = 1 - rate;
      const sigma = Math.sqrt(n * p * (1 - p));
      expect(Math.abs(kept - n * p), `kept ${kept} of ${n}`).toBeLessThan(4 * sigma);
      // the mask must also be the one TS computes, element by element
      for (let i = 0; i < n; i++) if ((y[i] !== 0) !== dropoutKeep(99, 0, i, rate)) expect.fail(`mask differs at ${i}`);
      k.destroy();
    });
  }

  it('backward regenerates the forward mask (same zeros, same scale)', async () => {
    const gpu = await testGpu();
    const n = 4099;
    const rate = 0.3;
    const k = await DropoutKernel.create(gpu, { size: n, rate, seed: 42, label: 'drop' });
    const x = nonzero(n, 3);
    const dy = nonzero(n, 4);
    const { y, dx } = await run(gpu, k, x, 11, dy);
    for (let i = 0; i < n; i++) {
      if ((y[i] === 0) !== (dx![i] === 0)) expect.fail(`forward and backward masks differ at ${i}`);
    }
    const s = Math.fround(1 / (1 - rate));
    for (let i = 0; i < n; i++) {
      if (y[i] !== 0 && (y[i] !== Math.fround(x[i] * s) || dx![i] !== Math.fround(dy[i] * s))) expect.fail(`scale differs at ${i}`);
    }
    expectClose(dx!, dropoutRef(dy, 42, 11, rate), 1e-6, 'dx');
    k.destroy();
  });

  it('backward matches central finite differences of L = sum(y .* r)', async () => {
    const gpu = await testGpu();
    const n = 300;
    const rate = 0.4;
    const k = await DropoutKernel.create(gpu, { size: n, rate, seed: 8, label: 'drop' });
    const x = Float64Array.from(randomArray(n, 5));
    const r = randomArray(n, 6);
    const L = (xs: Float64Array) => dropoutRef(xs, 8, 2, rate).reduce((acc, v, i) => acc + v * r[i], 0);
    const eps = 1e-3;
    const fd = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const xp = Float64Array.from(x);
      const xm = Float64Array.from(x);
      xp[i] += eps;
      xm[i] -= eps;
      fd[i] = (L(xp) - L(xm)) / (2 * eps);
    }
    const { dx } = await run(gpu, k, Float32Array.from(x), 2, r);
    expectClose(dx!, fd, 1e-3, 'dx vs finite differences');
    k.destroy();
  });

  it('the same (seed, step) gives the same mask; another step or seed a different one', async () => {
    const gpu = await testGpu();
    const n = 5000;
    const rate = 0.5;
    const x = nonzero(n, 7);
    const a = await DropoutKernel.create(gpu, { size: n, rate, seed: 1, label: 'a' });
    const b = await DropoutKernel.create(gpu, { size: n, rate, seed: 2, label: 'b' });
    const y1 = (await run(gpu, a, x, 3)).y;
    const y2 = (await run(gpu, a, x, 4)).y;
    const y3 = (await run(gpu, a, x, 3)).y;
    const y4 = (await run(gpu, b, x, 3)).y;
    expect(Array.from(y3)).toEqual(Array.from(y1));
    const differing = (u: Float32Array, v: Float32Array) => u.reduce((c, _, i) => c + ((u[i] === 0) !== (v[i] === 0) ? 1 : 0), 0);
    // independent masks at rate 0.5 differ in about half the positions
    for (const [what, other] of [['step', y2], ['seed', y4]] as const) {
      const d = differing(y1, other);
      expect(Math.abs(d - n / 2), `masks differing by ${what}: ${d} of ${n}`).toBeLessThan(4 * Math.sqrt(n / 4));
    }
    a.destroy();
    b.destroy();
  });

  it('rate 0 is the identity', async () => {
    const gpu = await testGpu();
    const n = 777;
    const k = await DropoutKernel.create(gpu, { size: n, rate: 0, seed: 3, label: 'drop' });
    const x = randomArray(n, 9);
    const dy = randomArray(n, 10);
    const { y, dx } = await run(gpu, k, x, 5, dy);
    expect(Array.from(y)).toEqual(Array.from(x));
    expect(Array.from(dx!)).toEqual(Array.from(dy));
    k.destroy();
  });

  it('splits tensors larger than one binding into chunks and folds large grids, with the same mask', async () => {
    const gpu = await testGpu();
    // 4 KiB bindings (1024 floats per chunk) and at most 3 workgroups per grid dimension.
    const small = withLimits(gpu, { maxStorageBufferBindingSize: 4096, maxComputeWorkgroupsPerDimension: 3 });
    const n = 5000; // 5 chunks, the last one partial
    const k = await DropoutKernel.create(small, { size: n, rate: 0.25, seed: 17, label: 'chunked' });
    const x = nonzero(n, 11);
    const dy = nonzero(n, 12);
    const xb = gpu.upload('x', x);
    const yb = output(gpu, 'y', n);
    const dyb = gpu.upload('dy', dy);
    const dxb = output(gpu, 'dx', n);
    const fwd = k.forward({ x: xb, y: yb });
    expect(fwd.label).toMatch(/chunked dropout.forward n=5000 rate=0.25 chunk=0\+1024/);
    k.setStep(6);
    gpu.submit('dropout chunked', [fwd, k.backward({ dy: dyb, dx: dxb })]);
    expectClose(await gpu.readF32(yb), dropoutRef(x, 17, 6, 0.25), 1e-6, 'y');
    expectClose(await gpu.readF32(dxb), dropoutRef(dy, 17, 6, 0.25), 1e-6, 'dx');
    k.destroy();
    for (const b of [xb, yb, dyb, dxb]) gpu.destroyBuffer(b);
  });

  it('handles 2^24 + 3 elements (a 2-D grid of workgroups) on the real limits', async () => {
    const gpu = await testGpu();
    const n = 2 ** 24 + 3;
    const k = await DropoutKernel.create(gpu, { size: n, rate: 0.5, seed: 5, label: 'big' });
    const x = new Float32Array(n).fill(1);
    const { y } = await run(gpu, k, x, 1);
    // check a stride of elements plus the tail (the JS hash over all 16M is slow)
    for (let i = 0; i < n; i += i < n - 1000 ? 997 : 1) {
      const want = dropoutKeep(5, 1, i, 0.5) ? 2 : 0;
      if (y[i] !== want) expect.fail(`element ${i} is ${y[i]}, expected ${want}`);
    }
    k.destroy();
  });

  it('rejects rates outside [0, 1), naming the layer', async () => {
    const gpu = await testGpu();
    for (const rate of [1, -0.1, 1.5, Number.NaN]) {
      await expect(DropoutKernel.create(gpu, { size: 10, rate, seed: 0, label: 'dropout_7' })).rejects.toThrow(/dropout_7: dropout rate must be in \[0, 1\)/);
    }
    await expect(DropoutKernel.create(gpu, { size: 0, rate: 0.5, seed: 0, label: 'dropout_7' })).rejects.toThrow(/dropout_7: dropout size/);
    const k = await DropoutKernel.create(gpu, { size: 100, rate: 0.5, seed: 0, label: 'dropout_7' });
    const small = gpu.createBuffer('small', 40);
    expect(() => k.forward({ x: small, y: small })).toThrow(/dropout_7: dropout.forward needs x of at least 100 floats/);
    gpu.destroyBuffer(small);
    k.destroy();
  });

  it('destroy releases what the kernel allocated', async () => {
    const gpu = await testGpu();
    const before = gpu.memory();
    const k = await DropoutKernel.create(gpu, { size: 64, rate: 0.5, seed: 0, label: 'drop' });
    const a = gpu.createBuffer('a', 256);
    const b = gpu.createBuffer('b', 256);
    k.forward({ x: a, y: b });
    k.backward({ dy: b, dx: a });
    gpu.destroyBuffer(a);
    gpu.destroyBuffer(b);
    k.destroy();
    expect(gpu.memory()).toEqual(before);
  });
});
