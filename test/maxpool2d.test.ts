import { describe, expect, it } from 'vitest';
import { MaxPool2dKernel, pool2dGeometry } from '../src/kernels/maxpool2d.ts';
import type { Gpu } from '../src/gpu/index.ts';
import { output, testGpu } from './helpers/gpu.ts';
import { randomArray, rng } from './helpers/random.ts';
import { expectClose } from './helpers/compare.ts';
import { maxPoolBackwardRef, maxPoolForwardRef, poolOutSize, type PoolDims } from './reference/maxpool2d.ts';

/** Runs forward and backward on given x and dy; outputs start as NaN. */
async function runPool(gpu: Gpu, d: PoolDims, x: Float32Array, dy?: Float32Array): Promise<{ y: Float32Array; dx: Float32Array; kernel: MaxPool2dKernel }> {
  const kernel = await MaxPool2dKernel.create(gpu, { ...d, label: 'test_pool' });
  const [OH, OW] = poolOutSize(d);
  expect([kernel.outHeight, kernel.outWidth]).toEqual([OH, OW]);
  const outN = d.batch * OH * OW * d.channels;
  const X = gpu.upload('x', x);
  const DY = gpu.upload('dy', dy ?? randomArray(outN, 99));
  const Y = output(gpu, 'y', outN);
  const DX = output(gpu, 'dx', x.length);
  gpu.submit('pool test', [kernel.forward({ x: X, y: Y }), kernel.backward({ x: X, dy: DY, dx: DX })]);
  const [y, dx] = await Promise.all([gpu.readF32(Y), gpu.readF32(DX)]);
  for (const b of [X, DY, Y, DX]) gpu.destroyBuffer(b);
  kernel.destroy();
  return { y, dx, kernel };
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

const dims = (batch: number, height: number, width: number, channels: number, poolSize: [number, number] = [2, 2], strides: [number, number] = poolSize): PoolDims =>
  ({ batch, height, width, channels, poolSize, strides });
const same = (d: PoolDims): PoolDims => ({ ...d, padding: 'same' });
const text = (d: PoolDims) => `${d.batch}x${d.height}x${d.width}x${d.channels} pool ${d.poolSize.join('x')}/${d.strides.join('x')} ${d.padding ?? 'valid'}`;

describe('maxpool2d', () => {
  it('2x2/2 forward and backward match the reference on odd sizes (scalar and vec4 channels)', async () => {
    const gpu = await testGpu();
    const cases = [dims(1, 7, 11, 3), dims(3, 15, 22, 5), dims(1, 5, 5, 64), dims(3, 7, 11, 65), dims(3, 15, 22, 64), dims(1, 2, 2, 4)];
    for (const d of cases) {
      const x = randomArray(d.batch * d.height * d.width * d.channels, d.height * 100 + d.channels);
      const dy = randomArray(d.batch * poolOutSize(d)[0] * poolOutSize(d)[1] * d.channels, 5);
      const r = await runPool(gpu, d, x, dy);
      expectClose(r.y, maxPoolForwardRef(x, d), 1e-6, `${text(d)} y`);
      expectClose(r.dx, maxPoolBackwardRef(x, dy, d), 1e-6, `${text(d)} dx`);
    }
  });

  it('other pool sizes and strides: overlapping (gather) and gapped (owned) windows', async () => {
    const gpu = await testGpu();
    const cases = [
      dims(2, 7, 11, 3, [3, 3], [2, 2]), dims(1, 9, 8, 8, [3, 3], [2, 2]), // overlapping
      dims(2, 6, 7, 5, [2, 2], [1, 1]), dims(1, 6, 7, 4, [2, 3], [1, 2]),   // overlapping
      dims(2, 8, 11, 3, [2, 2], [3, 3]), dims(1, 10, 9, 8, [2, 1], [3, 2]), // gaps between windows
      dims(1, 7, 11, 4, [3, 3], [3, 3]),                                     // 3x3/3 floors both
    ];
    for (const d of cases) {
      const x = randomArray(d.batch * d.height * d.width * d.channels, d.width * 10 + d.channels);
      const dy = randomArray(d.batch * poolOutSize(d)[0] * poolOutSize(d)[1] * d.channels, 6);
      const r = await runPool(gpu, d, x, dy);
      expectClose(r.y, maxPoolForwardRef(x, d), 1e-6, `${text(d)} y`);
      expectClose(r.dx, maxPoolBackwardRef(x, dy, d), 1e-6, `${text(d)} dx`);
    }
  });

  it("padding 'same': output and padding as TF", () => {
    // [in, pool, stride] -> [out, pad top]; total pad = max((out - 1) * stride + pool - in, 0)
    const cases: [number, number, number, number, number][] = [
      [7, 3, 2, 4, 1], [8, 3, 2, 4, 0], [7, 2, 2, 4, 0], [6, 2, 2, 3, 0], [7, 3, 1, 7, 1],
      [7, 1, 2, 4, 0], [5, 4, 1, 5, 1], [2, 3, 2, 1, 0], [1, 3, 1, 1, 1],
    ];
    for (const [n, p, st, out, pad] of cases) {
      const g = pool2dGeometry(n, 5, [p, 1], [st, 1], 'same');
      expect([g.outHeight, g.padTop], `${n} pool ${p}/${st}`).toEqual([out, pad]);
    }
  });

  it("padding 'same' forward and backward match the reference (padded positions never win)", async () => {
    const gpu = await testGpu();
    const cases = [
      same(dims(2, 7, 9, 3, [3, 3], [2, 2])), same(dims(1, 8, 10, 4, [3, 3], [2, 2])), // 3x3/2 odd, even
      same(dims(1, 8, 7, 5, [3, 3], [2, 2])), same(dims(2, 9, 8, 8, [3, 3], [2, 2])),  // mixed
      same(dims(2, 7, 11, 3)), same(dims(1, 9, 5, 4)),                                  // 2x2/2 odd
      same(dims(1, 7, 8, 3, [1, 1], [2, 2])), same(dims(1, 7, 8, 4, [1, 1], [2, 2])),   // 1x1/2
      same(dims(1, 7, 9, 3, [3, 3], [1, 1])), same(dims(1, 7, 10, 4, [3, 3], [3, 3])),  // 3x3/1, 3x3/3
      same(dims(1, 8, 9, 4, [2, 3], [3, 2])), same(dims(1, 1, 5, 3, [2, 2], [2, 2])),   // gapped; input < window
    ];
    for (const d of cases) {
      // all-negative x: a padded position read as 0 would win every window it is in
      const x = randomArray(d.batch * d.height * d.width * d.channels, d.height * 31 + d.channels, -2, -1);
      const dy = randomArray(d.batch * poolOutSize(d)[0] * poolOutSize(d)[1] * d.channels, 7);
      const r = await runPool(gpu, d, x, dy);
      expectClose(r.y, maxPoolForwardRef(x, d), 1e-6, `${text(d)} y`);
      expectClose(r.dx, maxPoolBackwardRef(x, dy, d), 1e-6, `${text(d)} dx`);
    }
  });

  it('ties: the gradient goes to the first maximum in row-major window order only', async () => {
    const gpu = await testGpu();
    // One 4x4 image, 2x2/2: windows with (a) all equal, (b) a tie on the second row,
    // (c) a tie between the 2nd and 4th element, (d) no tie. Replicated over C channels
    // with a per-channel offset, so scalar (C = 1, 3) and vec4 (C = 4) paths see the same ties.
    const img = [
      [5, 5, 1, 9],
      [5, 5, 9, 2],
      [0, 1, 3, 4],
      [2, 2, 7, 4],
    ];
    for (const C of [1, 3, 4]) {
      for (const poolStrides of [[2, 2], [1, 1]] as const) {
        const d = dims(1, 4, 4, C, [2, 2], [poolStrides[0], poolStrides[1]]);
        const x = new Float32Array(16 * C);
        for (let h = 0; h < 4; h++) for (let w = 0; w < 4; w++) for (let c = 0; c < C; c++) x[(h * 4 + w) * C + c] = img[h][w] + c;
        const [OH, OW] = poolOutSize(d);
        const dy = Float32Array.from({ length: OH * OW * C }, (_, i) => 1 + i);
        const r = await runPool(gpu, d, x, dy);
        const ref = maxPoolBackwardRef(x, dy, d);
        expectClose(r.dx, ref, 0, `${text(d)} dx with ties`);
        if (poolStrides[0] === 2) {
          // window (0,0) all 5s -> (0,0); window (0,1) [1 9; 9 2] -> (0,3); window (1,0)
          // [0 1; 2 2] -> (3,0); window (1,1) [3 4; 7 4] -> (3,2)
          const at = (h: number, w: number) => r.dx[(h * 4 + w) * C];
          expect([at(0, 0), at(0, 3), at(3, 0), at(3, 2)]).toEqual([dy[0], dy[C], dy[2 * C], dy[3 * C]]);
          expect(Array.from(r.dx).filter((v) => v !== 0).length).toBe(4 * C);
        }
      }
    }
  });

  it('backward matches central finite differences (inputs without ties)', async () => {
    const gpu = await testGpu();
    for (const d of [dims(2, 5, 7, 3), dims(1, 5, 6, 4, [3, 3], [2, 2]), dims(1, 7, 5, 4), same(dims(1, 5, 6, 3, [3, 3], [2, 2])), same(dims(1, 5, 7, 4))]) {
      const n = d.batch * d.height * d.width * d.channels;
      const x = distinctArray(n, n);
      const [OH, OW] = poolOutSize(d);
      const r = randomArray(d.batch * OH * OW * d.channels, 17);
      const run = await runPool(gpu, d, x, r);
      const xs = Float64Array.from(x);
      const loss = () => maxPoolForwardRef(xs, d).reduce((s, v, i) => s + v * r[i], 0);
      const eps = 1e-3;
      const numeric = Float64Array.from(xs, (v, i) => {
        xs[i] = v + eps;
        const up = loss();
        xs[i] = v - eps;
        const down = loss();
        xs[i] = v;
        return (up - down) / (2 * eps);
      });
      expectClose(run.dx, numeric, 1e-3, `${text(d)} dx vs finite differences`);
    }
  });

  it('rejects shapes it cannot pool, naming the layer', async () => {
    const gpu = await testGpu();
    await expect(MaxPool2dKernel.create(gpu, { batch: 1, height: 1, width: 5, channels: 3, label: 'block9_pool' }))
      .rejects.toThrow(/block9_pool: MaxPool2D input \[1,1,5,3\] pool 2x2 strides 2x2: the input \(1x5\) is smaller than the pool window/);
    await expect(MaxPool2dKernel.create(gpu, { batch: 1, height: 4, width: 4, channels: 0, label: 'p' }))
      .rejects.toThrow(/p: MaxPool2D.*channels must be a positive integer, got 0/);
    await expect(MaxPool2dKernel.create(gpu, { batch: 1, height: 4, width: 4, channels: 3, padding: 'full' as 'same', label: 'p3' }))
      .rejects.toThrow(/p3: MaxPool2D input \[1,4,4,3\] pool 2x2 strides 2x2 padding full: padding must be 'valid' or 'same'/);
    const tooBig = Math.floor(gpu.limits.maxStorageBufferBindingSize / 4 / (64 * 64 * 64)) + 1;
    await expect(MaxPool2dKernel.create(gpu, { batch: tooBig, height: 64, width: 64, channels: 64, label: 'big' }))
      .rejects.toThrow(/big: .*over this adapter's maxStorageBufferBindingSize/);
    const k = await MaxPool2dKernel.create(gpu, { batch: 1, height: 4, width: 4, channels: 2, label: 'p2' });
    expect(() => k.forward({ x: gpu.createBuffer('x', 4), y: gpu.createBuffer('y', 64) })).toThrow(/p2 maxpool2d.forward N=1 H=4 W=4 C=2.*buffer 'x' \(x\) is 4 bytes, needs 128/);
    k.destroy();
  });
});
