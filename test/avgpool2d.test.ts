import { describe, expect, it } from 'vitest';
import { AvgPool2dKernel } from '../src/kernels/avgpool2d.ts';
import type { Gpu } from '../src/gpu/index.ts';
import { output, poison, testGpu } from './helpers/gpu.ts';
import { randomArray } from './helpers/random.ts';
import { expectClose } from './helpers/compare.ts';
import { poolOutSize, type PoolDims } from './reference/maxpool2d.ts';
import { avgPoolBackwardRef, avgPoolForwardRef } from './reference/avgpool2d.ts';

/** Runs forward and backward on given x and dy; outputs start as NaN. */
async function runPool(gpu: Gpu, d: PoolDims, x: Float32Array, dy: Float32Array): Promise<{ y: Float32Array; dx: Float32Array }> {
  const kernel = await AvgPool2dKernel.create(gpu, { ...d, label: 'test_avg' });
  const [OH, OW] = poolOutSize(d);
  expect([kernel.outHeight, kernel.outWidth]).toEqual([OH, OW]);
  const X = gpu.upload('x', x);
  const DY = gpu.upload('dy', dy);
  const Y = output(gpu, 'y', d.batch * OH * OW * d.channels);
  const DX = output(gpu, 'dx', x.length);
  gpu.submit('avgpool test', [kernel.forward({ x: X, y: Y }), kernel.backward({ dy: DY, dx: DX })]);
  const [y, dx] = await Promise.all([gpu.readF32(Y), gpu.readF32(DX)]);
  for (const b of [X, DY, Y, DX]) gpu.destroyBuffer(b);
  kernel.destroy();
  return { y, dx };
}

const dims = (batch: number, height: number, width: number, channels: number, poolSize: [number, number], strides: [number, number], padding: 'valid' | 'same'): PoolDims =>
  ({ batch, height, width, channels, poolSize, strides, padding });
const text = (d: PoolDims) => `${d.batch}x${d.height}x${d.width}x${d.channels} pool ${d.poolSize.join('x')}/${d.strides.join('x')} ${d.padding}`;
const outLength = (d: PoolDims) => d.batch * poolOutSize(d)[0] * poolOutSize(d)[1] * d.channels;

// pool 3/2 'valid', 2/2 'same', 3/1 'same', 2/2 'valid', on odd (and one even) sizes
const geometries: [[number, number], [number, number], 'valid' | 'same'][] = [
  [[3, 3], [2, 2], 'valid'], [[2, 2], [2, 2], 'same'], [[3, 3], [1, 1], 'same'], [[2, 2], [2, 2], 'valid'],
];

describe('avgpool2d', () => {
  it('forward and backward match the reference (channels 3, 4, 8; scalar and vec4 paths)', async () => {
    const gpu = await testGpu();
    for (const [pool, strides, padding] of geometries) {
      for (const [N, H, W, C] of [[2, 7, 9, 3], [1, 9, 7, 4], [1, 5, 8, 8]]) {
        const d = dims(N, H, W, C, pool, strides, padding);
        const x = randomArray(N * H * W * C, H * 100 + C + pool[0]);
        const dy = randomArray(outLength(d), 5 + strides[0]);
        const r = await runPool(gpu, d, x, dy);
        expectClose(r.y, avgPoolForwardRef(x, d), 1e-6, `${text(d)} y`);
        expectClose(r.dx, avgPoolBackwardRef(dy, d), 1e-6, `${text(d)} dx`);
      }
    }
  });

  it("'same' divides by the count of real elements; 'valid' leaves dropped rows/columns at 0", async () => {
    const gpu = await testGpu();
    // 3x3 ones, 2x2/2 'same': out 2x2, pad 1 below/right. All windows average to 1 (a PH*PW
    // divisor would give 0.5 and 0.25 at the edges).
    const d = dims(1, 3, 3, 1, [2, 2], [2, 2], 'same');
    const r = await runPool(gpu, d, new Float32Array(9).fill(1), new Float32Array([1, 1, 1, 1]));
    expect(Array.from(r.y)).toEqual([1, 1, 1, 1]);
    expect(Array.from(r.dx)).toEqual([0.25, 0.25, 0.5, 0.25, 0.25, 0.5, 0.5, 0.5, 1]);
    // 3x3 'valid' 2x2/2: one window, the last row and column get no gradient
    const v = dims(1, 3, 3, 1, [2, 2], [2, 2], 'valid');
    const rv = await runPool(gpu, v, Float32Array.from({ length: 9 }, (_, i) => i), new Float32Array([4]));
    expect(Array.from(rv.y)).toEqual([(0 + 1 + 3 + 4) / 4]);
    expect(Array.from(rv.dx)).toEqual([1, 1, 0, 1, 1, 0, 0, 0, 0]);
  });

  it('backward matches central finite differences of the reference forward', async () => {
    const gpu = await testGpu();
    for (const [pool, strides, padding] of geometries) {
      const d = dims(1, 5, 7, 3, pool, strides, padding);
      const x = randomArray(5 * 7 * 3, 11 + pool[0]);
      const r = randomArray(outLength(d), 17);
      const run = await runPool(gpu, d, x, r);
      const xs = Float64Array.from(x);
      const loss = () => avgPoolForwardRef(xs, d).reduce((s, v, i) => s + v * r[i], 0);
      const eps = 1e-3;
      const numeric = Float64Array.from(xs, (v, i) => {
        xs[i] = v + eps;
        const up = loss();
        xs[i] = v - eps;
        const down = loss();
        xs[i] = v;
        return (up - down) / (2 * eps);
      });
      expectClose(avgPoolBackwardRef(r, d), numeric, 1e-9, `${text(d)} reference dx vs finite differences`);
      expectClose(run.dx, numeric, 1e-5, `${text(d)} dx vs finite differences`);
    }
  });

  it('ops replay: submitting the same forward op again rewrites y', async () => {
    const gpu = await testGpu();
    const d = dims(1, 6, 5, 4, [3, 3], [2, 2], 'same');
    const k = await AvgPool2dKernel.create(gpu, d);
    const x = randomArray(6 * 5 * 4, 3);
    const X = gpu.upload('x', x);
    const Y = output(gpu, 'y', k.outputSize);
    const op = k.forward({ x: X, y: Y });
    gpu.submit('first', op);
    const first = await gpu.readF32(Y);
    poison(gpu, Y);
    gpu.submit('again', op);
    expect(await gpu.readF32(Y)).toEqual(first);
    expectClose(first, avgPoolForwardRef(x, d), 1e-6, 'replayed y');
    for (const b of [X, Y]) gpu.destroyBuffer(b);
    k.destroy();
  });

  it('rejects shapes it cannot pool, naming the layer', async () => {
    const gpu = await testGpu();
    await expect(AvgPool2dKernel.create(gpu, { batch: 1, height: 2, width: 5, channels: 3, poolSize: [3, 3], label: 'avg9' }))
      .rejects.toThrow(/avg9: AveragePooling2D input \[1,2,5,3\] pool 3x3 strides 3x3: the input \(2x5\) is smaller than the pool window.*use padding 'same'/);
    // the same input with 'same' padding is fine (out = ceil(in / strides))
    const ok = await AvgPool2dKernel.create(gpu, { batch: 1, height: 2, width: 5, channels: 3, poolSize: [3, 3], padding: 'same', label: 'avg9' });
    expect([ok.outHeight, ok.outWidth]).toEqual([1, 2]);
    ok.destroy();
    await expect(AvgPool2dKernel.create(gpu, { batch: 1, height: 4, width: 4, channels: 2, strides: [0, 2], label: 'a' }))
      .rejects.toThrow(/a: AveragePooling2D.*strides\[0\] must be a positive integer, got 0/);
    const tooBig = Math.floor(gpu.limits.maxStorageBufferBindingSize / 4 / (64 * 64 * 64)) + 1;
    await expect(AvgPool2dKernel.create(gpu, { batch: tooBig, height: 64, width: 64, channels: 64, label: 'big' }))
      .rejects.toThrow(/big: .*over this adapter's maxStorageBufferBindingSize/);
    const k = await AvgPool2dKernel.create(gpu, { batch: 1, height: 4, width: 4, channels: 2, padding: 'same', label: 'a2' });
    expect(() => k.backward({ dy: gpu.createBuffer('dy', 32), dx: gpu.createBuffer('dx', 64) }))
      .toThrow(/a2 avgpool2d.backward N=1 H=4 W=4 C=2 pool=2x2 strides=2x2 same: buffer 'dx' \(dx\) is 64 bytes, needs 128/);
    k.destroy();
  });
});
