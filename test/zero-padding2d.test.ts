import { describe, expect, it } from 'vitest';
import { ZeroPadding2dKernel } from '../src/kernels/zero-padding2d.ts';
import type { Gpu } from '../src/gpu/index.ts';
import { output, testGpu } from './helpers/gpu.ts';
import { randomArray } from './helpers/random.ts';
import { expectClose } from './helpers/compare.ts';
import { padOutSize, zeroPadBackwardRef, zeroPadForwardRef, type PadDims } from './reference/zero-padding2d.ts';

/** Runs forward and backward; outputs start as NaN. */
async function runPad(gpu: Gpu, d: PadDims, x: Float32Array, dy: Float32Array): Promise<{ y: Float32Array; dx: Float32Array }> {
  const kernel = await ZeroPadding2dKernel.create(gpu, { ...d, label: 'test_pad' });
  const [OH, OW] = padOutSize(d);
  expect([kernel.outHeight, kernel.outWidth]).toEqual([OH, OW]);
  const X = gpu.upload('x', x);
  const DY = gpu.upload('dy', dy);
  const Y = output(gpu, 'y', kernel.outputSize);
  const DX = output(gpu, 'dx', kernel.inputSize);
  gpu.submit('pad test', [kernel.forward({ x: X, y: Y }), kernel.backward({ dy: DY, dx: DX })]);
  const [y, dx] = await Promise.all([gpu.readF32(Y), gpu.readF32(DX)]);
  for (const b of [X, DY, Y, DX]) gpu.destroyBuffer(b);
  kernel.destroy();
  return { y, dx };
}

const dims = (batch: number, height: number, width: number, channels: number, padding: [[number, number], [number, number]]): PadDims =>
  ({ batch, height, width, channels, padding });
const text = (d: PadDims) => `${d.batch}x${d.height}x${d.width}x${d.channels} padding ${JSON.stringify(d.padding)}`;
const count = (d: PadDims) => d.batch * d.height * d.width * d.channels;

describe('zero_padding2d', () => {
  it('forward and backward match the reference: asymmetric and symmetric, channels 3 and 8', async () => {
    const gpu = await testGpu();
    const cases = [
      dims(2, 7, 9, 3, [[0, 1], [1, 2]]), dims(2, 7, 9, 8, [[0, 1], [1, 2]]),
      dims(1, 6, 5, 3, [[1, 1], [1, 1]]), dims(3, 5, 6, 8, [[2, 2], [2, 2]]),
      dims(1, 4, 4, 8, [[0, 0], [0, 0]]), dims(2, 3, 11, 5, [[3, 0], [0, 1]]),
      dims(1, 1, 1, 4, [[1, 2], [3, 0]]),
    ];
    for (const d of cases) {
      // nonzero inputs, so a zero in y can only come from the border
      const x = randomArray(count(d), count(d) + d.channels, 0.5, 1.5);
      const [OH, OW] = padOutSize(d);
      const dy = randomArray(d.batch * OH * OW * d.channels, 9);
      const r = await runPad(gpu, d, x, dy);
      expectClose(r.y, zeroPadForwardRef(x, d), 0, `${text(d)} y`);
      expectClose(r.dx, zeroPadBackwardRef(dy, d), 0, `${text(d)} dx`);
      const [[top, bottom], [left, right]] = d.padding;
      const zeros = r.y.filter((v) => v === 0).length;
      expect(zeros, `${text(d)}: border zeros`).toBe(d.batch * (OH * OW - d.height * d.width) * d.channels);
      expect(OH * OW - d.height * d.width).toBe((top + bottom) * OW + (left + right) * d.height);
    }
  });

  it('a known example: [[0,1],[1,2]] around a 2x2 image', async () => {
    const gpu = await testGpu();
    const d = dims(1, 2, 2, 1, [[0, 1], [1, 2]]);
    const r = await runPad(gpu, d, Float32Array.from([1, 2, 3, 4]), Float32Array.from({ length: 15 }, (_, i) => i));
    expect(Array.from(r.y)).toEqual([0, 1, 2, 0, 0, 0, 3, 4, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(r.dx)).toEqual([1, 2, 6, 7]);
  });

  it('reference backward matches central finite differences of the reference forward', () => {
    for (const d of [dims(1, 3, 4, 3, [[0, 1], [1, 2]]), dims(2, 2, 3, 2, [[1, 1], [1, 1]])]) {
      const x = Float64Array.from(randomArray(count(d), 3));
      const [OH, OW] = padOutSize(d);
      const r = Float64Array.from(randomArray(d.batch * OH * OW * d.channels, 4));
      const loss = () => zeroPadForwardRef(x, d).reduce((s, v, i) => s + v * r[i], 0);
      const eps = 1e-3;
      const numeric = Float64Array.from(x, (v, i) => {
        x[i] = v + eps;
        const up = loss();
        x[i] = v - eps;
        const down = loss();
        x[i] = v;
        return (up - down) / (2 * eps);
      });
      expectClose(zeroPadBackwardRef(r, d), numeric, 1e-9, `${text(d)} reference dx vs finite differences`);
    }
  });

  it('rejects bad shapes and buffers, naming the layer', async () => {
    const gpu = await testGpu();
    await expect(ZeroPadding2dKernel.create(gpu, { batch: 1, height: 4, width: 4, channels: 3, padding: [[1, -1], [0, 0]], label: 'pad1' }))
      .rejects.toThrow(/pad1: ZeroPadding2D input \[1,4,4,3\] padding \[\[1,-1\],\[0,0\]\]: padding bottom must be an integer >= 0, got -1/);
    await expect(ZeroPadding2dKernel.create(gpu, { batch: 1, height: 4, width: 4, channels: 3, padding: [1, 1] as unknown as [[number, number], [number, number]], label: 'pad2' }))
      .rejects.toThrow(/pad2: .*padding must be \[\[top, bottom\], \[left, right\]\]/);
    await expect(ZeroPadding2dKernel.create(gpu, { batch: 1, height: 0, width: 4, channels: 3, padding: [[1, 1], [1, 1]], label: 'pad3' }))
      .rejects.toThrow(/pad3: .*height must be a positive integer, got 0/);
    const tooBig = Math.floor(gpu.limits.maxStorageBufferBindingSize / 4 / (64 * 64 * 64)) + 1;
    await expect(ZeroPadding2dKernel.create(gpu, { batch: tooBig, height: 62, width: 62, channels: 64, padding: [[1, 1], [1, 1]], label: 'big' }))
      .rejects.toThrow(/big: .*the padded output \[\d+,64,64,64\] is \d+ bytes, over this adapter's maxStorageBufferBindingSize/);
    const k = await ZeroPadding2dKernel.create(gpu, { batch: 1, height: 2, width: 2, channels: 2, padding: [[1, 1], [1, 1]], label: 'p' });
    const b = gpu.createBuffer('b', 128);
    expect(() => k.forward({ x: b, y: gpu.createBuffer('small', 64) })).toThrow(/p zero_padding2d.forward N=1 H=2 W=2 C=2 padding=\[\[1,1\],\[1,1\]\]: buffer 'y' \(small\) is 64 bytes, needs 128/);
    expect(() => k.backward({ dy: b, dx: b })).toThrow(/'dy' and 'dx' are the same buffer/);
    k.destroy();
  });
});
