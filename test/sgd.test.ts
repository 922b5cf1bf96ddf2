import { describe, expect, it } from 'vitest';
import { GuardKernel } from '../src/kernels/guard.ts';
import { SgdKernel } from '../src/kernels/sgd.ts';
import { testGpu } from './helpers/gpu.ts';
import { randomArray } from './helpers/random.ts';
import { expectClose } from './helpers/compare.ts';
import { sgdRef } from './reference/sgd.ts';

describe('sgd', () => {
  const cases = [
    { momentum: 0, nesterov: false, decay: 0 },
    { momentum: 0.9, nesterov: false, decay: 0 },
    { momentum: 0.9, nesterov: true, decay: 0 },
    { momentum: 0.5, nesterov: false, decay: 0.1 },
  ];
  for (const c of cases) {
    it(`matches Keras's rule over 3 steps: momentum ${c.momentum} nesterov ${c.nesterov} decay ${c.decay}`, async () => {
      const gpu = await testGpu();
      for (const n of [1037, 4 * 1031]) { // scalar path (n % 4 != 0) and vec4 path, neither a multiple of the workgroup size
      const lr = 0.05;
      const sgd = await SgdKernel.create(gpu, { learningRate: lr, momentum: c.momentum, nesterov: c.nesterov, decay: c.decay }, (await GuardKernel.create(gpu)).halt);
      const p0 = randomArray(n, 1);
      const param = gpu.upload('p', p0);
      const grad = gpu.createBuffer('g', n * 4);
      const op = sgd.update(param, grad, n, 'p');
      let ref: { param: Float64Array; velocity: Float64Array } = { param: Float64Array.from(p0), velocity: new Float64Array(n) };
      for (let step = 0; step < 3; step++) {
        const g = randomArray(n, 10 + step);
        gpu.write(grad, g);
        sgd.setIteration(step);
        gpu.submit(`sgd step ${step}`, op);
        ref = sgdRef(ref.param, g, ref.velocity, { lr: lr / (1 + c.decay * step), momentum: c.momentum, nesterov: c.nesterov });
      }
      expectClose(await gpu.readF32(param), ref.param, 1e-5, 'param');
      if (c.momentum > 0) expectClose(await gpu.readF32(sgd.velocityOf(param)!), ref.velocity, 1e-5, 'velocity');
      else expect(sgd.state.length).toBe(0);
      }
    });
  }

  it('rejects a negative learning rate with a clear message', async () => {
    const gpu = await testGpu();
    await expect(SgdKernel.create(gpu, { learningRate: -1 }, (await GuardKernel.create(gpu)).halt)).rejects.toThrow(/learningRate must be a finite number >= 0/);
  });
});

describe('sgd guard', () => {
  it('skips every later update once a guarded loss is NaN, and resumes when cleared', async () => {
    const gpu = await testGpu();
    const n = 300;
    const guard = await GuardKernel.create(gpu);
    const sgd = await SgdKernel.create(gpu, { learningRate: 0.1, momentum: 0.9 }, guard.halt);
    const p0 = randomArray(n, 3);
    const param = gpu.upload('p', p0);
    const grad = gpu.upload('g', randomArray(n, 4));
    const stats = gpu.upload('stats', new Float32Array([0.5, 1]));
    const ops = [guard.check(stats), sgd.update(param, grad, n, 'p')];
    gpu.submit('good step', ops);
    const afterGood = await gpu.readF32(param);
    expect(afterGood).not.toEqual(p0);
    gpu.write(stats, new Float32Array([Number.NaN, 0]));
    gpu.submit('nan step', ops);
    gpu.write(stats, new Float32Array([0.4, 1]));
    gpu.submit('finite step after the nan', ops);
    expect(await gpu.readF32(param)).toEqual(afterGood);
    expect(await guard.halted()).toBe(true);
    guard.resume();
    gpu.submit('step after resume', ops);
    expect(await gpu.readF32(param)).not.toEqual(afterGood);
    expect(await guard.halted()).toBe(false);
  });
});
