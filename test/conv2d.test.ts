import { describe, expect, it } from 'vitest';
import { Conv2dKernel, type Conv2dShape, type Conv2dTuning } from '../src/kernels/conv2d.ts';
import type { Gpu } from '../src/gpu/index.ts';
import { output, testGpu } from './helpers/gpu.ts';
import { randomArray } from './helpers/random.ts';
import { expectClose } from './helpers/compare.ts';
import { conv2dBackwardRef, conv2dPreactivationRef, conv2dRef, convGeometry } from './reference/conv2d.ts';

type Case = Omit<Conv2dShape, 'label'>;

function sizes(s: Case) {
  const { outH, outW } = convGeometry(s);
  const [kh, kw] = s.kernelSize;
  return {
    x: s.batch * s.height * s.width * s.inChannels,
    w: kh * kw * s.inChannels * s.outChannels,
    y: s.batch * outH * outW * s.outChannels,
  };
}

function name(s: Case): string {
  const [kh, kw] = s.kernelSize;
  return `N=${s.batch} ${s.height}x${s.width}x${s.inChannels} -> ${s.outChannels}, ${kh}x${kw} ${s.padding} ${s.activation}`;
}

/**
 * The variants the adapter can run for this shape: the tiled kernels always, subgroup ones when
 * possible (Cout % 4 == 0; the backward passes fall back to tiled kernels unless Cin % 4 == 0).
 */
function variants(gpu: Gpu, s: Case): Conv2dTuning['variant'][] {
  const aligned = s.outChannels % 4 === 0;
  const info = (gpu.device as GPUDevice & { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
  return aligned && gpu.features.has('subgroups') && (info?.subgroupMinSize ?? 0) >= 8 ? ['tiled', 'subgroup'] : ['tiled'];
}

async function runForward(gpu: Gpu, s: Case, tuning: Partial<Conv2dTuning>, seed: number) {
  const n = sizes(s);
  const x = randomArray(n.x, seed);
  const w = randomArray(n.w, seed + 1, -0.5, 0.5);
  const b = randomArray(s.outChannels, seed + 2);
  const k = await Conv2dKernel.create(gpu, { ...s, label: 'test_conv' }, tuning);
  const xb = gpu.upload('x', x);
  const wb = gpu.upload('w', w);
  const bb = gpu.upload('b', b);
  const yb = output(gpu, 'y', n.y);
  gpu.submit('conv2d forward test', k.forward({ x: xb, w: wb, b: bb, y: yb }));
  const y = await gpu.readF32(yb);
  for (const buf of [xb, wb, bb, yb]) gpu.destroyBuffer(buf);
  k.destroy();
  return { y, expected: conv2dRef(x, w, b, s), tuning: k.tuning };
}

/** GPU gradients for dy, with the float64 forward output as y (so the ReLU mask is exact). */
async function runBackward(gpu: Gpu, s: Case, tuning: Partial<Conv2dTuning>, x: Float32Array, w: Float32Array, b: Float32Array, dy: Float32Array) {
  const n = sizes(s);
  const k = await Conv2dKernel.create(gpu, { ...s, label: 'test_conv' }, tuning);
  const y = Float32Array.from(conv2dRef(x, w, b, s));
  const xb = gpu.upload('x', x);
  const wb = gpu.upload('w', w);
  const yb = gpu.upload('y', y);
  const dyb = gpu.upload('dy', dy);
  const dx = output(gpu, 'dx', n.x);
  const dw = output(gpu, 'dw', n.w);
  const db = output(gpu, 'db', s.outChannels);
  const relu = s.activation === 'relu';
  gpu.submit('conv2d backward test', [
    k.backwardInput({ dy: dyb, y: relu ? yb : undefined, w: wb, dx }),
    k.backwardFilter({ x: xb, dy: dyb, y: relu ? yb : undefined, dw, db }),
  ]);
  const out = { dx: await gpu.readF32(dx), dw: await gpu.readF32(dw), db: await gpu.readF32(db), y, tuning: k.tuning };
  for (const buf of [xb, wb, yb, dyb, dx, dw, db]) gpu.destroyBuffer(buf);
  k.destroy();
  return out;
}

describe('conv2d forward', () => {
  const cases: Case[] = [
    { batch: 1, height: 7, width: 11, inChannels: 3, outChannels: 64, kernelSize: [3, 3], padding: 'same', activation: 'relu' },
    { batch: 3, height: 15, width: 22, inChannels: 65, outChannels: 64, kernelSize: [3, 3], padding: 'same', activation: 'relu' },
    { batch: 3, height: 7, width: 11, inChannels: 64, outChannels: 64, kernelSize: [3, 3], padding: 'same', activation: 'relu' },
    { batch: 1, height: 15, width: 22, inChannels: 64, outChannels: 65, kernelSize: [3, 3], padding: 'valid', activation: 'linear' },
    { batch: 3, height: 7, width: 11, inChannels: 5, outChannels: 5, kernelSize: [1, 1], padding: 'same', activation: 'linear' },
    { batch: 1, height: 15, width: 22, inChannels: 8, outChannels: 12, kernelSize: [5, 5], padding: 'same', activation: 'relu' },
    { batch: 3, height: 7, width: 11, inChannels: 4, outChannels: 8, kernelSize: [2, 3], padding: 'same', activation: 'linear' },
    { batch: 1, height: 7, width: 11, inChannels: 64, outChannels: 128, kernelSize: [3, 3], padding: 'valid', activation: 'relu' },
    { batch: 3, height: 15, width: 22, inChannels: 16, outChannels: 36, kernelSize: [3, 3], padding: 'valid', activation: 'linear' },
  ];
  cases.forEach((s, i) => {
    it(`matches the float64 reference: ${name(s)}`, async () => {
      const gpu = await testGpu();
      for (const variant of variants(gpu, s)) {
        const r = await runForward(gpu, s, { variant }, 100 + 10 * i);
        expect(r.tuning.variant).toBe(variant);
        expectClose(r.y, r.expected, 1e-5, `y (${variant})`);
      }
    });
  });

  it('subgroup tiles of 8 and 48 pixels agree (tails in M and Cout)', async () => {
    const gpu = await testGpu();
    const s: Case = { batch: 3, height: 7, width: 11, inChannels: 12, outChannels: 44, kernelSize: [3, 3], padding: 'same', activation: 'relu' };
    if (!variants(gpu, s).includes('subgroup')) return expect(gpu.features.has('subgroups')).toBe(false);
    for (const pixelGroups of [1, 6]) {
      const r = await runForward(gpu, s, { variant: 'subgroup', pixelGroups }, 7);
      expectClose(r.y, r.expected, 1e-5, `y (pixelGroups ${pixelGroups})`);
    }
  });

  it('picks a variant from the adapter and replays an op with the same result', async () => {
    const gpu = await testGpu();
    const s: Case = { batch: 1, height: 7, width: 11, inChannels: 8, outChannels: 8, kernelSize: [3, 3], padding: 'same', activation: 'linear' };
    const k = await Conv2dKernel.create(gpu, { ...s, label: 'replay' });
    expect(k.outHeight).toBe(7);
    expect(k.outWidth).toBe(11);
    expect(variants(gpu, s)).toContain(k.tuning.variant);
    const n = sizes(s);
    const x = randomArray(n.x, 1);
    const w = randomArray(n.w, 2);
    const b = randomArray(8, 3);
    const y = output(gpu, 'y', n.y);
    const op = k.forward({ x: gpu.upload('x', x), w: gpu.upload('w', w), b: gpu.upload('b', b), y });
    gpu.submit('first', op);
    const first = await gpu.readF32(y);
    gpu.write(y, new Float32Array(n.y).fill(Number.NaN));
    gpu.submit('again', op);
    expectClose(await gpu.readF32(y), first, 0, 'replayed y');
    expectClose(first, conv2dRef(x, w, b, s), 1e-5, 'y');
    k.destroy();
  });
});

describe('conv2d backward', () => {
  const cases: [Case, Partial<Conv2dTuning>][] = [
    [{ batch: 3, height: 7, width: 11, inChannels: 64, outChannels: 64, kernelSize: [3, 3], padding: 'same', activation: 'relu' }, {}],
    [{ batch: 1, height: 15, width: 22, inChannels: 5, outChannels: 65, kernelSize: [3, 3], padding: 'same', activation: 'relu' }, {}],
    [{ batch: 3, height: 7, width: 11, inChannels: 3, outChannels: 8, kernelSize: [2, 3], padding: 'valid', activation: 'linear' }, {}],
    [{ batch: 1, height: 15, width: 22, inChannels: 12, outChannels: 20, kernelSize: [5, 5], padding: 'valid', activation: 'relu' }, { splits: 3 }],
    [{ batch: 3, height: 7, width: 11, inChannels: 36, outChannels: 8, kernelSize: [1, 1], padding: 'same', activation: 'linear' }, { splits: 5 }],
  ];
  cases.forEach(([s, tuning], i) => {
    it(`dx, dw, db match the float64 reference: ${name(s)}${tuning.splits ? `, ${tuning.splits} splits` : ''}`, async () => {
      const gpu = await testGpu();
      const n = sizes(s);
      const x = randomArray(n.x, 200 + i);
      const w = randomArray(n.w, 300 + i, -0.5, 0.5);
      const b = randomArray(s.outChannels, 400 + i, -0.5, 0.5);
      const dy = randomArray(n.y, 500 + i);
      for (const variant of variants(gpu, s)) {
        const r = await runBackward(gpu, s, { ...tuning, variant }, x, w, b, dy);
        const ref = conv2dBackwardRef(x, w, dy, r.y, s);
        expectClose(r.dx, ref.dx, 1e-4, `dx (${variant})`);
        expectClose(r.dw, ref.dw, 1e-4, `dw (${variant}, ${r.tuning.splits} splits)`);
        expectClose(r.db, ref.db, 1e-4, `db (${variant})`);
      }
    });
  });

  // L = sum(act(conv(x, w) + b) .* r): its gradients by central differences of the float64
  // reference, against the GPU kernels fed dy = r.
  const fdCases: Case[] = [
    { batch: 2, height: 4, width: 5, inChannels: 4, outChannels: 8, kernelSize: [3, 3], padding: 'same', activation: 'relu' },
    { batch: 2, height: 4, width: 5, inChannels: 3, outChannels: 5, kernelSize: [2, 3], padding: 'valid', activation: 'linear' },
    { batch: 1, height: 5, width: 4, inChannels: 5, outChannels: 3, kernelSize: [2, 2], padding: 'same', activation: 'relu' },
  ];
  fdCases.forEach((s, i) => {
    it(`match central finite differences: ${name(s)}`, async () => {
      const gpu = await testGpu();
      const n = sizes(s);
      const x = Float64Array.from(randomArray(n.x, 600 + i));
      const w = Float64Array.from(randomArray(n.w, 700 + i, -0.5, 0.5));
      const b = Float64Array.from(randomArray(s.outChannels, 800 + i, -0.2, 0.2));
      const r = Float64Array.from(randomArray(n.y, 900 + i));
      const eps = 5e-4;
      // Moving one input by eps moves a pre-activation by at most eps * max(|x|, |w|, 1); one
      // that close to the ReLU kink would make the difference quotient wrong.
      if (s.activation === 'relu') {
        const z = conv2dPreactivationRef(x, w, b, s);
        const closest = Math.min(...Array.from(z, Math.abs));
        const reach = eps * Math.max(1, ...Array.from(x, Math.abs), ...Array.from(w, Math.abs));
        expect(closest, 'a pre-activation is within finite-difference reach of 0: pick another seed').toBeGreaterThan(reach);
      }
      const loss = (xx: Float64Array, ww: Float64Array, bb: Float64Array) => {
        const y = conv2dRef(xx, ww, bb, s);
        let l = 0;
        for (let j = 0; j < y.length; j++) l += y[j] * r[j];
        return l;
      };
      const numeric = (v: Float64Array) => {
        const g = new Float64Array(v.length);
        for (let j = 0; j < v.length; j++) {
          const keep = v[j];
          v[j] = keep + eps;
          const up = loss(x, w, b);
          v[j] = keep - eps;
          const down = loss(x, w, b);
          v[j] = keep;
          g[j] = (up - down) / (2 * eps);
        }
        return g;
      };
      const fd = { dx: numeric(x), dw: numeric(w), db: numeric(b) };
      for (const variant of variants(gpu, s)) {
        const got = await runBackward(gpu, s, { variant }, Float32Array.from(x), Float32Array.from(w), Float32Array.from(b), Float32Array.from(r));
        expectClose(got.dx, fd.dx, 1e-3, `dx (${variant})`);
        expectClose(got.dw, fd.dw, 1e-3, `dw (${variant})`);
        expectClose(got.db, fd.db, 1e-3, `db (${variant})`);
      }
    });
  });

  it('overwrites the gradients when replayed (no accumulation)', async () => {
    const gpu = await testGpu();
    const s: Case = { batch: 2, height: 7, width: 11, inChannels: 8, outChannels: 12, kernelSize: [3, 3], padding: 'same', activation: 'linear' };
    const n = sizes(s);
    const k = await Conv2dKernel.create(gpu, { ...s, label: 'replay' }, { splits: 2 });
    const x = randomArray(n.x, 1);
    const w = randomArray(n.w, 2);
    const dy = randomArray(n.y, 3);
    const xb = gpu.upload('x', x);
    const dyb = gpu.upload('dy', dy);
    const dx = output(gpu, 'dx', n.x);
    const dw = output(gpu, 'dw', n.w);
    const db = output(gpu, 'db', s.outChannels);
    const ops = [k.backwardInput({ dy: dyb, w: gpu.upload('w', w), dx }), k.backwardFilter({ x: xb, dy: dyb, dw, db })];
    gpu.submit('twice', [...ops, ...ops]);
    const ref = conv2dBackwardRef(x, w, dy, undefined, s);
    expectClose(await gpu.readF32(dx), ref.dx, 1e-4, 'dx');
    expectClose(await gpu.readF32(dw), ref.dw, 1e-4, 'dw');
    expectClose(await gpu.readF32(db), ref.db, 1e-4, 'db');
    k.destroy();
  });
});

describe('conv2d validation', () => {
  const base: Conv2dShape = { batch: 2, height: 3, width: 3, inChannels: 4, outChannels: 4, kernelSize: [3, 3], padding: 'valid', activation: 'relu', label: 'block9_conv1' };

  it('rejects a kernel larger than the input, naming the layer', async () => {
    const gpu = await testGpu();
    await expect(Conv2dKernel.create(gpu, { ...base, kernelSize: [5, 5] })).rejects.toThrow(/block9_conv1.*5x5 kernel is larger than the 3x3 input/);
  });

  it('rejects non-positive or fractional sizes', async () => {
    const gpu = await testGpu();
    await expect(Conv2dKernel.create(gpu, { ...base, inChannels: 0 })).rejects.toThrow(/block9_conv1.*inChannels must be a positive integer/);
    await expect(Conv2dKernel.create(gpu, { ...base, batch: 1.5 })).rejects.toThrow(/block9_conv1.*batch must be a positive integer/);
  });

  it('rejects buffers over maxStorageBufferBindingSize, naming the layer, the shape and the limit', async () => {
    const gpu = await testGpu();
    const max = gpu.limits.maxStorageBufferBindingSize;
    const batch = Math.ceil(max / (224 * 224 * 64 * 4)) + 1;
    await expect(Conv2dKernel.create(gpu, { ...base, batch, height: 224, width: 224, inChannels: 64, outChannels: 64, padding: 'same' }))
      .rejects.toThrow(new RegExp(`block9_conv1: conv2d \\[N=${batch}, H=224, W=224, Cin=64\\].*maxStorageBufferBindingSize`));
  });

  it('needs y for the ReLU backward passes', async () => {
    const gpu = await testGpu();
    const k = await Conv2dKernel.create(gpu, { ...base, padding: 'same' });
    const buf = gpu.createBuffer('any', 4096);
    expect(() => k.backwardInput({ dy: buf, w: buf, dx: buf })).toThrow(/block9_conv1: conv2d.backwardInput needs y/);
    expect(() => k.backwardFilter({ x: buf, dy: buf, dw: buf, db: buf })).toThrow(/block9_conv1: conv2d.backwardFilter needs y/);
    gpu.destroyBuffer(buf);
    k.destroy();
  });
});
