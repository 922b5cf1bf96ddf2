import { describe, expect, it } from 'vitest';
import { GlobalPool2dKernel } from '../src/kernels/global-pool2d.ts';
import type { Gpu } from '../src/gpu/index.ts';
import { output, testGpu } from './helpers/gpu.ts';
import { randomArray, rng } from './helpers/random.ts';
import { expectClose } from './helpers/compare.ts';
import { globalPoolBackwardRef, globalPoolForwardRef, type GlobalPoolDims } from './reference/global-pool2d.ts';

/** Runs forward and backward on given x and dy; outputs start as NaN. */
async function runPool(gpu: Gpu, d: GlobalPoolDims, x: Float32Array, dy: Float32Array): Promise<{ y: Float32Array; dx: Float32Array }> {
  const kernel = await GlobalPool2dKernel.create(gpu, { ...d, label: 'test_gp' });
  const X = gpu.upload('x', x);
  const DY = gpu.upload('dy', dy);
  const Y = output(gpu, 'y', d.batch * d.channels);
  const DX = output(gpu, 'dx', x.length);
  gpu.submit('global pool test', [kernel.forward({ x: X, y: Y }), kernel.backward({ x: X, dy: DY, dx: DX })]);
  const [y, dx] = await Promise.all([gpu.readF32(Y), gpu.readF32(DX)]);
  for (const b of [X, DY, Y, DX]) gpu.destroyBuffer(b);
  kernel.destroy();
  return { y, dx };
}

/** Distinct values spaced >= 0.01 apart in random order: no ties, argmax stable under +-1e-3. */
function distinctArray(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const v = Float32Array.from({ length: n }, (_, i) => (i - n / 2) * 0.01);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
  return v;
}

const dims = (batch: number, height: number, width: number, channels: number, mode: 'avg' | 'max'): GlobalPoolDims => ({ batch, height, width, channels, mode });
const text = (d: GlobalPoolDims) => `${d.mode} ${d.batch}x${d.height}x${d.width}x${d.channels}`;

// Channels 3, 4, 8 plus partial channel blocks (40 = 10 vec4 over blocks of 8, 70 scalar over
// blocks of 32), a single position (fewer positions than position lanes), and a tall narrow map.
const sizes: [number, number, number, number][] = [
  [2, 5, 7, 3], [1, 7, 7, 4], [2, 3, 5, 8], [1, 9, 9, 40], [2, 4, 3, 70], [3, 1, 1, 5], [1, 1, 1, 4], [1, 29, 31, 8],
];

describe('global_pool2d', () => {
  for (const mode of ['avg', 'max'] as const) {
    it(`${mode}: forward and backward match the reference (scalar and vec4 channels)`, async () => {
      const gpu = await testGpu();
      for (const [N, H, W, C] of sizes) {
        const d = dims(N, H, W, C, mode);
        const x = randomArray(N * H * W * C, H * 100 + C);
        const dy = randomArray(N * C, 5 + W);
        const r = await runPool(gpu, d, x, dy);
        expectClose(r.y, globalPoolForwardRef(x, d), 1e-5, `${text(d)} y`);
        expectClose(r.dx, globalPoolBackwardRef(x, dy, d), 1e-6, `${text(d)} dx`);
      }
    });
  }

  it('the MobileNet head shape (7x7x1280) reduces exactly as the reference', async () => {
    const gpu = await testGpu();
    for (const mode of ['avg', 'max'] as const) {
      const d = dims(1, 7, 7, 1280, mode);
      const x = randomArray(7 * 7 * 1280, 3);
      const dy = randomArray(1280, 4);
      const r = await runPool(gpu, d, x, dy);
      expectClose(r.y, globalPoolForwardRef(x, d), 1e-5, `${text(d)} y`);
      expectClose(r.dx, globalPoolBackwardRef(x, dy, d), 1e-6, `${text(d)} dx`);
    }
  });

  it('max ties: the gradient goes to the first maximum in row-major order only', async () => {
    const gpu = await testGpu();
    // Per (n, c), the maximum 2 sits at 1-3 random positions among values in [-1, 1); the
    // lowest of them must win, whichever position lane it falls in.
    const r = rng(42);
    for (const [N, H, W, C] of [[2, 6, 7, 3], [1, 5, 9, 8], [1, 1, 3, 4]]) {
      const d = dims(N, H, W, C, 'max');
      const HW = H * W;
      const x = randomArray(N * HW * C, 7);
      for (let n = 0; n < N; n++) {
        for (let c = 0; c < C; c++) {
          const ties = 1 + Math.floor(r() * 3);
          for (let t = 0; t < ties; t++) x[(n * HW + Math.floor(r() * HW)) * C + c] = 2;
        }
      }
      const dy = Float32Array.from({ length: N * C }, (_, i) => 1 + i);
      const run = await runPool(gpu, d, x, dy);
      expectClose(run.dx, globalPoolBackwardRef(x, dy, d), 0, `${text(d)} dx with ties`);
      expect(Array.from(run.dx).filter((v) => v !== 0).length).toBe(N * C);
      // all equal: position 0 wins
      const flat = await runPool(gpu, d, new Float32Array(N * HW * C).fill(0.5), dy);
      for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) expect(flat.dx[n * HW * C + c]).toBe(dy[n * C + c]);
      expect(Array.from(flat.dx).filter((v) => v !== 0).length).toBe(N * C);
    }
  });

  it('backward matches central finite differences (max: inputs without ties)', async () => {
    const gpu = await testGpu();
    for (const mode of ['avg', 'max'] as const) {
      for (const [N, H, W, C] of [[2, 5, 7, 3], [1, 3, 5, 4]]) {
        const d = dims(N, H, W, C, mode);
        const n = N * H * W * C;
        const x = distinctArray(n, n);
        const r = randomArray(N * C, 17);
        const run = await runPool(gpu, d, x, r);
        const xs = Float64Array.from(x);
        const loss = () => globalPoolForwardRef(xs, d).reduce((s, v, i) => s + v * r[i], 0);
        const eps = 1e-3;
        const numeric = Float64Array.from(xs, (v, i) => {
          xs[i] = v + eps;
          const up = loss();
          xs[i] = v - eps;
          const down = loss();
          xs[i] = v;
          return (up - down) / (2 * eps);
        });
        expectClose(globalPoolBackwardRef(x, r, d), numeric, 1e-9, `${text(d)} reference dx vs finite differences`);
        expectClose(run.dx, numeric, 1e-5, `${text(d)} dx vs finite differences`);
      }
    }
  });

  it('rejects bad shapes and buffers, naming the layer', async () => {
    const gpu = await testGpu();
    await expect(GlobalPool2dKernel.create(gpu, { batch: 1, height: 0, width: 5, channels: 3, mode: 'avg', label: 'gap' }))
      .rejects.toThrow(/gap: GlobalAveragePooling2D input \[1,0,5,3\]: height must be a positive integer, got 0/);
    await expect(GlobalPool2dKernel.create(gpu, { batch: 1, height: 2, width: 2, channels: 3, mode: 'sum' as 'avg', label: 'g' }))
      .rejects.toThrow(/g: global pooling mode must be 'avg' or 'max', got sum/);
    const tooBig = Math.floor(gpu.limits.maxStorageBufferBindingSize / 4 / (64 * 64 * 64)) + 1;
    await expect(GlobalPool2dKernel.create(gpu, { batch: tooBig, height: 64, width: 64, channels: 64, mode: 'max', label: 'big' }))
      .rejects.toThrow(/big: GlobalMaxPooling2D .*over this adapter's maxStorageBufferBindingSize/);
    const k = await GlobalPool2dKernel.create(gpu, { batch: 2, height: 3, width: 3, channels: 2, mode: 'max', label: 'gmp' });
    const dy = gpu.createBuffer('dy', 16);
    const dx = gpu.createBuffer('dx', 144);
    expect(() => k.backward({ dy, dx })).toThrow(/gmp global_pool2d.backward max N=2 H=3 W=3 C=2: .*needs x/);
    expect(() => k.forward({ x: dx, y: gpu.createBuffer('y', 8) })).toThrow(/gmp global_pool2d.forward max .*buffer 'y' \(y\) is 8 bytes, needs 16/);
    k.destroy();
  });
});
