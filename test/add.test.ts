import { describe, expect, it } from 'vitest';
import { AddKernel } from '../src/kernels/add.ts';
import type { Gpu, GpuOp } from '../src/gpu/index.ts';
import { output, testGpu } from './helpers/gpu.ts';
import { randomArray } from './helpers/random.ts';
import { expectClose } from './helpers/compare.ts';
import { accumulateRef, addRef } from './reference/add.ts';

/** The compute pass labels an op records, without submitting it. */
function passLabels(op: GpuOp): string[] {
  const labels: string[] = [];
  const pass = { setPipeline() {}, setBindGroup() {}, dispatchWorkgroups() {}, end() {} };
  op.encode({ beginComputePass: (d: GPUComputePassDescriptor) => { labels.push(d.label ?? ''); return pass; } } as unknown as GPUCommandEncoder);
  return labels;
}

/** The same Gpu, reporting a lower maxStorageBuffersPerShaderStage (as compatibility mode does). */
function withStorageLimit(gpu: Gpu, limit: number): Gpu {
  const limits = new Proxy(gpu.limits, {
    get: (t, k) => (k === 'maxStorageBuffersPerShaderStage' ? limit : Reflect.get(t, k, t)),
  });
  return Object.create(gpu, { limits: { value: limits } }) as Gpu;
}

async function runAdd(gpu: Gpu, xs: Float32Array[], kernelGpu: Gpu = gpu): Promise<{ y: Float32Array; stages: string[] }> {
  const n = xs[0].length;
  const kernel = await AddKernel.create(kernelGpu, { size: n, inputs: xs.length, label: 'test_add' });
  const X = xs.map((x, i) => gpu.upload(`x${i}`, x));
  const Y = output(gpu, 'y', n);
  const op = kernel.forward({ xs: X, y: Y });
  gpu.submit('add test', op);
  const y = await gpu.readF32(Y);
  for (const b of [...X, Y]) gpu.destroyBuffer(b);
  kernel.destroy();
  return { y, stages: passLabels(op).map((l) => l.split(' ').pop() as string) };
}

describe('add', () => {
  it('sums 2, 3, 5 and 8 inputs like the reference (vec4 and scalar sizes)', async () => {
    const gpu = await testGpu();
    const stagesFor: Record<number, string[]> = { 2: ['sum2'], 3: ['sum3'], 5: ['sum4', 'acc1'], 8: ['sum4', 'acc3', 'acc1'] };
    for (const n of [1000, 1001, 517]) {
      for (const k of [2, 3, 5, 8]) {
        const xs = Array.from({ length: k }, (_, i) => randomArray(n, 10 * k + i + n));
        const r = await runAdd(gpu, xs);
        expectClose(r.y, addRef(xs), 1e-6, `${k} inputs n=${n}`);
        expect(r.stages, `${k} inputs: dispatches`).toEqual(stagesFor[k]);
      }
    }
  });

  it('stays within a lower storage-buffer limit (4 per stage, compatibility mode)', async () => {
    const gpu = await testGpu();
    const low = withStorageLimit(gpu, 4);
    const xs = Array.from({ length: 7 }, (_, i) => randomArray(130, 70 + i));
    const r = await runAdd(gpu, xs, low);
    expectClose(r.y, addRef(xs), 1e-6, '7 inputs, limit 4');
    expect(r.stages).toEqual(['sum3', 'acc3', 'acc1']);
  });

  it('y may be one of the inputs (summed in place); inputs may repeat', async () => {
    const gpu = await testGpu();
    for (const [n, k, at] of [[1001, 5, 2], [1000, 2, 0], [517, 4, 3]] as const) {
      const xs = Array.from({ length: k }, (_, i) => randomArray(n, 100 + i));
      const kernel = await AddKernel.create(gpu, { size: n, inputs: k, label: 'alias' });
      const X = xs.map((x, i) => gpu.upload(`x${i}`, x));
      gpu.submit('alias', kernel.forward({ xs: X, y: X[at] }));
      expectClose(await gpu.readF32(X[at]), addRef(xs), 1e-6, `${k} inputs, y = xs[${at}]`);
      X.forEach((b) => gpu.destroyBuffer(b));
      kernel.destroy();
    }
    const a = randomArray(999, 1);
    const b = randomArray(999, 2);
    const kernel = await AddKernel.create(gpu, { size: 999, inputs: 3, label: 'repeat' });
    const [A, B] = [gpu.upload('a', a), gpu.upload('b', b)];
    const Y = output(gpu, 'y', 999);
    gpu.submit('repeat', kernel.forward({ xs: [A, A, B], y: Y }));
    expectClose(await gpu.readF32(Y), addRef([a, a, b]), 1e-6, 'a + a + b');
    for (const buf of [A, B, Y]) gpu.destroyBuffer(buf);
    kernel.destroy();
  });

  it('accumulate adds x into y in place, each time the op is submitted', async () => {
    const gpu = await testGpu();
    for (const n of [1000, 1001, 3]) {
      const kernel = await AddKernel.create(gpu, { size: n, inputs: 1, label: 'grad_sum' });
      const x = randomArray(n, 5);
      const y0 = randomArray(n, 6);
      const X = gpu.upload('x', x);
      const Y = gpu.upload('y', y0);
      const op = kernel.accumulate({ x: X, y: Y });
      gpu.submit('acc 1', op);
      expectClose(await gpu.readF32(Y), accumulateRef(y0, x), 1e-6, `y + x n=${n}`);
      gpu.submit('acc 2', op);
      expectClose(await gpu.readF32(Y), accumulateRef(accumulateRef(y0, x), x), 1e-6, `y + 2x n=${n}`);
      // inputs 1: forward is a copy
      const Z = output(gpu, 'z', n);
      gpu.submit('copy', kernel.forward({ xs: [X], y: Z }));
      expectClose(await gpu.readF32(Z), x, 0, `copy n=${n}`);
      for (const b of [X, Y, Z]) gpu.destroyBuffer(b);
      kernel.destroy();
    }
  });

  it('rejects bad shapes and buffers, naming the layer', async () => {
    const gpu = await testGpu();
    await expect(AddKernel.create(gpu, { size: 10, inputs: 0, label: 'add_3' }))
      .rejects.toThrow(/add_3: Add of 0 tensors of 10 elements: inputs must be a positive integer/);
    await expect(AddKernel.create(gpu, { size: 2.5, inputs: 2, label: 'add_3' }))
      .rejects.toThrow(/add_3: .*size must be a positive integer/);
    const tooBig = gpu.limits.maxStorageBufferBindingSize / 4 + 4;
    await expect(AddKernel.create(gpu, { size: tooBig, inputs: 2, label: 'big' }))
      .rejects.toThrow(/big: .*over this adapter's maxStorageBufferBindingSize/);
    const k = await AddKernel.create(gpu, { size: 10, inputs: 3, label: 'a' });
    const [p, q, r] = [gpu.createBuffer('p', 40), gpu.createBuffer('q', 40), gpu.createBuffer('r', 40)];
    expect(() => k.forward({ xs: [p, q], y: r })).toThrow(/a add.forward inputs=3 n=10: got 2 input buffers, expected 3/);
    expect(() => k.forward({ xs: [p, q, gpu.createBuffer('small', 8)], y: r })).toThrow(/buffer 'xs\[2\]' \(small\) is 8 bytes, needs 40/);
    expect(() => k.forward({ xs: [p, r, r], y: r })).toThrow(/y \(r\) is xs\[1\], xs\[2\]; y may alias at most one input/);
    expect(() => k.accumulate({ x: p, y: p })).toThrow(/a add.accumulate inputs=3 n=10: x and y are the same buffer/);
    k.destroy();
  });
});
