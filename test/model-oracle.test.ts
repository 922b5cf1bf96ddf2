import { describe, expect, it } from 'vitest';
import { Conv2D, Dense, Flatten, Input, MaxPooling2D, Model, SGD } from '../src/index.ts';
import { tfCpu } from './helpers/tfjs.ts';
import { randomArray } from './helpers/random.ts';
import { expectClose } from './helpers/compare.ts';

const SHAPE = [16, 20, 3];

/** The small VGG-style model of the issue, built in our engine (classes 1: sigmoid head, else softmax). */
function ours(classes = 1) {
  const input = Input({ shape: SHAPE });
  let x = new Conv2D({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1' }).apply(input);
  x = new Conv2D({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c2' }).apply(x);
  x = new MaxPooling2D({ poolSize: 2, strides: 2, name: 'p1' }).apply(x);
  x = new Conv2D({ filters: 12, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c3' }).apply(x);
  x = new MaxPooling2D({ poolSize: 2, strides: 2, name: 'p2' }).apply(x);
  x = new Flatten({ name: 'f' }).apply(x);
  x = new Dense({ units: 16, activation: 'relu', name: 'd1' }).apply(x);
  const out = new Dense({ units: classes, activation: classes === 1 ? 'sigmoid' : 'softmax', name: 'd2' }).apply(x);
  return new Model({ inputs: input, outputs: out });
}

type Head = { classes: number; loss: 'binary_crossentropy' | 'categorical_crossentropy' | 'sparse_categorical_crossentropy'; tfLoss: string };
const HEADS: Head[] = [
  { classes: 1, loss: 'binary_crossentropy', tfLoss: 'binaryCrossentropy' },
  { classes: 3, loss: 'categorical_crossentropy', tfLoss: 'categoricalCrossentropy' },
  { classes: 3, loss: 'sparse_categorical_crossentropy', tfLoss: 'sparseCategoricalCrossentropy' },
];

describe('whole model against TensorFlow.js (CPU backend)', () => {
  for (const head of HEADS) it(`${head.loss}: 3 SGD steps with momentum: losses, predictions and every updated weight agree; frozen weights unchanged bit for bit`, async () => {
    const tf = await tfCpu();
    const model = ours(head.classes);
    for (const l of model.layers.slice(0, 3)) l.trainable = false; // input, c1, c2 frozen
    const lr = 0.05;
    const momentum = 0.9;
    model.compile({ optimizer: new SGD({ learningRate: lr, momentum }), loss: head.loss, metrics: ['acc'] });

    // The same model in TF.js, from identical weights.
    const tin = tf.input({ shape: SHAPE });
    let t = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1' }).apply(tin) as import('@tensorflow/tfjs').SymbolicTensor;
    t = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c2' }).apply(t) as typeof t;
    t = tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }).apply(t) as typeof t;
    t = tf.layers.conv2d({ filters: 12, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c3' }).apply(t) as typeof t;
    t = tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }).apply(t) as typeof t;
    t = tf.layers.flatten().apply(t) as typeof t;
    t = tf.layers.dense({ units: 16, activation: 'relu', name: 'd1' }).apply(t) as typeof t;
    t = tf.layers.dense({ units: head.classes, activation: head.classes === 1 ? 'sigmoid' : 'softmax', name: 'd2' }).apply(t) as typeof t;
    const ref = tf.model({ inputs: tin, outputs: t });
    for (const name of ['c1', 'c2', 'c3', 'd1', 'd2']) {
      const w = await model.getLayer(name).getWeights();
      ref.getLayer(name).setWeights(w.map((a) => tf.tensor(a.data, a.shape)));
    }
    ref.getLayer('c1').trainable = false;
    ref.getLayer('c2').trainable = false;
    // TF.js momentum: v = m v + g, p -= lr v; Keras: v = m v - lr g, p += v. Identical for constant lr.
    ref.compile({ optimizer: tf.train.momentum(lr, momentum), loss: head.tfLoss, metrics: ['acc'] });

    const frozenBefore = [...(await model.getLayer('c1').getWeights()), ...(await model.getLayer('c2').getWeights())];
    const batch = 3;
    const per = SHAPE[0] * SHAPE[1] * SHAPE[2];
    for (let step = 0; step < 3; step++) {
      const x = randomArray(batch * per, 100 + step, 0, 1);
      const cls = [step % 2, 1, head.classes === 1 ? 0 : 2];
      const y = head.loss === 'categorical_crossentropy'
        ? Float32Array.from({ length: batch * 3 }, (_, i) => Number(cls[Math.floor(i / 3)] === i % 3))
        : new Float32Array(cls);
      const [loss, acc] = await model.trainOnBatch(x, y);
      const ty = head.loss === 'categorical_crossentropy' ? tf.tensor(y, [batch, 3]) : tf.tensor(y, [batch, 1]);
      const r = (await ref.trainOnBatch(tf.tensor(x, [batch, ...SHAPE]), ty)) as number[];
      expectClose([loss], [r[0]], 1e-4, `loss at step ${step}`);
      expect(acc).toBeCloseTo(r[1], 6);
    }
    const xt = randomArray(2 * per, 999, 0, 1);
    const ourPred = await model.predict(xt);
    const refPred = (ref.predict(tf.tensor(xt, [2, ...SHAPE])) as import('@tensorflow/tfjs').Tensor).dataSync();
    expectClose(ourPred, refPred, 1e-4, 'predictions');
    for (const name of ['c3', 'd1', 'd2']) {
      const mine = await model.getLayer(name).getWeights();
      const theirs = ref.getLayer(name).getWeights().map((w) => w.dataSync());
      mine.forEach((w, i) => expectClose(w.data, theirs[i], 1e-4, `${name} weight ${i} after 3 steps`));
    }
    const frozenAfter = [...(await model.getLayer('c1').getWeights()), ...(await model.getLayer('c2').getWeights())];
    frozenAfter.forEach((w, i) => expect(Buffer.compare(Buffer.from(w.data.buffer), Buffer.from(frozenBefore[i].data.buffer))).toBe(0));
  });
});
