import { describe, expect, it } from 'vitest';
import { DepthwiseConv2dKernel, type DepthwiseConv2dShape, type DepthwiseConv2dTuning } from '../src/kernels/depthwise-conv2d.ts';
import type { Gpu } from '../src/gpu/index.ts';
import { output, testGpu } from './helpers/gpu.ts';
import { randomArray } from './helpers/random.ts';
import { expectClose } from './helpers/compare.ts';
import {
  depthwiseConv2dBackwardRef, depthwiseConv2dRef, depthwiseGeometry, depthwiseOutputSize, type DepthwiseRefShape,
} from './reference/depthwise-conv2d.ts';

type Case = Omit<DepthwiseConv2dShape, 'label'>;

const dw = (
  batch: number, height: number, width: number, channels: number, kernelSize: [number, number], strides: [number, number],
  padding: 'same' | 'valid', depthMultiplier: number, activation: Case['activation'], useBias = true,
): Case => ({ batch, height, width, channels, kernelSize, strides, padding, depthMultiplier, activation, useBias });

const text = (s: Case) =>
  `N=${s.batch} ${s.height}x${s.width}x${s.channels} x${s.depthMultiplier} k=${s.kernelSize.join('x')} s=${s.strides.join('x')} ${s.padding} ${s.activation}${s.useBias ? '' : ' no-bias'}`;

/** Random operands; relu6 cases get wider ranges so that some outputs saturate at 6. */
function operands(s: Case, seed: number) {
  const co = s.channels * s.depthMultiplier;
  const wide = s.activation === 'relu6';
  return {
    x: randomArray(s.batch * s.height * s.width * s.channels, seed, wide ? -4 : -1, wide ? 4 : 1),
    w: randomArray(s.kernelSize[0] * s.kernelSize[1] * co, seed + 1, wide ? -2 : -0.5, wide ? 2 : 0.5),
    b: randomArray(co, seed + 2, wide ? -1 : -0.5, wide ? 3 : 0.5),
    dy: randomArray(depthwiseOutputSize(s), seed + 3),
  };
}

/**
 * Forward, then both backward ops with the float64 forward output as y (so the activation
 * masks match the reference exactly); every output starts as NaN.
 */
async function runAll(gpu: Gpu, s: Case, seed: number, tuning: Partial<DepthwiseConv2dTuning> = {}) {
  const { x, w, b, dy } = operands(s, seed);
  const k = await DepthwiseConv2dKernel.create(gpu, { ...s, label: 'test_dw' }, tuning);
  const g = depthwiseGeometry(s);
  expect([k.outHeight, k.outWidth, k.padTop, k.padLeft], text(s)).toEqual([g.outH, g.outW, g.padTop, g.padLeft]);
  const yRef = depthwiseConv2dRef(x, w, b, s);
  const y32 = Float32Array.from(yRef);
  const co = s.channels * s.depthMultiplier;
  const X = gpu.upload('x', x);
  const Wb = gpu.upload('w', w);
  const B = s.useBias ? gpu.upload('b', b) : undefined;
  const DY = gpu.upload('dy', dy);
  const YIN = gpu.upload('y_ref', y32);
  const Y = output(gpu, 'y', yRef.length);
  const DX = output(gpu, 'dx', x.length);
  const DW = output(gpu, 'dw', w.length);
  const DB = s.useBias ? output(gpu, 'db', co) : undefined;
  gpu.submit('depthwise test', [
    k.forward({ x: X, w: Wb, b: B, y: Y }),
    k.backwardInput({ dy: DY, y: YIN, w: Wb, dx: DX }),
    k.backwardFilter({ x: X, dy: DY, y: YIN, dw: DW, db: DB }),
  ]);
  const [y, dx, dwGpu, db] = await Promise.all([gpu.readF32(Y), gpu.readF32(DX), gpu.readF32(DW), DB ? gpu.readF32(DB) : undefined]);
  for (const buf of [X, Wb, B, DY, YIN, Y, DX, DW, DB]) if (buf) gpu.destroyBuffer(buf);
  const chunks = k.chunks;
  k.destroy();
  const ref = depthwiseConv2dBackwardRef(x, w, dy, y32, s);
  return { y, dx, dw: dwGpu, db, yRef, ref, chunks };
}

function check(r: Awaited<ReturnType<typeof runAll>>, s: Case): void {
  expectClose(r.y, r.yRef, 1e-5, `${text(s)} y`);
  expectClose(r.dx, r.ref.dx, 1e-5, `${text(s)} dx`);
  expectClose(r.dw, r.ref.dw, 1e-4, `${text(s)} dw`);
  if (s.useBias) expectClose(r.db!, r.ref.db, 1e-4, `${text(s)} db`);
}

describe('depthwise conv2d', () => {
  it('TF padding geometry, including the asymmetric (bottom / right) extra row', () => {
    const g = (h: number, k: number, st: number, padding: 'same' | 'valid') =>
      depthwiseGeometry(dw(1, h, h, 1, [k, k], [st, st], padding, 1, 'linear'));
    expect(g(8, 3, 2, 'same')).toMatchObject({ outH: 4, padTop: 0 }); // total 1: all at the bottom
    expect(g(7, 3, 2, 'same')).toMatchObject({ outH: 4, padTop: 1 }); // total 2
    expect(g(10, 5, 2, 'same')).toMatchObject({ outH: 5, padTop: 1 }); // total 3: 1 top, 2 bottom
    expect(g(6, 4, 1, 'same')).toMatchObject({ outH: 6, padTop: 1 }); // even kernel: 1 top, 2 bottom
    expect(g(5, 1, 2, 'same')).toMatchObject({ outH: 3, padTop: 0 });
    expect(g(9, 3, 2, 'valid')).toMatchObject({ outH: 4, padTop: 0 });
    expect(g(8, 3, 2, 'valid')).toMatchObject({ outH: 3, padTop: 0 });
  });

  it('reference on a hand-computed case: 1x3x1 input, 3x3 kernel, same, multiplier 2', () => {
    const s = dw(1, 1, 3, 1, [3, 3], [1, 1], 'same', 2, 'linear');
    // Only the middle kernel row sees the single input row; weights w[ky][kx][0][m].
    const w = Float64Array.from({ length: 18 }, (_, i) => i + 1);
    const y = depthwiseConv2dRef([1, 2, 3], w, [0.5, -0.5], s);
    // output (ow, m) = b[m] + sum_kx x[ow + kx - 1] * w[1][kx][0][m]; w[1][kx][0][m] = 7 + 2 kx + m
    const at = (ow: number, m: number) => [0, 1, 2].reduce((sum, kx) => {
      const xi = ow + kx - 1;
      return xi < 0 || xi > 2 ? sum : sum + [1, 2, 3][xi] * (7 + 2 * kx + m);
    }, m === 0 ? 0.5 : -0.5);
    expect(Array.from(y)).toEqual([at(0, 0), at(0, 1), at(1, 0), at(1, 1), at(2, 0), at(2, 1)]);
  });

  it('stride 1 and 2, same (odd and even sizes) and valid, multipliers 1-3, 1x1 / 3x3 / 5x5 / 4x2 kernels', async () => {
    const gpu = await testGpu();
    const cases: Case[] = [
      dw(2, 7, 9, 3, [3, 3], [1, 1], 'same', 1, 'relu'),          // odd, scalar everywhere
      dw(1, 8, 6, 4, [3, 3], [2, 2], 'same', 1, 'relu6'),         // even, stride 2: pad 0 top, 1 bottom; vec4
      dw(2, 10, 9, 5, [5, 5], [2, 2], 'same', 2, 'linear', false), // 1 top / 2 bottom rows; CO = 10 scalar
      dw(2, 9, 8, 6, [3, 3], [2, 2], 'valid', 2, 'relu'),         // CO = 12: vec4 forward / filter, scalar dx
      dw(1, 6, 7, 4, [5, 5], [1, 1], 'same', 2, 'linear', false), // vec4 all, multiplier 2 gathers
      dw(1, 6, 5, 8, [1, 1], [1, 1], 'same', 3, 'relu6'),         // 1x1, vec4 all, multiplier 3
      dw(2, 7, 6, 3, [1, 1], [2, 2], 'valid', 4, 'linear'),       // 1x1 stride 2, drops the last row
      dw(1, 6, 7, 3, [4, 2], [1, 2], 'same', 1, 'relu'),          // even kernel, mixed strides
      dw(1, 5, 4, 2, [7, 7], [1, 1], 'same', 2, 'relu6'),         // window larger than the image
    ];
    let seed = 1;
    for (const s of cases) {
      const r = await runAll(gpu, s, (seed += 10));
      check(r, s);
      if (s.activation === 'relu6') {
        // The case exercises both sides of the relu6 mask.
        expect(r.yRef.some((v) => v === 6), `${text(s)} saturates`).toBe(true);
        expect(r.yRef.some((v) => v === 0), `${text(s)} has zeros`).toBe(true);
      }
    }
  });

  it('filter gradient split into many chunks (more than the reduce workgroup) and into uneven ones', async () => {
    const gpu = await testGpu();
    for (const [s, rowsPerChunk] of [
      [dw(4, 21, 5, 3, [3, 3], [1, 1], 'same', 1, 'relu'), 1],      // 84 chunks of one row
      [dw(3, 9, 11, 8, [3, 3], [2, 2], 'same', 2, 'relu6'), 4],     // 15 rows: chunks of 4, 4, 4, 3
      [dw(2, 6, 6, 4, [3, 3], [1, 1], 'valid', 1, 'linear', false), 3],
    ] as [Case, number][]) {
      const r = await runAll(gpu, s, 77, { rowsPerChunk });
      expect(r.chunks).toBe(Math.ceil((s.batch * depthwiseGeometry(s).outH) / rowsPerChunk));
      check(r, s);
    }
  });

  it('ops are replayable and fully overwrite their outputs', async () => {
    const gpu = await testGpu();
    const s = dw(1, 5, 6, 4, [3, 3], [2, 2], 'same', 1, 'relu', true);
    const { x, w, b, dy } = operands(s, 5);
    const k = await DepthwiseConv2dKernel.create(gpu, { ...s, label: 'replay' });
    const y = Float32Array.from(depthwiseConv2dRef(x, w, b, s));
    const bufs = { x: gpu.upload('x', x), w: gpu.upload('w', w), b: gpu.upload('b', b), dy: gpu.upload('dy', dy), y: gpu.upload('y', y) };
    const DW = output(gpu, 'dw', w.length);
    const DB = output(gpu, 'db', 4);
    const op = k.backwardFilter({ x: bufs.x, dy: bufs.dy, y: bufs.y, dw: DW, db: DB });
    gpu.submit('first', op);
    gpu.write(DW, new Float32Array(w.length).fill(123));
    gpu.submit('again', op);
    const ref = depthwiseConv2dBackwardRef(x, w, dy, y, s);
    expectClose(await gpu.readF32(DW), ref.dw, 1e-4, 'dw after replay');
    expectClose(await gpu.readF32(DB), ref.db, 1e-4, 'db after replay');
    for (const buf of [...Object.values(bufs), DW, DB]) gpu.destroyBuffer(buf);
    k.destroy();
  });

  it('reference backward matches central finite differences of the reference forward', () => {
    const cases: Case[] = [
      dw(2, 5, 6, 3, [3, 3], [2, 2], 'same', 2, 'relu'),
      dw(1, 6, 5, 2, [5, 5], [1, 1], 'same', 1, 'relu6'),
      dw(1, 7, 6, 2, [3, 3], [2, 2], 'valid', 3, 'linear', false),
      dw(1, 4, 5, 3, [1, 1], [2, 1], 'same', 2, 'linear'),
    ];
    for (const s of cases) {
      const o = operands(s, 3);
      const x = Float64Array.from(o.x);
      const w = Float64Array.from(o.w);
      const b = Float64Array.from(o.b);
      const r = o.dy; // L = sum(y .* r)
      const loss = () => depthwiseConv2dRef(x, w, b, s).reduce((sum, v, i) => sum + v * r[i], 0);
      const y = depthwiseConv2dRef(x, w, b, s);
      const an = depthwiseConv2dBackwardRef(x, w, r, y, s);
      const eps = 1e-6;
      const numeric = (v: Float64Array) => Float64Array.from(v, (orig, i) => {
        v[i] = orig + eps;
        const up = loss();
        v[i] = orig - eps;
        const down = loss();
        v[i] = orig;
        return (up - down) / (2 * eps);
      });
      expectClose(an.dx, numeric(x), 1e-6, `${text(s)} dx vs finite differences`);
      expectClose(an.dw, numeric(w), 1e-6, `${text(s)} dw vs finite differences`);
      expectClose(an.db, s.useBias ? numeric(b) : new Float64Array(b.length), 1e-6, `${text(s)} db vs finite differences`);
    }
  });

  it('rejects shapes and buffers it cannot use, naming the layer', async () => {
    const gpu = await testGpu();
    const base = dw(1, 8, 8, 4, [3, 3], [1, 1], 'same', 1, 'relu');
    const bad = (over: Partial<Case>, label = 'block_1_depthwise') => DepthwiseConv2dKernel.create(gpu, { ...base, ...over, label });
    await expect(bad({ kernelSize: [9, 3] })).rejects.toThrow(/block_1_depthwise: DepthwiseConv2D \[N=1, H=8, W=8, C=4\] x1, kernel 9x3.*kernelSize must be 1\.\.7/);
    await expect(bad({ strides: [3, 3] })).rejects.toThrow(/block_1_depthwise: .*strides must be 1 or 2/);
    await expect(bad({ depthMultiplier: 0 })).rejects.toThrow(/depthMultiplier must be a positive integer, got 0/);
    await expect(bad({ activation: 'gelu' as Case['activation'] })).rejects.toThrow(/activation must be 'linear', 'relu' or 'relu6'/);
    await expect(bad({ height: 2, padding: 'valid' })).rejects.toThrow(/the 3x3 kernel is larger than the 2x8 input with 'valid' padding/);
    const tooBig = Math.floor(gpu.limits.maxStorageBufferBindingSize / 4 / (64 * 64 * 64)) + 1;
    await expect(bad({ batch: tooBig, height: 64, width: 64, channels: 64 }, 'big')).rejects.toThrow(/big: .*input x needs .*over this adapter's maxStorageBufferBindingSize/);

    const k = await DepthwiseConv2dKernel.create(gpu, { ...base, label: 'dw2' });
    const small = gpu.createBuffer('small', 4);
    const big = gpu.createBuffer('big', 4096);
    expect(() => k.forward({ x: small, w: big, b: big, y: big })).toThrow(/dw2 depthwise_conv2d\.forward N=1 H=8 W=8 C=4 M=1 k=3x3 .*buffer 'x' \(small\) is 4 bytes, needs 1024/);
    expect(() => k.forward({ x: big, w: big, y: big })).toThrow(/dw2 depthwise_conv2d\.forward .*needs 'b' because useBias is true/);
    expect(() => k.backwardInput({ dy: big, w: big, dx: big })).toThrow(/needs y \(the forward output\) because the activation is 'relu'/);
    expect(() => k.backwardFilter({ x: big, dy: big, y: big, dw: big })).toThrow(/needs 'db' because useBias is true/);
    const nb = await DepthwiseConv2dKernel.create(gpu, { ...base, useBias: false, label: 'dw3' });
    expect(() => nb.forward({ x: big, w: big, b: big, y: big })).toThrow(/dw3 .*got 'b' but useBias is false/);
    for (const buf of [small, big]) gpu.destroyBuffer(buf);
    k.destroy();
    nb.destroy();
  });
});
