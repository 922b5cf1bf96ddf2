// Whole-model steps with the Keras 3 optimizers: RMSprop against TF.js (same rule), Adam and
// AdamW (TF.js's Adam places epsilon differently) against the float64 reference fed TF.js's
// gradients at the same weights.
import type * as TF from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { Adam, AdamW, Conv2D, CosineDecay, Dense, Flatten, Input, Model, RMSprop, type Optimizer } from '../src/index.ts';
import { expectClose } from './helpers/compare.ts';
import { randomArray } from './helpers/random.ts';
import { tfCpu } from './helpers/tfjs.ts';
import { OptimizerRef, type RefOptions } from './reference/optimizers.ts';

const SHAPE = [6, 6, 3];
const NAMES = ['c1', 'd1', 'd2'];

function ours(): Model {
  const input = Input({ shape: SHAPE });
  let x = new Conv2D({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1' }).apply(input);
  x = new Flatten({ name: 'f' }).apply(x);
  x = new Dense({ units: 8, activation: 'relu', name: 'd1' }).apply(x);
  return new Model({ inputs: input, outputs: new Dense({ units: 1, activation: 'sigmoid', name: 'd2' }).apply(x) });
}

async function twin(tf: typeof TF, model: Model): Promise<TF.LayersModel> {
  const tin = tf.input({ shape: SHAPE });
  let t = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1' }).apply(tin) as TF.SymbolicTensor;
  t = tf.layers.flatten().apply(t) as TF.SymbolicTensor;
  t = tf.layers.dense({ units: 8, activation: 'relu', name: 'd1' }).apply(t) as TF.SymbolicTensor;
  t = tf.layers.dense({ units: 1, activation: 'sigmoid', name: 'd2' }).apply(t) as TF.SymbolicTensor;
  const ref = tf.model({ inputs: tin, outputs: t });
  for (const name of NAMES) ref.getLayer(name).setWeights((await model.getLayer(name).getWeights()).map((a) => tf.tensor(a.data, a.shape)));
  return ref;
}

const batch = 4;
const per = SHAPE[0] * SHAPE[1] * SHAPE[2];
const stepData = (step: number) => ({ x: randomArray(batch * per, 300 + step, -1, 1), y: new Float32Array([step % 2, 1, 0, 1]) });

async function oursAfter(opt: Optimizer, steps: number): Promise<{ losses: number[]; weights: Float32Array[] }> {
  const model = ours();
  model.compile({ optimizer: opt, loss: 'binary_crossentropy' });
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) losses.push((await model.trainOnBatch(stepData(s).x, stepData(s).y))[0]);
  const weights = (await Promise.all(NAMES.map((n) => model.getLayer(n).getWeights()))).flat().map((w) => w.data);
  return { losses, weights };
}

describe('Keras 3 optimizers on a whole model', () => {
  it('RMSprop with momentum matches TF.js step for step', async () => {
    const tf = await tfCpu();
    const { setInitSeed } = await import('../src/index.ts');
    setInitSeed(41);
    const init = ours();
    const ref = await twin(tf, init);
    ref.compile({ optimizer: tf.train.rmsprop(0.01, 0.9, 0.5, 1e-7, false), loss: 'binaryCrossentropy' });
    setInitSeed(41);
    const mine = await oursAfter(new RMSprop({ learningRate: 0.01, rho: 0.9, momentum: 0.5 }), 4);
    for (let s = 0; s < 4; s++) {
      const r = (await ref.trainOnBatch(tf.tensor(stepData(s).x, [batch, ...SHAPE]), tf.tensor(stepData(s).y, [batch, 1]))) as number;
      expectClose([mine.losses[s]], [r], 1e-4, `loss at step ${s}`);
    }
    const theirs = NAMES.flatMap((n) => ref.getLayer(n).getWeights().map((w) => w.dataSync()));
    mine.weights.forEach((w, i) => expectClose(w, theirs[i], 2e-4, `weight ${i}`));
  });

  const cases: [string, () => Optimizer, RefOptions][] = [
    ['Adam (amsgrad) with a cosine schedule', () => new Adam({ learningRate: new CosineDecay({ initialLearningRate: 0.01, decaySteps: 3 }), amsgrad: true }),
      { kind: 'adam', amsgrad: true, lr: (it) => 0.01 * 0.5 * (1 + Math.cos((Math.PI * Math.min(it, 3)) / 3)) }],
    ['AdamW with global clipnorm', () => new AdamW({ learningRate: 0.01, weightDecay: 0.05, globalClipnorm: 0.5 }),
      { kind: 'adam', weightDecay: 0.05, globalClipnorm: 0.5, lr: () => 0.01 }],
    // TF.js's centered RMSprop turns NaN on this model after one step: checked against the reference only
    ['centered RMSprop with clipvalue', () => new RMSprop({ learningRate: 0.01, centered: true, clipvalue: 0.01 }),
      { kind: 'rmsprop', centered: true, clipvalue: 0.01, lr: () => 0.01 }],
  ];
  for (const [what, make, refOptions] of cases) {
    it(`${what} matches the float64 Keras rule fed TF.js's gradients`, async () => {
      const tf = await tfCpu();
      const { setInitSeed } = await import('../src/index.ts');
      setInitSeed(42);
      const init = ours();
      const ref = await twin(tf, init);
      const vars = ref.trainableWeights.map((w) => w.read() as TF.Variable);
      const opt = new OptimizerRef(refOptions, vars.map((v) => v.dataSync()));
      const refLosses: number[] = [];
      for (let s = 0; s < 4; s++) {
        opt.params.forEach((p, i) => vars[i].assign(tf.tensor(Float32Array.from(p), vars[i].shape)));
        const { x, y } = stepData(s);
        const { value, grads } = tf.variableGrads(() => tf.metrics.binaryCrossentropy(tf.tensor(y, [batch, 1]), ref.apply(tf.tensor(x, [batch, ...SHAPE])) as TF.Tensor).mean() as TF.Scalar, vars);
        refLosses.push(value.dataSync()[0]);
        opt.apply(vars.map((v) => grads[v.name].dataSync()));
      }
      setInitSeed(42);
      const mine = await oursAfter(make(), 4);
      expectClose(mine.losses, refLosses, 1e-4, 'losses');
      mine.weights.forEach((w, i) => expectClose(w, opt.params[i], 2e-4, `weight ${i}`));
      // the rule matters: plain SGD from the same start ends elsewhere
      expect(Math.max(...mine.weights[0].map((v, i) => Math.abs(v - init.getLayer('c1').params[0].host[i])))).toBeGreaterThan(1e-3);
    });
  }

  it('Adam state restored into a fresh model before its first step continues bit for bit', async () => {
    const { setInitSeed } = await import('../src/index.ts');
    const make = () => {
      const m = ours();
      m.compile({ optimizer: new Adam({ learningRate: new CosineDecay({ initialLearningRate: 0.01, decaySteps: 4 }) }), loss: 'binary_crossentropy' });
      return m;
    };
    setInitSeed(43);
    const a = make();
    for (let s = 0; s < 2; s++) await a.trainOnBatch(stepData(s).x, stepData(s).y);
    const state = await a.getOptimizerState();
    const weights = await a.getWeights();
    expect(state.velocities.map((v) => v.name)).toContain('c1/kernel/momentum');
    const b = make();
    await b.setWeights(weights);
    await b.setOptimizerState(state); // no plan yet: the state waits for the kernels
    for (let s = 2; s < 4; s++) {
      const [la] = await a.trainOnBatch(stepData(s).x, stepData(s).y);
      const [lb] = await b.trainOnBatch(stepData(s).x, stepData(s).y);
      expect(lb).toBe(la);
    }
    const wa = await a.getWeights();
    (await b.getWeights()).forEach((t, i) => expect(t.data).toEqual(wa[i].data));
  });
});
