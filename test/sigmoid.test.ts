import { describe, it } from 'vitest';
import { SigmoidKernel } from '../src/kernels/sigmoid.ts';
import { output, testGpu } from './helpers/gpu.ts';
import { randomArray } from './helpers/random.ts';
import { expectClose } from './helpers/compare.ts';

describe('sigmoid', () => {
  it('matches 1 / (1 + exp(-x)) in float64, including extreme values', async () => {
    const gpu = await testGpu();
    const x = randomArray(1000, 7, -12, 12);
    x.set([0, -100, 100, -30, 30, 1e-8]);
    const k = await SigmoidKernel.create(gpu, { size: x.length });
    const y = output(gpu, 'y', x.length);
    gpu.submit('sigmoid', k.forward({ x: gpu.upload('x', x), y }));
    const ref = Array.from(x, (v) => 1 / (1 + Math.exp(-v)));
    expectClose(await gpu.readF32(y), ref, 1e-6, 'sigmoid');
  });
});
