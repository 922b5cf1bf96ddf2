import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { GpuError, acquireGpu, platformGpu, registerShaders, type Gpu } from '../src/gpu/index.ts';
import { output, testGpu } from './helpers/gpu.ts';

// Fixture shaders, registered under their file names (never written into shaders/).
const FIXTURES = ['runtime_scale', 'runtime_syntax_error', 'runtime_operand_error', 'runtime_type_error'];
beforeAll(() => {
  for (const name of FIXTURES) registerShaders({ [name]: readFileSync(new URL(`./fixtures/${name}.wgsl`, import.meta.url), 'utf8') });
});

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<GpuError> {
  try {
    await p;
  } catch (e) {
    return e as GpuError;
  }
  return expect.fail('expected a rejection');
}

function thrown(f: () => unknown): GpuError {
  try {
    f();
  } catch (e) {
    return e as GpuError;
  }
  return expect.fail('expected an exception');
}

/** dst = src * SCALE through the fixture shader; returns dst. */
async function runScale(gpu: Gpu, scale: number, src: Float32Array): Promise<Float32Array> {
  const p = await gpu.pipeline('runtime_scale', { entryPoint: 'scale', constants: { SCALE: scale } });
  const shape = gpu.uniform('shape', new Uint32Array([src.length]));
  const a = gpu.upload('src', src);
  const b = output(gpu, 'dst', src.length);
  gpu.submit('scale', gpu.dispatch('scale', p, gpu.bindGroup(p, { shape, src: a, dst: b }), [Math.ceil(src.length / 64)]));
  const out = await gpu.readF32(b);
  for (const buf of [shape, a, b]) gpu.destroyBuffer(buf);
  return out;
}

describe('device acquisition', () => {
  it("requests the adapter's own limits", async () => {
    const gpu = await testGpu();
    const adapter = await (await platformGpu()).requestAdapter();
    expect(adapter).not.toBeNull();
    for (const name of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxStorageBuffersPerShaderStage'] as const) {
      expect(gpu.limits[name], name).toBe(adapter!.limits[name]);
      expect(gpu.device.limits[name], name).toBe(adapter!.limits[name]);
    }
  });

  it('describe() names the vendor and architecture', async () => {
    const gpu = await testGpu();
    const adapter = await (await platformGpu()).requestAdapter();
    const info = (adapter as GPUAdapter & { info: GPUAdapterInfo }).info;
    expect(info.vendor.length + info.architecture.length).toBeGreaterThan(0);
    expect(gpu.adapter.vendor).toBe(info.vendor);
    expect(gpu.adapter.architecture).toBe(info.architecture);
    expect(gpu.describe()).toContain(info.vendor);
    expect(gpu.describe()).toContain(info.architecture);
  });

  it('a second acquireGpu gives an independent, working device', async () => {
    const gpu = await acquireGpu();
    try {
      expect(gpu.device).not.toBe((await testGpu()).device);
      expect(Array.from(await runScale(gpu, 2, Float32Array.from([1, 2, 3])))).toEqual([2, 4, 6]);
    } finally {
      gpu.destroy();
    }
  });
});

describe('buffers', () => {
  it('memory() counts creation and destruction exactly (bytes and buffers)', async () => {
    const gpu = await testGpu();
    const m0 = gpu.memory();
    const a = gpu.createBuffer('a', 100);
    const b = gpu.createBuffer('b', 6); // rounded up to 8
    const c = gpu.createBuffer('c', 0); // at least 4
    const u = gpu.uniform('u', new Uint32Array([1])); // padded to 16
    const d = gpu.upload('d', new Float32Array(10));
    expect(gpu.memory()).toEqual({ numBytes: m0.numBytes + 100 + 8 + 4 + 16 + 40, numBuffers: m0.numBuffers + 5 });
    expect([a.size, b.size, c.size, u.size, d.size]).toEqual([100, 8, 4, 16, 40]);
    gpu.destroyBuffer(b);
    expect(gpu.memory()).toEqual({ numBytes: m0.numBytes + 100 + 4 + 16 + 40, numBuffers: m0.numBuffers + 4 });
    gpu.destroyBuffer(b); // a second destroy changes nothing
    expect(gpu.memory()).toEqual({ numBytes: m0.numBytes + 100 + 4 + 16 + 40, numBuffers: m0.numBuffers + 4 });
    await gpu.readF32(d); // the staging buffer of a read is released
    expect(gpu.memory().numBuffers).toBe(m0.numBuffers + 4);
    for (const buf of [a, c, u, d]) gpu.destroyBuffer(buf);
    expect(gpu.memory()).toEqual(m0);
  });

  it('a buffer over maxBufferSize is refused with a limit error naming it', async () => {
    const gpu = await testGpu();
    const err = thrown(() => gpu.createBuffer('huge activations', gpu.limits.maxBufferSize + 4));
    expect(err).toBeInstanceOf(GpuError);
    expect(err.kind).toBe('limit');
    expect(err.message).toMatch(/huge activations: .*maxBufferSize/);
  });
});

describe('pipelines', () => {
  it('are cached per shader, entry point and constants', async () => {
    const gpu = await testGpu();
    const [p1, p2] = await Promise.all([
      gpu.pipeline('runtime_scale', { entryPoint: 'scale', constants: { SCALE: 2, WG: 64 } }),
      gpu.pipeline('runtime_scale', { entryPoint: 'scale', constants: { WG: 64, SCALE: 2 } }),
    ]);
    expect(p2).toBe(p1);
    const p3 = await gpu.pipeline('runtime_scale', { entryPoint: 'scale', constants: { SCALE: 3, WG: 64 } });
    expect(p3).not.toBe(p1);
    expect(p3.pipeline).not.toBe(p1.pipeline);
    // and the constants really differ on the device
    const x = Float32Array.from([1, -2, 0.5]);
    expect(Array.from(await runScale(gpu, 2, x))).toEqual([2, -4, 1]);
    expect(Array.from(await runScale(gpu, 3, x))).toEqual([3, -6, 1.5]);
  });

  it('bind group layouts come from the WGSL (names, binding numbers, kinds)', async () => {
    const gpu = await testGpu();
    const p = await gpu.pipeline('runtime_scale', { entryPoint: 'scale' });
    expect(p.bindings).toEqual([
      { name: 'shape', binding: 0, kind: 'uniform' },
      { name: 'src', binding: 1, kind: 'read-only-storage' },
      { name: 'dst', binding: 2, kind: 'storage' },
    ]);
  });

  it('an unknown override constant is an error naming it', async () => {
    const gpu = await testGpu();
    const err = await rejection(gpu.pipeline('runtime_scale', { entryPoint: 'scale', constants: { SCALEE: 2 } }));
    expect(err).toBeInstanceOf(GpuError);
    expect(err.message).toMatch(/constant 'SCALEE' is not an override in runtime_scale/);
    expect(err.message).toContain('SCALE, WG');
  });

  it('an unknown entry point is an error naming the shader and the entry points it has', async () => {
    const gpu = await testGpu();
    await expect(gpu.pipeline('runtime_scale', { entryPoint: 'main' })).rejects.toThrow(/runtime_scale.*no @compute entry point 'main' \(found: scale\)/);
  });

  // Some syntax errors stop the WGSL reflection, others only the WGSL compiler: both must
  // name the shader and the line.
  for (const [name, line, what] of [
    ['runtime_syntax_error', 6, /invalid character/],
    ['runtime_operand_error', 6, /unable to parse right side of \+ expression/],
    ['runtime_type_error', 6, /unresolved call target 'no_such_function'/],
  ] as const) {
    it(`a WGSL error fails at pipeline creation with the shader name and line (${name})`, async () => {
      const gpu = await testGpu();
      const err = await rejection(gpu.pipeline(name));
      expect(err).toBeInstanceOf(GpuError);
      expect(err.kind).toBe('validation');
      expect(err.message).toMatch(new RegExp(`${name}:${line}:\\d+`));
      expect(err.message).toMatch(what);
      // nothing leaks into later, unrelated work
      await gpu.sync();
    });
  }
});

describe('bind groups', () => {
  it('a missing or extra binding name is an error naming it and the shader', async () => {
    const gpu = await testGpu();
    const p = await gpu.pipeline('runtime_scale', { entryPoint: 'scale' });
    const shape = gpu.uniform('shape', new Uint32Array([4]));
    const buf = gpu.createBuffer('buf', 16);
    const missing = thrown(() => gpu.bindGroup(p, { shape, src: buf }, 'my layer'));
    expect(missing).toBeInstanceOf(GpuError);
    expect(missing.kind).toBe('binding');
    expect(missing.message).toMatch(/my layer: bindings do not match runtime_scale:scale .*missing dst/);
    const extra = thrown(() => gpu.bindGroup(p, { shape, src: buf, dst: buf, bias: buf }, 'my layer'));
    expect(extra.message).toMatch(/runtime_scale:scale .*not in the shader: bias/);
    expect(extra.message).not.toMatch(/missing/);
    gpu.destroyBuffer(shape);
    gpu.destroyBuffer(buf);
  });

  it('a binding larger than maxStorageBufferBindingSize is a limit error naming it', async () => {
    const gpu = await testGpu();
    const p = await gpu.pipeline('runtime_scale', { entryPoint: 'scale' });
    const limit = gpu.limits.maxStorageBufferBindingSize;
    const shape = gpu.uniform('shape', new Uint32Array([4]));
    const small = gpu.createBuffer('small', 16);
    // A real buffer of limit + 4 bytes where the adapter allows one (lavapipe: 128 MiB + 4)...
    if (gpu.limits.maxBufferSize >= limit + 4) {
      const big = gpu.createBuffer('big', limit + 4);
      const err = thrown(() => gpu.bindGroup(p, { shape, src: small, dst: big }, 'block5_conv1'));
      expect(err).toBeInstanceOf(GpuError);
      expect(err.kind).toBe('limit');
      expect(err.message).toMatch(/block5_conv1: binding 'dst' is .*maxStorageBufferBindingSize/);
      // ...while a window of exactly the limit into it is fine
      gpu.bindGroup(p, { shape, src: small, dst: { buffer: big, offset: 0, size: limit } });
      gpu.destroyBuffer(big);
    }
    // ...and an explicit binding size over the limit is caught before WebGPU sees it
    const err = thrown(() => gpu.bindGroup(p, { shape, src: { buffer: small, size: limit + 4 }, dst: small }, 'block5_conv2'));
    expect(err.kind).toBe('limit');
    expect(err.message).toMatch(/block5_conv2: binding 'src' is/);
    await gpu.sync();
    gpu.destroyBuffer(shape);
    gpu.destroyBuffer(small);
  });
});

describe('dispatch and submit', () => {
  it('grid() folds large 1-D workgroup counts under the per-dimension limit', async () => {
    const gpu = await testGpu();
    const max = gpu.limits.maxComputeWorkgroupsPerDimension;
    expect(gpu.grid(1)).toEqual([1, 1]);
    expect(gpu.grid(max)).toEqual([max, 1]);
    for (const n of [max + 1, 3 * max + 7, 40_000_000 / 64]) {
      const [x, y] = gpu.grid(n);
      expect(x * y).toBeGreaterThanOrEqual(n);
      expect(x).toBeLessThanOrEqual(max);
      expect(y).toBeLessThanOrEqual(max);
      expect(x * (y - 1)).toBeLessThan(n); // no wholly idle row
    }
  });

  it('a dispatch over the per-dimension limit is a limit error naming it', async () => {
    const gpu = await testGpu();
    const p = await gpu.pipeline('runtime_scale', { entryPoint: 'scale' });
    const shape = gpu.uniform('shape', new Uint32Array([4]));
    const a = gpu.createBuffer('a', 16);
    const b = gpu.createBuffer('b', 16);
    const group = gpu.bindGroup(p, { shape, src: a, dst: b });
    const err = thrown(() => gpu.dispatch('too wide', p, group, [gpu.limits.maxComputeWorkgroupsPerDimension + 1]));
    expect(err.kind).toBe('limit');
    expect(err.message).toMatch(/too wide: dispatch of \d+x1x1 workgroups exceeds maxComputeWorkgroupsPerDimension/);
    for (const buf of [shape, a, b]) gpu.destroyBuffer(buf);
  });

  it('a validation error in a submitted op (destroyed buffer) surfaces from sync() with the submit label', async () => {
    const gpu = await testGpu();
    const p = await gpu.pipeline('runtime_scale', { entryPoint: 'scale' });
    const shape = gpu.uniform('shape', new Uint32Array([4]));
    const a = gpu.createBuffer('a', 16);
    const b = gpu.createBuffer('b', 16);
    const op = gpu.dispatch('scale n=4', p, gpu.bindGroup(p, { shape, src: a, dst: b }), [1]);
    gpu.destroyBuffer(a);
    gpu.submit('train step 12', op);
    const err = await rejection(gpu.sync());
    expect(err).toBeInstanceOf(GpuError);
    expect(err.kind).toBe('validation');
    expect(err.message).toMatch(/^train step 12: /);
    expect(err.message).toMatch(/destroyed/i);
    await gpu.sync(); // reported once
    for (const buf of [shape, b]) gpu.destroyBuffer(buf);
  });

  it('a validation error in a submitted op (one buffer bound read-only and writable) names the submit and the buffer', async () => {
    const gpu = await testGpu();
    const p = await gpu.pipeline('runtime_scale', { entryPoint: 'scale' });
    const shape = gpu.uniform('shape', new Uint32Array([4]));
    const a = gpu.createBuffer('a', 16);
    const op = gpu.dispatch('aliased scale n=4', p, gpu.bindGroup(p, { shape, src: a, dst: a }), [1]);
    gpu.submit('eval step 3', op);
    const err = await rejection(gpu.sync());
    expect(err).toBeInstanceOf(GpuError);
    expect(err.kind).toBe('validation');
    expect(err.message).toMatch(/^eval step 3: /);
    expect(err.message).toMatch(/Buffer "a".*writable/);
    // a read also reports pending errors first, then later work is clean again
    gpu.submit('eval step 4', op);
    await expect(gpu.readF32(a)).rejects.toThrow(/eval step 4/);
    expect(Array.from(await runScale(gpu, 2, Float32Array.from([5])))).toEqual([10]);
    gpu.destroyBuffer(shape);
    gpu.destroyBuffer(a);
  });
});
