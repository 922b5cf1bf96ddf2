// Kernel families forced per device (acquireGpu({ kernels }) / $WEBGPU_FINETUNE_KERNELS): each
// family is what runs where it applies, a whole model trains to the same numbers on every family
// and on a device with only WebGPU's default limits, and a family the device cannot run is
// refused with a message that says what to do.
import { afterAll, describe, expect, it } from 'vitest';
import { acquireGpu, Adam, BatchNormalization, Conv2D, Dense, Flatten, Gpu, Input, kernelFamilyOption, MaxPooling2D, Model, ReLU, setGpu, setInitSeed } from '../src/index.ts';
import { getGpu } from '../src/graph/backend.ts';
import { platformGpu } from '../src/gpu/index.ts';
import { Conv2dKernel } from '../src/kernels/conv2d.ts';
import { DenseKernel } from '../src/kernels/dense.ts';
import { subgroupsUsable } from '../src/kernels/variants.ts';
import { randomArray } from './helpers/random.ts';
import { kernelLines } from '../src/cli/train.ts';

const conv = (outChannels: number) => ({ batch: 2, height: 8, width: 8, inChannels: 4, outChannels, kernelSize: [3, 3] as [number, number], padding: 'same' as const, activation: 'relu' as const });
const dense = { batch: 4, inFeatures: 16, outFeatures: 8, activation: 'relu' as const };

let original: Gpu;
afterAll(() => setGpu(original));

describe('kernel families', () => {
  it('the option and $WEBGPU_FINETUNE_KERNELS name a family, or the error lists them', () => {
    expect(kernelFamilyOption('tiled')).toBe('tiled');
    const before = process.env.WEBGPU_FINETUNE_KERNELS;
    try {
      process.env.WEBGPU_FINETUNE_KERNELS = 'subgroup';
      expect(kernelFamilyOption()).toBe('subgroup');
      expect(kernelFamilyOption('auto')).toBe('auto'); // the option wins
      process.env.WEBGPU_FINETUNE_KERNELS = 'winograd-ish';
      expect(() => kernelFamilyOption()).toThrow(/WEBGPU_FINETUNE_KERNELS is 'winograd-ish'; it must be one of auto, tiled, subgroup, winograd/);
      delete process.env.WEBGPU_FINETUNE_KERNELS;
      expect(kernelFamilyOption()).toBe('auto');
    } finally {
      if (before === undefined) delete process.env.WEBGPU_FINETUNE_KERNELS;
      else process.env.WEBGPU_FINETUNE_KERNELS = before;
    }
    expect(() => kernelFamilyOption('fast')).toThrow(/acquireGpu\(\{ kernels \}\) is 'fast'/);
  });

  it('a forced family runs wherever the shape allows it; auto picks per adapter', async () => {
    original = await getGpu();
    const tiled = await acquireGpu({ kernels: 'tiled' });
    const subgroup = await acquireGpu({ kernels: 'subgroup' });
    const auto = await acquireGpu({ kernels: 'auto' });
    expect(subgroupsUsable(auto)).toBe(true); // lavapipe: subgroups of 8; this test needs them
    expect((await Conv2dKernel.create(tiled, conv(8))).tuning.variant).toBe('tiled');
    expect((await Conv2dKernel.create(subgroup, conv(8))).tuning.variant).toBe('subgroup');
    // 6 output channels: the subgroup kernels' shape rule fails, the tiled ones run
    expect((await Conv2dKernel.create(subgroup, conv(6))).tuning.variant).toBe('tiled');
    // auto on a CPU (fallback) adapter: subgroup
    expect(auto.adapter.isFallbackAdapter).toBe(true);
    expect((await Conv2dKernel.create(auto, conv(8))).tuning.variant).toBe('subgroup');
    expect((await DenseKernel.create(tiled, dense)).describe()).toMatch(/^forward tiled .*backwardInput tiled .*backwardWeights tiled/);
    expect((await DenseKernel.create(subgroup, dense)).describe()).toMatch(/^forward subgroup/);
    // an explicit tuning still wins over the device's family (the tuning script and kernel tests)
    expect((await Conv2dKernel.create(tiled, conv(8), { variant: 'subgroup' })).tuning.variant).toBe('subgroup');
    // each layer's choice is noted on its device, for train --verbose
    await Conv2dKernel.create(tiled, { ...conv(8), label: 'c1' });
    await DenseKernel.create(tiled, { ...dense, label: 'd1' });
    expect(kernelLines(tiled)).toEqual(expect.arrayContaining(['Kernels (family tiled, forced):', `  ${'c1'.padEnd(24)} conv2d tiled`, `  ${'d1'.padEnd(24)} dense tiled`]));
    await Conv2dKernel.create(subgroup, { ...conv(8), label: 'c2', inChannels: 6 });
    expect(subgroup.kernelChoices.get('c2')).toBe('conv2d subgroup (backward tiled)'); // backward needs Cin % 4 == 0 too
    // large tiles where both channel counts are multiples of 4, else tiled
    const large = await acquireGpu({ kernels: 'large' });
    expect((await Conv2dKernel.create(large, { ...conv(8), label: 'c3' })).tuning.variant).toBe('large');
    expect(large.kernelChoices.get('c3')).toBe('conv2d large (filter gradient tiled)');
    expect((await Conv2dKernel.create(large, { ...conv(8), inChannels: 6 })).tuning.variant).toBe('tiled');
    expect((await DenseKernel.create(large, dense)).describe()).toMatch(/^forward tiled/);
    await expect(Conv2dKernel.create(large, { ...conv(8), inChannels: 6, label: 'c4' }, { variant: 'large' })).rejects.toThrow(/c4: .*large-tile kernels need inChannels and outChannels divisible by 4/);
  });

  it('a forced subgroup family on a device without subgroups is refused, saying what to do', async () => {
    const instance = await platformGpu();
    const adapter = (await instance.requestAdapter())!;
    const device = await adapter.requestDevice({}); // no 'subgroups' feature
    const gpu = new Gpu(device, { vendor: '', architecture: '', device: '', description: 'no subgroups', isFallbackAdapter: true, featureLevel: 'core' }, instance, 'subgroup');
    await expect(Conv2dKernel.create(gpu, { ...conv(8), label: 'block1_conv1' })).rejects.toThrow(/block1_conv1: the 'subgroup' kernel family was forced .* no 'subgroups' feature .*; use auto or tiled/);
    await expect(DenseKernel.create(gpu, { ...dense, label: 'fc1' })).rejects.toThrow(/fc1.*'subgroup' kernel family was forced/);
    // auto on the same device takes the tiled kernels
    const autoGpu = new Gpu(device, gpu.adapter, instance, 'auto');
    expect((await Conv2dKernel.create(autoGpu, conv(8))).tuning.variant).toBe('tiled');
  });
});

/** A small model with every kind of kernel the families cover: convs (strided too), BN, pools, dense. */
function smallModel(): Model {
  setInitSeed(21);
  const input = Input({ shape: [16, 16, 3] });
  let x = new Conv2D({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'c1' }).apply(input);
  x = new BatchNormalization({ name: 'bn1' }).apply(x);
  x = new ReLU({ name: 'r1' }).apply(x);
  x = new Conv2D({ filters: 12, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c2' }).apply(x);
  x = new MaxPooling2D({ poolSize: 2, name: 'p1' }).apply(x);
  x = new Flatten({ name: 'f' }).apply(x);
  x = new Dense({ units: 8, activation: 'relu', name: 'd1' }).apply(x);
  const model = new Model({ inputs: input, outputs: new Dense({ units: 1, activation: 'sigmoid', name: 'd2' }).apply(x) });
  model.compile({ optimizer: new Adam({ learningRate: 0.01 }), loss: 'binary_crossentropy', metrics: ['acc'] });
  return model;
}

/** Three Adam steps on fixed data: the losses and the final weights. */
async function train(gpu: Gpu): Promise<{ losses: number[]; weights: Float32Array[] }> {
  setGpu(gpu);
  const model = smallModel();
  const x = randomArray(8 * 16 * 16 * 3, 5);
  const y = Float32Array.from({ length: 8 }, (_, i) => i % 2);
  const losses: number[] = [];
  for (let s = 0; s < 3; s++) losses.push((await model.trainOnBatch(x, y))[0]);
  const weights = (await model.getWeights()).map((w) => w.data);
  await model.dispose();
  return { losses, weights };
}

describe('a whole model on every family and on a minimal device', () => {
  it('trains to the same losses and weights with tiled, subgroup, auto, winograd and large kernels, with default limits and in compatibility mode', async () => {
    original ??= await getGpu();
    const runs = {
      tiled: await train(await acquireGpu({ kernels: 'tiled' })),
      subgroup: await train(await acquireGpu({ kernels: 'subgroup' })),
      auto: await train(await acquireGpu({ kernels: 'auto' })),
      // c2 (3x3 stride 1) forward by Winograd F(2x2, 3x3); c1 (stride 2) stays direct
      winograd: await train(await acquireGpu({ kernels: 'winograd' })),
      // c2 (8 -> 12 channels) in 64x64 tiles; c1 (3 input channels) tiled
      large: await train(await acquireGpu({ kernels: 'large' })),
      // WebGPU's default limits (256 invocations per workgroup, 16 KiB workgroup storage, 128 MiB bindings)
      minimal: await train(await acquireGpu({ limits: 'default' })),
      // compatibility mode's defaults: 128 invocations per workgroup, 8 storage buffers per stage
      compatibility: await train(await acquireGpu({ featureLevel: 'compatibility', limits: 'default' })),
    };
    const minimal = await acquireGpu({ limits: 'default' });
    expect(minimal.limits.maxStorageBufferBindingSize).toBe(134217728);
    expect(minimal.limits.maxComputeWorkgroupStorageSize).toBe(16384);
    const ref = runs.tiled;
    expect(ref.losses.every(Number.isFinite)).toBe(true);
    expect(ref.losses[2]).not.toBe(ref.losses[0]); // it trained
    for (const [name, r] of Object.entries(runs)) {
      for (let s = 0; s < 3; s++) expect(Math.abs(r.losses[s] - ref.losses[s]), `${name} step ${s}`).toBeLessThan(1e-5);
      r.weights.forEach((w, i) => {
        let worst = 0;
        for (let j = 0; j < w.length; j++) worst = Math.max(worst, Math.abs(w[j] - ref.weights[i][j]) / (1e-3 + Math.abs(ref.weights[i][j])));
        expect(worst, `${name} weight ${i}`).toBeLessThan(1e-3);
      });
    }
  }, 120_000);
});
