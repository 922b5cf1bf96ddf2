// Winograd F(2x2, 3x3) forward (shaders/conv2d_winograd.wgsl) against the float64 direct
// convolution, through both GEMM paths (the shader's own where channels are not multiples of 4,
// matmul_subgroup.wgsl per plane where they are): odd sizes (partial 2x2 blocks, GEMM blocks
// and K steps), 'same' and 'valid',
// every activation, with and without bias, and VGG16-like channel counts; then the whole-model
// effect of the 'winograd' family (a model trains to the direct kernels' numbers).
import { describe, expect, it } from 'vitest';
import { acquireGpu, type Gpu } from '../src/index.ts';
import { Conv2dKernel, type Conv2dShape } from '../src/kernels/conv2d.ts';
import { winogradScratchBytes } from '../src/kernels/conv2d-winograd.ts';
import { output, testGpu } from './helpers/gpu.ts';
import { randomArray } from './helpers/random.ts';
import { conv2dRef, convGeometry } from './reference/conv2d.ts';

type Case = Omit<Conv2dShape, 'label' | 'kernelSize'>;
const CASES: Case[] = [
  { batch: 2, height: 5, width: 7, inChannels: 3, outChannels: 5, padding: 'same', activation: 'relu' },
  { batch: 1, height: 9, width: 6, inChannels: 11, outChannels: 33, padding: 'valid', activation: 'linear' },
  { batch: 3, height: 8, width: 8, inChannels: 16, outChannels: 8, padding: 'same', activation: 'relu6', useBias: false },
  // VGG16 block shapes at small sizes (block1_conv2's 64 -> 64, block3's 128 -> 256)
  { batch: 2, height: 15, width: 22, inChannels: 64, outChannels: 64, padding: 'same', activation: 'relu' },
  { batch: 1, height: 7, width: 11, inChannels: 128, outChannels: 256, padding: 'same', activation: 'relu' },
];

/** Largest |ours - ref| / max(1, |ref|): the kernel tests' bar (expectClose), as a number to report. */
function worstRelative(ours: Float32Array, ref: Float64Array): number {
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(ours[i] - ref[i]) / Math.max(1, Math.abs(ref[i])));
  return Number.isNaN(worst) ? Infinity : worst;
}

async function forward(gpu: Gpu, s: Case, winograd: boolean, seed: number) {
  const shape = { ...s, kernelSize: [3, 3] as [number, number] };
  const { outH, outW } = convGeometry(shape);
  const x = randomArray(s.batch * s.height * s.width * s.inChannels, seed);
  const w = randomArray(9 * s.inChannels * s.outChannels, seed + 1, -0.5, 0.5);
  const b = randomArray(s.outChannels, seed + 2);
  const k = await Conv2dKernel.create(gpu, { ...shape, label: 'wino' }, { winograd });
  const bufs = { x: gpu.upload('x', x), w: gpu.upload('w', w), b: s.useBias === false ? undefined : gpu.upload('b', b), y: output(gpu, 'y', s.batch * outH * outW * s.outChannels) };
  gpu.submit('winograd test', k.forward(bufs));
  const y = await gpu.readF32(bufs.y);
  for (const buf of Object.values(bufs)) if (buf) gpu.destroyBuffer(buf);
  const choice = gpu.kernelChoices.get('wino');
  k.destroy();
  return { y, ref: conv2dRef(x, w, s.useBias === false ? undefined : b, shape), choice, tuning: k.tuning };
}

describe('conv2d forward by Winograd F(2x2, 3x3)', () => {
  for (const [i, s] of CASES.entries()) {
    it(`N=${s.batch} ${s.height}x${s.width}x${s.inChannels} -> ${s.outChannels} ${s.padding} ${s.activation}${s.useBias === false ? ' no bias' : ''}: within 1e-4 of float64`, async () => {
      const gpu = await testGpu();
      const r = await forward(gpu, s, true, 100 + i);
      expect(r.tuning.winograd).toBe(true);
      expect(r.choice).toMatch(/^conv2d winograd F\(2x2,3x3\) forward/);
      const err = worstRelative(r.y, r.ref);
      const direct = worstRelative((await forward(gpu, s, false, 100 + i)).y, r.ref);
      console.log(`[winograd] ${JSON.stringify(s)}: worst error ${err.toExponential(2)} (direct kernels ${direct.toExponential(2)})`);
      expect(err).toBeLessThan(1e-4);
      expect(direct).toBeLessThan(1e-4);
    });
  }

  it('is refused where it does not apply, naming the rule', async () => {
    const gpu = await testGpu();
    const strided = { batch: 1, height: 8, width: 8, inChannels: 4, outChannels: 4, kernelSize: [3, 3] as [number, number], strides: [2, 2] as [number, number], padding: 'same' as const, activation: 'relu' as const, label: 'c_s2' };
    await expect(Conv2dKernel.create(gpu, strided, { winograd: true })).rejects.toThrow(/c_s2: .*tuning.winograd needs a 3x3 stride-1 kernel/);
    await expect(Conv2dKernel.create(gpu, { ...strided, strides: [1, 1], kernelSize: [1, 1], label: 'c_1x1' }, { winograd: true })).rejects.toThrow(/c_1x1: .*3x3 stride-1/);
    // the 'winograd' family takes it only where it applies: a strided conv runs the direct kernels
    const wgpu = await acquireGpu({ kernels: 'winograd' });
    expect((await Conv2dKernel.create(wgpu, strided)).tuning.winograd).toBe(false);
    expect((await Conv2dKernel.create(wgpu, { ...strided, strides: [1, 1], label: 'c_3x3' })).tuning.winograd).toBe(false); // 4 input channels: not worth it
    expect((await Conv2dKernel.create(wgpu, { ...strided, strides: [1, 1], inChannels: 8, label: 'c_3x3' })).tuning.winograd).toBe(true);
    expect(wgpu.kernelChoices.get('c_3x3')).toMatch(/winograd .* forward, subgroup backward/);
  });

  it('layers share one scratch per role (the largest layer\'s), and give it back when destroyed', async () => {
    const gpu = await acquireGpu({ kernels: 'auto' }); // a device of its own: exact memory accounting
    const base = gpu.memory().numBytes;
    const small = { batch: 2, height: 12, width: 10, inChannels: 16, outChannels: 16, kernelSize: [3, 3] as [number, number], padding: 'same' as const, activation: 'relu' as const };
    const big = { ...small, height: 24, width: 20, outChannels: 32 };
    const bytes = (s: typeof small) => {
      const b = winogradScratchBytes({ ...s, outHeight: s.height, outWidth: s.width, padTop: 1, padLeft: 1 });
      return b.filter + b.input + b.products;
    };
    const use = { backwardInput: false, backwardFilter: false };
    const kernels = [await Conv2dKernel.create(gpu, { ...small, label: 'a' }, { winograd: true }, use), await Conv2dKernel.create(gpu, { ...big, label: 'b' }, { winograd: true }, use)];
    const bufs = kernels.map((k, i) => {
      const s = i ? big : small;
      return { x: output(gpu, 'x', s.batch * s.height * s.width * s.inChannels), w: output(gpu, 'w', 9 * s.inChannels * s.outChannels), b: output(gpu, 'b', s.outChannels), y: output(gpu, 'y', s.batch * s.height * s.width * s.outChannels) };
    });
    const io = bufs.reduce((n, b) => n + Object.values(b).reduce((m, buf) => m + buf.size, 0), 0);
    const before = gpu.memory().numBytes;
    gpu.submit('both', kernels.map((k, i) => k.forward(bufs[i])));
    await gpu.sync();
    // the first op built already takes the larger layer's size: one scratch set, not two
    expect(gpu.memory().numBytes - before).toBe(bytes(big));
    for (const k of kernels) k.destroy();
    for (const b of bufs) for (const buf of Object.values(b)) gpu.destroyBuffer(buf);
    expect(io).toBeGreaterThan(0);
    expect(gpu.memory().numBytes).toBe(base);
  });

  it('needs 4x the input and output as scratch (planes padded to 64 floats)', () => {
    const b = winogradScratchBytes({ batch: 8, height: 60, width: 90, inChannels: 64, outChannels: 64, outHeight: 60, outWidth: 90, padTop: 1, padLeft: 1 });
    const tilesPad = Math.ceil((8 * 30 * 45) / 64) * 64; // 16 values per 2x2 block: 4x the input
    expect(b.input).toBe(16 * tilesPad * 64 * 4);
    expect(b.products).toBe(16 * tilesPad * 64 * 4);
    expect(b.filter).toBe(16 * 64 * 64 * 4);
  });
});
