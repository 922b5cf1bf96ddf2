import { describe, expect, it } from 'vitest';
import type { Gpu } from '../src/gpu/index.ts';
import { GuardKernel } from '../src/kernels/guard.ts';
import { AdamKernel } from '../src/kernels/adam.ts';
import { Adam, AdamW, RMSprop, SGD, optimizerFromName, type Optimizer } from '../src/graph/optimizers.ts';
import { CosineDecay, ExponentialDecay, PiecewiseConstantDecay, type LearningRateSchedule } from '../src/graph/schedules.ts';
import type { OptimizerUpdates } from '../src/kernels/optimizer.ts';
import { testGpu } from './helpers/gpu.ts';
import { randomArray } from './helpers/random.ts';
import { OptimizerRef, refSlots, type RefOptions } from './reference/optimizers.ts';

// scalar path, scalar over one clip-norm chunk (2048), vec4 path over one chunk (2048 vec4s), small vec4
const SIZES = [3, 2051, 8400, 64];
// gradient scale, parameter scale (tiny updates are checked on tiny parameters so they show)
const REGIMES = [
  { name: 'unit gradients', g: 1, p: 1 },
  { name: 'large gradients (1e3)', g: 1e3, p: 1 },
  { name: 'tiny gradients (1e-9)', g: 1e-9, p: 1e-8 },
  { name: 'zero gradients', g: 0, p: 1 },
];
// per-step factor: step 2's small gradients make v shrink, so amsgrad's max matters
const STEP_SCALE = [1, 0.5, 0.02, 1];
const STEPS = STEP_SCALE.length;

/** |a - e| <= rel * |e| + absFrac * max|e| elementwise (NaN fails); relative even for tiny values. */
function expectNear(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rel = 1e-4, absFrac = 1e-5): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let max = 0;
  for (let i = 0; i < expected.length; i++) max = Math.max(max, Math.abs(expected[i]));
  const abs = absFrac * max + 1e-38;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= rel * Math.abs(expected[i]) + abs)) expect.fail(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]} (max |expected| ${max})`);
  }
}

function gradients(step: number, scale: number): Float32Array[] {
  return SIZES.map((n, k) => (scale === 0 ? new Float32Array(n) : randomArray(n, 1000 * step + 17 * k + 5).map((x) => x * scale * STEP_SCALE[step])));
}

interface Setup {
  gpu: Gpu;
  guard: GuardKernel;
  kernel: OptimizerUpdates;
  params: GPUBuffer[];
  grads: GPUBuffer[];
  ops: import('../src/gpu/index.ts').GpuOp[];
  p0: Float32Array[];
  destroy(): void;
}

async function setup(opt: Optimizer, pScale = 1): Promise<Setup> {
  const gpu = await testGpu();
  const guard = await GuardKernel.create(gpu);
  const kernel = await opt.createKernel(gpu, guard.halt);
  const p0 = SIZES.map((n, k) => randomArray(n, 31 + k).map((x) => x * pScale));
  const params = p0.map((p, k) => gpu.upload(`p${k}`, p));
  const grads = SIZES.map((n, k) => gpu.createBuffer(`g${k}`, n * 4));
  const ops = kernel.updates(SIZES.map((n, k) => ({ param: params[k], grad: grads[k], size: n, label: `w${k}` })));
  return {
    gpu, guard, kernel, params, grads, ops, p0,
    destroy() {
      kernel.destroy();
      guard.destroy();
      for (const b of [...params, ...grads]) gpu.destroyBuffer(b);
    },
  };
}

function step(s: Setup, iteration: number, g: Float32Array[]): void {
  g.forEach((x, k) => s.gpu.write(s.grads[k], x));
  s.kernel.setIteration(iteration);
  s.gpu.submit(`optimizer step ${iteration}`, s.ops);
}

/** Runs `opt` and Keras's float64 rule side by side; compares every weight and state buffer. */
async function compare(opt: Optimizer, ref: RefOptions, regime: (typeof REGIMES)[number], between?: (iteration: number) => void): Promise<void> {
  const s = await setup(opt, regime.p);
  const r = new OptimizerRef(ref, s.p0);
  expect(s.kernel.stateNames).toEqual(refSlots(ref));
  expect(opt.stateSlots).toBe(refSlots(ref).length);
  for (let it = 0; it < STEPS; it++) {
    between?.(it);
    const g = gradients(it, regime.g);
    step(s, it, g);
    r.apply(g);
  }
  for (let k = 0; k < SIZES.length; k++) {
    const what = `${opt.name} ${regime.name} weight ${k} (n=${SIZES[k]})`;
    expectNear(await s.gpu.readF32(s.params[k]), r.params[k], `${what} param`);
    const state = s.kernel.stateOf(s.params[k]);
    expect(state.length, `${what} state count`).toBe(r.state[k].length);
    for (let j = 0; j < state.length; j++) expectNear(await s.gpu.readF32(state[j]), r.state[k][j], `${what} ${s.kernel.stateNames[j]}`);
  }
  s.destroy();
}

interface Case {
  label: string;
  make: () => Optimizer;
  ref: RefOptions;
}

const constant = (lr: number) => () => lr;

const CASES: Case[] = [
  { label: 'SGD', make: () => new SGD({ learningRate: 0.05 }), ref: { kind: 'sgd', lr: constant(0.05) } },
  { label: 'SGD momentum', make: () => new SGD({ learningRate: 0.05, momentum: 0.9 }), ref: { kind: 'sgd', lr: constant(0.05), momentum: 0.9 } },
  { label: 'SGD nesterov', make: () => new SGD({ learningRate: 0.05, momentum: 0.9, nesterov: true }), ref: { kind: 'sgd', lr: constant(0.05), momentum: 0.9, nesterov: true } },
  { label: 'SGD legacy decay', make: () => new SGD({ learningRate: 0.05, momentum: 0.5, decay: 0.1 }), ref: { kind: 'sgd', lr: (it) => 0.05 / (1 + 0.1 * it), momentum: 0.5 } },
  { label: 'SGD weight decay', make: () => new SGD({ learningRate: 0.05, momentum: 0.9, weightDecay: 0.5 }), ref: { kind: 'sgd', lr: constant(0.05), momentum: 0.9, weightDecay: 0.5 } },
  { label: 'SGD clipnorm', make: () => new SGD({ learningRate: 0.05, momentum: 0.9, clipnorm: 2 }), ref: { kind: 'sgd', lr: constant(0.05), momentum: 0.9, clipnorm: 2 } },
  { label: 'SGD clipvalue', make: () => new SGD({ learningRate: 0.05, clipvalue: 0.5 }), ref: { kind: 'sgd', lr: constant(0.05), clipvalue: 0.5 } },
  { label: 'SGD globalClipnorm', make: () => new SGD({ learningRate: 0.05, momentum: 0.9, nesterov: true, globalClipnorm: 2 }), ref: { kind: 'sgd', lr: constant(0.05), momentum: 0.9, nesterov: true, globalClipnorm: 2 } },
  { label: 'Adam defaults', make: () => new Adam(), ref: { kind: 'adam', lr: constant(1e-3) } },
  { label: 'Adam', make: () => new Adam({ learningRate: 0.01, beta1: 0.8, beta2: 0.99, epsilon: 1e-6 }), ref: { kind: 'adam', lr: constant(0.01), beta1: 0.8, beta2: 0.99, epsilon: 1e-6 } },
  { label: 'Adam amsgrad', make: () => new Adam({ learningRate: 0.01, beta2: 0.9, amsgrad: true }), ref: { kind: 'adam', lr: constant(0.01), beta2: 0.9, amsgrad: true } },
  { label: 'Adam weight decay', make: () => new Adam({ learningRate: 0.01, weightDecay: 0.5 }), ref: { kind: 'adam', lr: constant(0.01), weightDecay: 0.5 } },
  { label: 'Adam clipnorm', make: () => new Adam({ learningRate: 0.01, clipnorm: 2 }), ref: { kind: 'adam', lr: constant(0.01), clipnorm: 2 } },
  { label: 'Adam clipvalue', make: () => new Adam({ learningRate: 0.01, clipvalue: 0.5 }), ref: { kind: 'adam', lr: constant(0.01), clipvalue: 0.5 } },
  { label: 'Adam globalClipnorm', make: () => new Adam({ learningRate: 0.01, amsgrad: true, beta2: 0.9, globalClipnorm: 2 }), ref: { kind: 'adam', lr: constant(0.01), amsgrad: true, beta2: 0.9, globalClipnorm: 2 } },
  { label: 'AdamW defaults', make: () => new AdamW(), ref: { kind: 'adam', lr: constant(1e-3), weightDecay: 0.004 } },
  { label: 'AdamW amsgrad', make: () => new AdamW({ learningRate: 0.01, weightDecay: 0.5, amsgrad: true, beta2: 0.9 }), ref: { kind: 'adam', lr: constant(0.01), weightDecay: 0.5, amsgrad: true, beta2: 0.9 } },
  { label: 'RMSprop defaults', make: () => new RMSprop(), ref: { kind: 'rmsprop', lr: constant(1e-3) } },
  { label: 'RMSprop momentum', make: () => new RMSprop({ learningRate: 0.01, momentum: 0.9 }), ref: { kind: 'rmsprop', lr: constant(0.01), momentum: 0.9 } },
  { label: 'RMSprop centered', make: () => new RMSprop({ learningRate: 0.01, centered: true, rho: 0.8 }), ref: { kind: 'rmsprop', lr: constant(0.01), centered: true, rho: 0.8 } },
  { label: 'RMSprop centered momentum', make: () => new RMSprop({ learningRate: 0.01, centered: true, momentum: 0.5, epsilon: 1e-5 }), ref: { kind: 'rmsprop', lr: constant(0.01), centered: true, momentum: 0.5, epsilon: 1e-5 } },
  { label: 'RMSprop weight decay', make: () => new RMSprop({ learningRate: 0.01, weightDecay: 0.5 }), ref: { kind: 'rmsprop', lr: constant(0.01), weightDecay: 0.5 } },
  { label: 'RMSprop clipnorm', make: () => new RMSprop({ learningRate: 0.01, momentum: 0.9, clipnorm: 2 }), ref: { kind: 'rmsprop', lr: constant(0.01), momentum: 0.9, clipnorm: 2 } },
  { label: 'RMSprop clipvalue', make: () => new RMSprop({ learningRate: 0.01, centered: true, clipvalue: 0.5 }), ref: { kind: 'rmsprop', lr: constant(0.01), centered: true, clipvalue: 0.5 } },
  { label: 'RMSprop globalClipnorm', make: () => new RMSprop({ learningRate: 0.01, globalClipnorm: 2 }), ref: { kind: 'rmsprop', lr: constant(0.01), globalClipnorm: 2 } },
];

describe('optimizers match Keras 3 (float64 reference)', () => {
  for (const c of CASES) {
    it(`${c.label}: ${STEPS} steps, unit / large / tiny / zero gradients, scalar and vec4 sizes`, async () => {
      for (const regime of REGIMES) await compare(c.make(), c.ref, regime);
    });
  }
});

describe('learning rate', () => {
  const unit = REGIMES[0];

  it('follows a PiecewiseConstantDecay schedule (SGD momentum)', async () => {
    const schedule = new PiecewiseConstantDecay({ boundaries: [0, 1], values: [0.1, 0.05, 0.01] });
    const opt = new SGD({ learningRate: schedule, momentum: 0.9 });
    expect([0, 1, 2, 3].map((i) => opt.currentLearningRate(i))).toEqual([0.1, 0.05, 0.01, 0.01]);
    await compare(opt, { kind: 'sgd', lr: (it) => [0.1, 0.05, 0.01, 0.01][it], momentum: 0.9 }, unit);
  });

  it('follows an ExponentialDecay schedule, weight decay included (Adam)', async () => {
    const opt = new Adam({ learningRate: new ExponentialDecay({ initialLearningRate: 0.01, decaySteps: 1, decayRate: 0.5 }), weightDecay: 0.5 });
    await compare(opt, { kind: 'adam', lr: (it) => 0.01 * 0.5 ** it, weightDecay: 0.5 }, unit);
  });

  it('follows a CosineDecay warmup (RMSprop), with legacy-free iteration steps', async () => {
    const opt = new RMSprop({ learningRate: new CosineDecay({ initialLearningRate: 0, decaySteps: 2, warmupTarget: 0.01, warmupSteps: 2 }) });
    // warmup 0 -> 0.005 -> then cosine from 0.01: 0.01, 0.005
    const lrs = [0, 0.005, 0.01, 0.005];
    [0, 1, 2, 3].forEach((i) => expect(opt.currentLearningRate(i)).toBeCloseTo(lrs[i], 15));
    await compare(opt, { kind: 'rmsprop', lr: (it) => lrs[it] }, unit);
  });

  it('a learningRate set between steps takes effect at the next step (Adam, SGD with decay)', async () => {
    const adam = new Adam({ learningRate: 0.01 });
    const lrs = [0.01, 0.001, 0.1, 0.1];
    await compare(adam, { kind: 'adam', lr: (it) => lrs[it] }, unit, (it) => {
      if (it > 0) adam.learningRate = lrs[it];
    });
    const sgd = new SGD({ learningRate: 0.1, momentum: 0.5, decay: 0.5 });
    const base = [0.1, 0.1, 0.02, 0.02];
    await compare(sgd, { kind: 'sgd', lr: (it) => base[it] / (1 + 0.5 * it), momentum: 0.5 }, unit, (it) => {
      sgd.learningRate = base[it];
    });
    expect(sgd.currentLearningRate(2)).toBeCloseTo(0.02 / 2, 15);
  });

  it('refuses to set a number on an optimizer made with a schedule, with Keras\'s message', () => {
    const opt = new Adam({ learningRate: new ExponentialDecay({ initialLearningRate: 0.01, decaySteps: 10, decayRate: 0.9 }) });
    expect(() => { opt.learningRate = 0.1; }).toThrow(/created with a `LearningRateSchedule`.*not settable/);
    const plain = new Adam();
    expect(() => { plain.learningRate = new ExponentialDecay({ initialLearningRate: 0.01, decaySteps: 10, decayRate: 0.9 }); }).toThrow(/schedule can only be given to the constructor/);
    expect(() => { plain.learningRate = -1; }).toThrow(/learningRate must be a finite number >= 0/);
  });

  it('a schedule returning a bad learning rate fails at setIteration with the iteration named', async () => {
    const gpu = await testGpu();
    const guard = await GuardKernel.create(gpu);
    const bad: LearningRateSchedule = { name: 'Bad', at: (s) => (s < 1 ? 0.1 : Number.NaN), getConfig: () => ({}) };
    const kernel = await new Adam({ learningRate: bad }).createKernel(gpu, guard.halt);
    kernel.setIteration(0);
    expect(() => kernel.setIteration(1)).toThrow(/learning rate for iteration 1 is NaN/);
    kernel.destroy();
    guard.destroy();
  });
});

describe('halt flag', () => {
  const halting: Case[] = [
    CASES.find((c) => c.label === 'SGD globalClipnorm')!,
    { label: 'SGD momentum weight decay clipnorm', make: () => new SGD({ learningRate: 0.05, momentum: 0.9, weightDecay: 0.1, clipnorm: 2 }), ref: { kind: 'sgd', lr: constant(0.05) } },
    { label: 'AdamW amsgrad clipnorm', make: () => new AdamW({ learningRate: 0.01, amsgrad: true, clipnorm: 2 }), ref: { kind: 'adam', lr: constant(0.01) } },
    { label: 'RMSprop centered momentum clipvalue', make: () => new RMSprop({ learningRate: 0.01, centered: true, momentum: 0.9, weightDecay: 0.1, clipvalue: 0.5 }), ref: { kind: 'rmsprop', lr: constant(0.01) } },
  ];
  for (const c of halting) {
    it(`${c.label}: while halt is set no weight and no state changes; clearing it resumes`, async () => {
      const s = await setup(c.make());
      const snapshot = async () => {
        const out: Float32Array[] = [];
        for (const p of s.params) {
          out.push(await s.gpu.readF32(p));
          for (const b of s.kernel.stateOf(p)) out.push(await s.gpu.readF32(b));
        }
        return out;
      };
      step(s, 0, gradients(0, 1));
      const good = await snapshot();
      expect(good.length).toBe(SIZES.length * (1 + s.kernel.stateNames.length));
      s.gpu.write(s.guard.halt, new Uint32Array([1]));
      step(s, 1, gradients(1, 1));
      step(s, 2, gradients(3, 1));
      const halted = await snapshot();
      halted.forEach((a, i) => expect(a, `buffer ${i}`).toEqual(good[i]));
      s.guard.resume();
      step(s, 1, gradients(1, 1));
      const resumed = await snapshot();
      resumed.forEach((a, i) => expect(a, `buffer ${i}`).not.toEqual(good[i]));
      s.destroy();
    });
  }
});

describe('optimizer kernels', () => {
  it('share state between updates() calls naming the same weights (one plan per batch size)', async () => {
    const s = await setup(new Adam({ learningRate: 0.01, globalClipnorm: 1 }));
    const before = s.params.map((p) => s.kernel.stateOf(p));
    const again = s.kernel.updates(SIZES.map((n, k) => ({ param: s.params[k], grad: s.grads[k], size: n, label: `w${k}` })));
    s.params.forEach((p, k) => expect(s.kernel.stateOf(p)).toEqual(before[k]));
    // steps alternating between the two op lists continue one trajectory
    const r = new OptimizerRef({ kind: 'adam', lr: constant(0.01), globalClipnorm: 1 }, s.p0);
    for (let it = 0; it < 3; it++) {
      const g = gradients(it, 1);
      g.forEach((x, k) => s.gpu.write(s.grads[k], x));
      s.kernel.setIteration(it);
      s.gpu.submit('step', it % 2 ? again : s.ops);
      r.apply(g);
    }
    for (let k = 0; k < SIZES.length; k++) expectNear(await s.gpu.readF32(s.params[k]), r.params[k], `param ${k}`);
    s.destroy();
  });

  it('a non-finite global norm makes the update NaN, as Keras (the guard stops such steps)', async () => {
    const s = await setup(new SGD({ learningRate: 0.1, globalClipnorm: 1 }));
    const g = gradients(0, 1);
    g[1][5] = Number.POSITIVE_INFINITY;
    step(s, 0, g);
    for (const p of s.params) expect(Array.from(await s.gpu.readF32(p)).every(Number.isNaN)).toBe(true);
    s.destroy();
  });

  it('clipnorm 0 means no clipping, as in Keras', async () => {
    await compare(new SGD({ learningRate: 0.05, clipnorm: 0 }), { kind: 'sgd', lr: constant(0.05) }, REGIMES[1]);
  });

  it('computes Adam\'s bias correction on the host in float64 (t = iteration + 1)', async () => {
    const gpu = await testGpu();
    const guard = await GuardKernel.create(gpu);
    const k = await AdamKernel.create(gpu, { learningRate: 0.01 }, guard.halt);
    expect(k.alphaAt(0)).toBeCloseTo((0.01 * Math.sqrt(1 - 0.999)) / (1 - 0.9), 15);
    expect(k.alphaAt(9)).toBeCloseTo((0.01 * Math.sqrt(1 - 0.999 ** 10)) / (1 - 0.9 ** 10), 15);
    k.destroy();
    guard.destroy();
  });
});

describe('optimizer options', () => {
  it('allows at most one of clipnorm, clipvalue, globalClipnorm (Keras\'s rule)', () => {
    const msg = /only one of clipnorm, clipvalue and globalClipnorm can be set/;
    expect(() => new SGD({ clipnorm: 1, clipvalue: 1 })).toThrow(msg);
    expect(() => new Adam({ clipnorm: 1, globalClipnorm: 1 })).toThrow(msg);
    expect(() => new AdamW({ clipvalue: 0, globalClipnorm: 1 })).toThrow(msg);
    expect(() => new RMSprop({ clipnorm: 1, clipvalue: 2, globalClipnorm: 3 })).toThrow(msg);
    expect(() => new RMSprop({ clipnorm: 1, clipvalue: null })).not.toThrow();
    expect(() => new SGD({ clipnorm: -1 })).toThrow(/clipnorm must be a finite number >= 0/);
    expect(() => new Adam({ globalClipnorm: Number.NaN })).toThrow(/globalClipnorm must be a finite number/);
  });

  it('checks hyperparameters with messages that name them', () => {
    expect(() => new SGD({ learningRate: -1 })).toThrow(/SGD: learningRate must be a finite number >= 0, got -1/);
    expect(() => new SGD({ momentum: 1.5 })).toThrow(/SGD: momentum must be a finite number in \[0, 1\]/);
    expect(() => new Adam({ beta1: 1 })).toThrow(/Adam: beta1 must be a finite number in \[0, 1\)/);
    expect(() => new AdamW({ beta2: -0.1 })).toThrow(/AdamW: beta2/);
    expect(() => new Adam({ epsilon: Number.NaN })).toThrow(/epsilon must be a finite number/);
    expect(() => new RMSprop({ rho: 1.5 })).toThrow(/RMSprop: rho must be a finite number in \[0, 1\]/);
    expect(() => new RMSprop({ weightDecay: -0.1 })).toThrow(/weightDecay must be a finite number >= 0/);
    expect(() => new AdamW({ weightDecay: null })).toThrow(/AdamW: argument `weightDecay` must be a float/);
    expect(() => new Adam({ amsgrad: 'yes' as unknown as boolean })).toThrow(/amsgrad must be true or false/);
  });

  it('has Keras\'s defaults and reports them in getConfig()', () => {
    expect(new Adam().getConfig()).toEqual({ name: 'Adam', learningRate: 0.001, weightDecay: null, clipnorm: null, globalClipnorm: null, clipvalue: null, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, amsgrad: false });
    expect(new AdamW().getConfig()).toMatchObject({ name: 'AdamW', learningRate: 0.001, weightDecay: 0.004 });
    expect(new RMSprop().getConfig()).toMatchObject({ name: 'RMSprop', learningRate: 0.001, rho: 0.9, momentum: 0, epsilon: 1e-7, centered: false });
    expect(new SGD().getConfig()).toMatchObject({ name: 'SGD', learningRate: 0.01, momentum: 0, nesterov: false, decay: 0 });
    expect(new SGD({ momentum: 0.9 }).config).toMatchObject({ learningRate: 0.01, momentum: 0.9, nesterov: false, decay: 0 });
    const s = new ExponentialDecay({ initialLearningRate: 0.1, decaySteps: 5, decayRate: 0.5 });
    expect(new SGD({ learningRate: s }).getConfig().learningRate).toEqual({ name: 'ExponentialDecay', config: s.getConfig() });
    expect(new Adam({ learningRate: 0.01 }).learningRate).toBe(0.01);
    expect(new RMSprop({ learningRate: s }).learningRate).toBe(s);
  });

  it('optimizerFromName takes sgd / adam / adamw / rmsprop in any case', () => {
    expect(optimizerFromName('sgd')).toBeInstanceOf(SGD);
    expect(optimizerFromName('ADAM')).toBeInstanceOf(Adam);
    const w = optimizerFromName('AdamW');
    expect(w).toBeInstanceOf(AdamW);
    expect((w as AdamW).weightDecay).toBe(0.004);
    expect(optimizerFromName('RMSprop')).toBeInstanceOf(RMSprop);
    expect(() => optimizerFromName('adagrad')).toThrow(/unknown optimizer 'adagrad': use one of 'sgd', 'adam', 'adamw', 'rmsprop'/);
  });
});
