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
  const strides = s.strides ? ` s=${s.strides.join('x')}` : '';
  return `N=${s.batch} ${s.height}x${s.width}x${s.inChannels} -> ${s.outChannels}, ${kh}x${kw}${strides} ${s.padding} ${s.activation}${s.useBias === false ? ' no bias' : ''}`;
}

/**
 * The variants the adapter can run for this shape: the tiled kernels always, subgroup ones when
 * possible (Cout % 4 == 0; the backward passes fall back to tiled kernels unless Cin % 4 == 0),
 * the large tiles where Cin and Cout are multiples of 4.
 */
function variants(gpu: Gpu, s: Case): Conv2dTuning['variant'][] {
  const aligned = s.outChannels % 4 === 0;
  const info = (gpu.device as GPUDevice & { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
  const out: Conv2dTuning['variant'][] = ['tiled'];
  if (aligned && gpu.features.has('subgroups') && (info?.subgroupMinSize ?? 0) >= 8) out.push('subgroup');
  if (aligned && s.inChannels % 4 === 0) out.push('large');
  return out;
}

async function runForward(gpu: Gpu, s: Case, tuning: Partial<Conv2dTuning>, seed: number, xScale = 1) {
  const n = sizes(s);
  const x = randomArray(n.x, seed, -xScale, xScale);
  const w = randomArray(n.w, seed + 1, -0.5, 0.5);
  const b = randomArray(s.outChannels, seed + 2);
  const k = await Conv2dKernel.create(gpu, { ...s, label: 'test_conv' }, tuning);
  const xb = gpu.upload('x', x);
  const wb = gpu.upload('w', w);
  // Without a bias, no b at all: the kernel must not need one.
  const bb = s.useBias === false ? undefined : gpu.upload('b', b);
  const yb = output(gpu, 'y', n.y);
  gpu.submit('conv2d forward test', k.forward({ x: xb, w: wb, b: bb, y: yb }));
  const y = await gpu.readF32(yb);
  for (const buf of [xb, wb, bb, yb]) if (buf) gpu.destroyBuffer(buf);
  k.destroy();
  return { y, expected: conv2dRef(x, w, s.useBias === false ? undefined : b, s), tuning: k.tuning, kernel: k };
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
  const noBias = s.useBias === false;
  const db = output(gpu, 'db', s.outChannels);
  const masked = s.activation !== 'linear';
  gpu.submit('conv2d backward test', [
    k.backwardInput({ dy: dyb, y: masked ? yb : undefined, w: wb, dx }),
    k.backwardFilter({ x: xb, dy: dyb, y: masked ? yb : undefined, dw, db: noBias ? undefined : db }),
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
    [{ batch: 2, height: 9, width: 6, inChannels: 11, outChannels: 12, kernelSize: [3, 3], padding: 'valid', activation: 'relu6' }, {}],
    [{ batch: 1, height: 7, width: 5, inChannels: 12, outChannels: 36, kernelSize: [3, 3], padding: 'valid', activation: 'linear' }, {}],
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
      // Winograd where it applies: the input gradient by the rotated transform where Cout >= 8 is a multiple of 4
      const wino = s.kernelSize.join('x') === '3x3' ? [{ variant: 'tiled' as const, winograd: true }] : [];
      for (const t of [...variants(gpu, s).map((variant) => ({ variant })), ...wino]) {
        const variant = `${t.variant}${'winograd' in t ? ' + winograd' : ''}`;
        const r = await runBackward(gpu, s, { ...tuning, ...t }, x, w, b, dy);
        if ('winograd' in t) expect(gpu.kernelChoices.get('test_conv')).toMatch(s.outChannels % 4 === 0 && s.outChannels >= 8 ? /winograd .*forward and input gradient/ : /winograd .*forward, tiled backward/);
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

describe('conv2d strides, ReLU6, no bias, kernels 1x1 to 7x7', () => {
  // Forward, dx, dw and db of each case against the float64 reference, with every variant the
  // adapter runs. Even inputs with 'same' and stride 2 pad asymmetrically (0 before, 1 after
  // for k = 3); 'valid' with stride 2 leaves input rows / columns no window covers (dx = 0 there).
  const cases: [Case, Partial<Conv2dTuning>][] = [
    [{ batch: 2, height: 8, width: 10, inChannels: 8, outChannels: 12, kernelSize: [3, 3], strides: [2, 2], padding: 'same', activation: 'relu6' }, {}],
    [{ batch: 1, height: 9, width: 11, inChannels: 3, outChannels: 32, kernelSize: [3, 3], strides: [2, 2], padding: 'same', activation: 'linear', useBias: false }, {}],
    [{ batch: 2, height: 8, width: 10, inChannels: 12, outChannels: 8, kernelSize: [3, 3], strides: [2, 2], padding: 'valid', activation: 'relu' }, { splits: 3 }],
    [{ batch: 1, height: 15, width: 14, inChannels: 3, outChannels: 8, kernelSize: [7, 7], strides: [2, 2], padding: 'valid', activation: 'relu' }, {}],
    [{ batch: 2, height: 9, width: 8, inChannels: 16, outChannels: 20, kernelSize: [1, 1], strides: [2, 2], padding: 'valid', activation: 'linear' }, {}],
    [{ batch: 2, height: 7, width: 10, inChannels: 5, outChannels: 6, kernelSize: [3, 3], strides: [1, 2], padding: 'same', activation: 'relu6', useBias: false }, {}],
    [{ batch: 1, height: 9, width: 9, inChannels: 8, outChannels: 12, kernelSize: [2, 2], strides: [2, 2], padding: 'valid', activation: 'linear' }, {}],
    [{ batch: 1, height: 10, width: 7, inChannels: 4, outChannels: 8, kernelSize: [4, 4], strides: [2, 1], padding: 'same', activation: 'relu' }, { splits: 2 }],
    [{ batch: 1, height: 8, width: 9, inChannels: 4, outChannels: 8, kernelSize: [7, 7], padding: 'same', activation: 'relu6', useBias: false }, {}],
    [{ batch: 2, height: 6, width: 7, inChannels: 7, outChannels: 9, kernelSize: [4, 4], padding: 'same', activation: 'linear' }, {}],
  ];
  cases.forEach(([s, tuning], i) => {
    it(`forward, dx, dw, db match the float64 reference: ${name(s)}${tuning.splits ? `, ${tuning.splits} splits` : ''}`, async () => {
      const gpu = await testGpu();
      const n = sizes(s);
      // ReLU6 cases get larger inputs so that some outputs clip at 6.
      const xScale = s.activation === 'relu6' ? 4 : 1;
      const x = randomArray(n.x, 1000 + i, -xScale, xScale);
      const w = randomArray(n.w, 1100 + i, -0.5, 0.5);
      const b = randomArray(s.outChannels, 1200 + i, -0.5, 0.5);
      const dy = randomArray(n.y, 1300 + i);
      const yRef = conv2dRef(x, w, b, s);
      if (s.activation === 'relu6') {
        expect(yRef.some((v) => v === 6) && yRef.some((v) => v === 0) && yRef.some((v) => v > 0 && v < 6), 'y has clipped, zero and linear outputs').toBe(true);
      }
      for (const variant of variants(gpu, s)) {
        const f = await runForward(gpu, s, { ...tuning, variant }, 1000 + i, xScale);
        const g = convGeometry(s);
        expect([f.kernel.outHeight, f.kernel.outWidth]).toEqual([g.outH, g.outW]);
        expectClose(f.y, f.expected, 1e-5, `y (${variant})`);
        const r = await runBackward(gpu, s, { ...tuning, variant }, x, w, b, dy);
        const ref = conv2dBackwardRef(x, w, dy, r.y, s);
        expectClose(r.dx, ref.dx, 1e-4, `dx (${variant})`);
        expectClose(r.dw, ref.dw, 1e-4, `dw (${variant}, ${r.tuning.splits} splits)`);
        if (s.useBias !== false) expectClose(r.db, ref.db, 1e-4, `db (${variant})`);
      }
    });
  });

  it('follows TF for the output size and the asymmetric same padding', () => {
    const geo = (height: number, k: number, stride: number, padding: 'same' | 'valid') =>
      convGeometry({ batch: 1, height, width: height, inChannels: 1, outChannels: 1, kernelSize: [k, k], strides: [stride, stride], padding, activation: 'linear' });
    // [in, k, s, padding] -> [out, padTop]; TF: total = max((out - 1) * s + k - in, 0), top = floor(total / 2).
    const table: [number, number, number, 'same' | 'valid', number, number][] = [
      [8, 3, 2, 'same', 4, 0], [9, 3, 2, 'same', 5, 1], [8, 2, 1, 'same', 8, 0], [8, 4, 1, 'same', 8, 1],
      [224, 7, 2, 'same', 112, 2], [230, 7, 2, 'valid', 112, 0], [8, 3, 2, 'valid', 3, 0], [9, 1, 2, 'valid', 5, 0],
      [8, 1, 2, 'same', 4, 0], [7, 7, 1, 'same', 7, 3],
    ];
    for (const [size, k, stride, padding, out, pad] of table) {
      expect(geo(size, k, stride, padding), `${size} k=${k} s=${stride} ${padding}`).toMatchObject({ outH: out, padTop: pad });
    }
  });

  // The reference's backward against central differences of its forward (float64), and the GPU
  // against both: L = sum(act(conv(x, w) + b) .* r).
  const fdCases: Case[] = [
    { batch: 1, height: 6, width: 5, inChannels: 4, outChannels: 4, kernelSize: [3, 3], strides: [2, 2], padding: 'same', activation: 'relu6' },
    { batch: 2, height: 6, width: 7, inChannels: 3, outChannels: 5, kernelSize: [3, 3], strides: [1, 2], padding: 'valid', activation: 'relu6', useBias: false },
    { batch: 1, height: 5, width: 6, inChannels: 2, outChannels: 3, kernelSize: [2, 2], strides: [2, 2], padding: 'same', activation: 'relu' },
  ];
  fdCases.forEach((s, i) => {
    it(`reference and GPU gradients match central finite differences: ${name(s)}`, async () => {
      const gpu = await testGpu();
      const n = sizes(s);
      const xScale = s.activation === 'relu6' ? 4 : 1;
      const x = Float64Array.from(randomArray(n.x, 1400 + i, -xScale, xScale));
      const w = Float64Array.from(randomArray(n.w, 1500 + i, -0.5, 0.5));
      const b = Float64Array.from(randomArray(s.outChannels, 1600 + i, -0.2, 0.2));
      const r = Float64Array.from(randomArray(n.y, 1700 + i));
      const eps = 5e-4;
      if (s.activation !== 'linear') {
        // No pre-activation within finite-difference reach of a kink (0, and 6 for ReLU6).
        const z = conv2dPreactivationRef(x, w, b, s);
        const kinks = s.activation === 'relu6' ? [0, 6] : [0];
        const closest = Math.min(...Array.from(z, (v) => Math.min(...kinks.map((k) => Math.abs(v - k)))));
        const reach = eps * Math.max(1, ...Array.from(x, Math.abs), ...Array.from(w, Math.abs));
        expect(closest, 'a pre-activation is within finite-difference reach of a kink: pick another seed').toBeGreaterThan(reach);
        if (s.activation === 'relu6') expect(z.some((v) => v > 6), 'some outputs clip at 6').toBe(true);
      }
      const loss = () => {
        const y = conv2dRef(x, w, b, s);
        let l = 0;
        for (let j = 0; j < y.length; j++) l += y[j] * r[j];
        return l;
      };
      const numeric = (v: Float64Array) => {
        const g = new Float64Array(v.length);
        for (let j = 0; j < v.length; j++) {
          const keep = v[j];
          v[j] = keep + eps;
          const up = loss();
          v[j] = keep - eps;
          const down = loss();
          v[j] = keep;
          g[j] = (up - down) / (2 * eps);
        }
        return g;
      };
      const fd = { dx: numeric(x), dw: numeric(w), db: numeric(b) };
      const ref = conv2dBackwardRef(x, w, r, conv2dRef(x, w, b, s), s);
      expectClose(ref.dx, fd.dx, 1e-6, 'reference dx');
      expectClose(ref.dw, fd.dw, 1e-6, 'reference dw');
      if (s.useBias !== false) expectClose(ref.db, fd.db, 1e-6, 'reference db');
      else expectClose(fd.db, new Float64Array(s.outChannels), 1e-9, 'no bias: L does not depend on b');
      for (const variant of variants(gpu, s)) {
        const got = await runBackward(gpu, s, { variant }, Float32Array.from(x), Float32Array.from(w), Float32Array.from(b), Float32Array.from(r));
        expectClose(got.dx, fd.dx, 1e-3, `dx (${variant})`);
        expectClose(got.dw, fd.dw, 1e-3, `dw (${variant})`);
        if (s.useBias !== false) expectClose(got.db, fd.db, 1e-3, `db (${variant})`);
      }
    });
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

  it('rejects strides other than 1 or 2 and unknown activations', async () => {
    const gpu = await testGpu();
    await expect(Conv2dKernel.create(gpu, { ...base, strides: [3, 1] })).rejects.toThrow(/block9_conv1.*strides must be \[rows, columns\] with each 1 or 2, got \[3,1\]/);
    await expect(Conv2dKernel.create(gpu, { ...base, activation: 'gelu' as 'relu' })).rejects.toThrow(/block9_conv1.*activation must be 'relu', 'relu6' or 'linear'/);
  });

  it('needs b and db with a bias, y with ReLU6', async () => {
    const gpu = await testGpu();
    const buf = gpu.createBuffer('any', 4096);
    const k = await Conv2dKernel.create(gpu, { ...base, padding: 'same', activation: 'relu6', strides: [2, 2] });
    expect(() => k.forward({ x: buf, w: buf, y: buf })).toThrow(/block9_conv1: conv2d.forward needs b/);
    expect(() => k.backwardFilter({ x: buf, dy: buf, y: buf, dw: buf })).toThrow(/block9_conv1: conv2d.backwardFilter needs db/);
    expect(() => k.backwardInput({ dy: buf, w: buf, dx: buf })).toThrow(/block9_conv1: conv2d.backwardInput needs y .* 'relu6'/);
    k.destroy();
    gpu.destroyBuffer(buf);
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
