// The layer graph and its plan: Keras's layer order, the whole-graph oracle (TF.js ops with
// autodiff, test/reference/graph-oracle-tfjs.ts), gradient sums at fan-out, frozen layers between
// trainable ones, BatchNormalization folding, and activation memory of the reference plan.
import { describe, expect, it } from 'vitest';
import {
  Add, ArrayBatches, AveragePooling2D, BatchNormalization, Conv2D, Dense, DepthwiseConv2D, Dropout, Flatten, GlobalAveragePooling2D, Input,
  MaxPooling2D, Model, ReLU, SGD, VGG16, Activation, ZeroPadding2D, setInitSeed,
} from '../src/index.ts';
import type * as tf from '@tensorflow/tfjs';
import { expectClose } from './helpers/compare.ts';
import { randomArray } from './helpers/random.ts';
import { tfCpu } from './helpers/tfjs.ts';
import { ORACLE_INPUT, ORACLE_WEIGHT_SHAPES, LEARNING_RATE, SGD_MOMENTUM, oracleBatches, oracleInit, runGraphOracle } from './reference/graph-oracle-tfjs.ts';

/** The oracle's network (see graph-oracle-tfjs.ts), built with our layers. */
function oracleModel() {
  const input = Input({ shape: ORACLE_INPUT });
  let x = new Conv2D({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'stem_conv' }).apply(input);
  x = new BatchNormalization({ name: 'stem_bn' }).apply(x);
  const stem = new ReLU({ maxValue: 6, name: 'stem_relu' }).apply(x);
  x = new DepthwiseConv2D({ kernelSize: 3, padding: 'same', depthMultiplier: 2, name: 'dw' }).apply(stem);
  x = new BatchNormalization({ name: 'dw_bn' }).apply(x);
  x = new ReLU({ name: 'dw_relu' }).apply(x);
  x = new Conv2D({ filters: 8, kernelSize: 1, name: 'proj' }).apply(x);
  x = new Add({ name: 'add' }).apply([stem, x]);
  x = new Conv2D({ filters: 12, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'down' }).apply(x);
  x = new GlobalAveragePooling2D({ name: 'gap' }).apply(x);
  const out = new Dense({ units: 1, activation: 'sigmoid', name: 'head' }).apply(x);
  const model = new Model({ inputs: input, outputs: out, name: 'oracle_net' });
  model.getLayer('stem_conv').trainable = false;
  model.getLayer('stem_bn').trainable = false;
  return model;
}

async function setAll(model: Model, weights: Record<string, Float32Array[]>) {
  for (const [name, arrays] of Object.entries(weights)) {
    await model.getLayer(name).setWeights(arrays.map((data, i) => ({ shape: ORACLE_WEIGHT_SHAPES[name][i], data })));
  }
}

describe('layer graph', () => {
  it("model.layers follows Keras's order (as TF.js's functional model orders the same graph)", async () => {
    const tf = await tfCpu();
    // a residual block shaped like ResNet's first one: shortcut conv created first, then the main path
    const ours = (() => {
      const input = Input({ shape: [8, 8, 4], name: 'in' });
      const s = new Conv2D({ filters: 8, kernelSize: 1, name: 'b0_conv' }).apply(input);
      const s2 = new BatchNormalization({ name: 'b0_bn' }).apply(s);
      let x = new Conv2D({ filters: 4, kernelSize: 1, name: 'b1_conv' }).apply(input);
      x = new BatchNormalization({ name: 'b1_bn' }).apply(x);
      x = new Activation({ activation: 'relu', name: 'b1_relu' }).apply(x);
      x = new Conv2D({ filters: 8, kernelSize: 3, padding: 'same', name: 'b3_conv' }).apply(x);
      x = new BatchNormalization({ name: 'b3_bn' }).apply(x);
      x = new Add({ name: 'add' }).apply([s2, x]);
      return new Model({ inputs: input, outputs: new Activation({ activation: 'relu', name: 'out' }).apply(x) });
    })();
    const tin = tf.input({ shape: [8, 8, 4], name: 'in' });
    const ts = tf.layers.batchNormalization({ name: 'b0_bn' }).apply(tf.layers.conv2d({ filters: 8, kernelSize: 1, name: 'b0_conv' }).apply(tin)) as typeof tin;
    let tx = tf.layers.conv2d({ filters: 4, kernelSize: 1, name: 'b1_conv' }).apply(tin) as typeof tin;
    tx = tf.layers.batchNormalization({ name: 'b1_bn' }).apply(tx) as typeof tin;
    tx = tf.layers.activation({ activation: 'relu', name: 'b1_relu' }).apply(tx) as typeof tin;
    tx = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', name: 'b3_conv' }).apply(tx) as typeof tin;
    tx = tf.layers.batchNormalization({ name: 'b3_bn' }).apply(tx) as typeof tin;
    tx = tf.layers.add({ name: 'add' }).apply([ts, tx]) as typeof tin;
    const theirs = tf.model({ inputs: tin, outputs: tf.layers.activation({ activation: 'relu', name: 'out' }).apply(tx) as typeof tin });
    expect(ours.layers.map((l) => l.name)).toEqual(theirs.layers.map((l) => l.name));
    // ResNet's documented order: the shortcut conv after the main path's relu, then the two BNs
    expect(ours.layers.map((l) => l.name)).toEqual(['in', 'b1_conv', 'b1_bn', 'b1_relu', 'b0_conv', 'b3_conv', 'b0_bn', 'b3_bn', 'add', 'out']);
  });

  it('whole graph vs TF.js: 3 SGD-momentum steps with frozen BN, trainable BN, ReLU6, depthwise, stride 2, residual Add, global pool', async () => {
    const init = oracleInit(7);
    const batches = oracleBatches(8, 3);
    const want = await runGraphOracle(init, batches);
    const model = oracleModel();
    await setAll(model, init);
    const lines: string[] = [];
    model.summary((l) => lines.push(l));
    console.log(lines.join('\n'));
    expect(lines.join('\n')).toContain('Connected to');
    expect(lines.join('\n')).toMatch(/add \(Add\) .*stem_relu\[0\]\[0\] *\n {70}proj\[0\]\[0\]/);
    model.compile({ optimizer: new SGD({ learningRate: LEARNING_RATE, momentum: SGD_MOMENTUM }), loss: 'binary_crossentropy', metrics: ['acc'] });
    const losses: number[] = [];
    for (const b of batches) losses.push((await model.trainOnBatch(b.x, b.y))[0]);
    expectClose(losses, want.losses, 1e-4, 'losses');
    const plan = await model.compiledPlan(batches[0].y.length);
    // the frozen stem folds BN and fuses ReLU6 into one forward-only conv; its output (read twice) is the one boundary
    expect(plan.layout.region.forward.map((n) => n.members.map((l) => l.name))).toEqual([['stem_conv', 'stem_bn', 'stem_relu']]);
    expect(plan.boundaries).toHaveLength(1);
    for (const [name, arrays] of Object.entries(want.weights)) {
      const got = await model.getLayer(name).getWeights();
      arrays.forEach((w, i) => {
        const what = `${name} weight ${i}`;
        if (name.startsWith('stem')) expect(got[i].data, `${what} (frozen) bit for bit`).toEqual(init[name][i]);
        // dw's bias has a true gradient of 0 (dw_bn subtracts the batch mean): compare absolutely
        else expectClose(got[i].data, w, name === 'dw' && i === 1 ? 1e-5 : 1e-4, what);
      });
    }
  });

  it('a tensor read by two layers gets the sum of both gradients; a frozen layer between trainable ones passes gradients and stays unchanged', async () => {
    const tf = await tfCpu();
    const input = Input({ shape: [6, 7, 3] });
    const c1 = new Conv2D({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1' });
    const c2 = new Conv2D({ filters: 4, kernelSize: 3, padding: 'same', name: 'c2' });
    const head = new Dense({ units: 1, activation: 'sigmoid', name: 'head' });
    const a = c1.apply(input);
    const sum = new Add().apply([a, c2.apply(a)]);
    const model = new Model({ inputs: input, outputs: head.apply(new GlobalAveragePooling2D().apply(sum)) });
    c2.trainable = false;
    const w = { c1: [randomArray(108, 1, -0.5, 0.5), randomArray(4, 2, -0.1, 0.1)], c2: [randomArray(144, 3, -0.5, 0.5), randomArray(4, 4, -0.1, 0.1)], head: [randomArray(4, 5), randomArray(1, 6)] };
    await c1.setWeights([{ shape: [3, 3, 3, 4], data: w.c1[0] }, { shape: [4], data: w.c1[1] }]);
    await c2.setWeights([{ shape: [3, 3, 4, 4], data: w.c2[0] }, { shape: [4], data: w.c2[1] }]);
    await head.setWeights([{ shape: [4, 1], data: w.head[0] }, { shape: [1], data: w.head[1] }]);
    const x = randomArray(3 * 6 * 7 * 3, 7, 0, 1);
    const y = new Float32Array([1, 0, 1]);
    const lr = 0.5;
    model.compile({ optimizer: new SGD({ learningRate: lr }), loss: 'binary_crossentropy' });
    await model.trainOnBatch(x, y);
    // TF.js: the same step by autodiff
    const grads = tf.tidy(() => {
      const [k1, b1, k2, b2, kh, bh] = [tf.tensor4d(w.c1[0], [3, 3, 3, 4]), tf.tensor1d(w.c1[1]), tf.tensor4d(w.c2[0], [3, 3, 4, 4]), tf.tensor1d(w.c2[1]), tf.tensor2d(w.head[0], [4, 1]), tf.tensor1d(w.head[1])];
      const xs = tf.tensor4d(x, [3, 6, 7, 3]);
      const f = (k1v: typeof k1, b1v: typeof b1, khv: typeof kh, bhv: typeof bh) => {
        const h = tf.relu(tf.add(tf.conv2d(xs, k1v, 1, 'same'), b1v));
        const s = tf.add(h, tf.add(tf.conv2d(h as tf.Tensor4D, k2, 1, 'same'), b2));
        const z = tf.add(tf.matMul(tf.mean(s, [1, 2]), khv), bhv).reshape([3]);
        return tf.losses.sigmoidCrossEntropy(tf.tensor1d(y), z);
      };
      return tf.grads(f as (...a: tf.Tensor[]) => tf.Tensor)([k1, b1, kh, bh]).map((g) => g.dataSync() as Float32Array);
    });
    const after = { c1: await c1.getWeights(), c2: await c2.getWeights(), head: await head.getWeights() };
    const stepped = (w0: Float32Array, g: Float32Array) => w0.map((v, i) => v - lr * g[i]);
    expectClose(after.c1[0].data, stepped(w.c1[0], grads[0]), 1e-5, 'c1 kernel (gradient through both readers)');
    expectClose(after.c1[1].data, stepped(w.c1[1], grads[1]), 1e-5, 'c1 bias');
    expectClose(after.head[0].data, stepped(w.head[0], grads[2]), 1e-5, 'head kernel');
    expect(after.c2[0].data).toEqual(w.c2[0]);
    expect(after.c2[1].data).toEqual(w.c2[1]);
    const plan = await model.compiledPlan(3);
    expect([...plan.gradientBuffers.keys()].some((n) => n.startsWith('c2/'))).toBe(false);
  });

  it('padding, pooling and activation layers train inside a graph like TF.js autodiff (one SGD step)', async () => {
    const tf = await tfCpu();
    const input = Input({ shape: [7, 8, 3] });
    const conv = new Conv2D({ filters: 4, kernelSize: 3, name: 'conv' });
    const head = new Dense({ units: 3, activation: 'softmax', name: 'head' });
    let x = new ZeroPadding2D({ padding: [[0, 1], [1, 2]] }).apply(input);
    x = conv.apply(x);
    x = new Activation({ activation: 'swish' }).apply(x);
    x = new MaxPooling2D({ poolSize: 3, strides: 2, padding: 'same' }).apply(x);
    // 'valid': TF.js's CPU avgPool gradient divides edge windows of 'same' by the full window (the kernel test checks 'same' by finite differences)
    x = new AveragePooling2D({ poolSize: 2, strides: 1 }).apply(x);
    x = new Activation({ activation: 'tanh' }).apply(x);
    // Flatten, not a global max: overlapping max pools repeat values, and TF splits a max's gradient among ties
    const model = new Model({ inputs: input, outputs: head.apply(new Flatten().apply(x)) });
    const w = { conv: [randomArray(108, 21, -0.5, 0.5), randomArray(4, 22, -0.1, 0.1)], head: [randomArray(96, 23), randomArray(3, 24, -0.1, 0.1)] };
    await conv.setWeights([{ shape: [3, 3, 3, 4], data: w.conv[0] }, { shape: [4], data: w.conv[1] }]);
    await head.setWeights([{ shape: [32, 3], data: w.head[0] }, { shape: [3], data: w.head[1] }]);
    const x0 = randomArray(2 * 7 * 8 * 3, 25, -1, 1);
    const labels = new Float32Array([2, 0]);
    const lr = 0.5;
    model.compile({ optimizer: new SGD({ learningRate: lr }), loss: 'sparse_categorical_crossentropy' });
    await model.trainOnBatch(x0, labels);
    const grads = tf.tidy(() => {
      const xs = tf.tensor4d(x0, [2, 7, 8, 3]);
      const f = (k: tf.Tensor4D, b: tf.Tensor1D, kh: tf.Tensor2D, bh: tf.Tensor1D) => {
        let h: tf.Tensor = tf.pad(xs, [[0, 0], [0, 1], [1, 2], [0, 0]]);
        h = tf.add(tf.conv2d(h as tf.Tensor4D, k, 1, 'valid'), b);
        h = tf.mul(h, tf.sigmoid(h));
        h = tf.maxPool(h as tf.Tensor4D, 3, 2, 'same');
        h = tf.avgPool(h as tf.Tensor4D, 2, 1, 'valid');
        h = tf.reshape(tf.tanh(h), [2, 32]) as tf.Tensor;
        const z = tf.add(tf.matMul(h as tf.Tensor2D, kh), bh);
        return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(labels, 'int32'), 3), z);
      };
      return tf.grads(f as (...a: tf.Tensor[]) => tf.Tensor)([tf.tensor4d(w.conv[0], [3, 3, 3, 4]), tf.tensor1d(w.conv[1]), tf.tensor2d(w.head[0], [32, 3]), tf.tensor1d(w.head[1])]).map((g) => g.dataSync() as Float32Array);
    });
    const stepped = (w0: Float32Array, g: Float32Array) => w0.map((v, i) => v - lr * g[i]);
    const got = [...(await conv.getWeights()), ...(await head.getWeights())].map((t) => t.data);
    [w.conv[0], w.conv[1], w.head[0], w.head[1]].forEach((w0, i) => expectClose(got[i], stepped(w0, grads[i]), 1e-5, `weight ${i}`));
  });

  it('a frozen conv + BatchNormalization folds at plan time and predicts what the unfolded pair does', async () => {
    const build = (fold: boolean) => {
      const input = Input({ shape: [7, 6, 3] });
      let x = new Conv2D({ filters: 5, kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'conv' }).apply(input);
      if (!fold) x = new Activation({ activation: 'linear', name: 'between' }).apply(x); // blocks the fold: BN runs on its own
      x = new BatchNormalization({ epsilon: 1e-3, name: 'bn' }).apply(x);
      x = new ReLU({ maxValue: 6, name: 'relu6' }).apply(x);
      const m = new Model({ inputs: input, outputs: x });
      for (const l of m.layers) l.trainable = false;
      return m;
    };
    const kernel = { shape: [3, 3, 3, 5], data: randomArray(135, 11, -1, 1) };
    const bnWeights = [randomArray(5, 12, 0.5, 1.5), randomArray(5, 13, -0.5, 0.5), randomArray(5, 14, -0.3, 0.3), randomArray(5, 15, 0.2, 2)];
    const x = randomArray(2 * 7 * 6 * 3, 16, 0, 3);
    const outs: Float32Array[] = [];
    for (const fold of [true, false]) {
      const m = build(fold);
      await m.getLayer('conv').setWeights([kernel]);
      await m.getLayer('bn').setWeights(bnWeights.map((data) => ({ shape: [5], data })));
      outs.push(await m.predict(x));
      expect(m.layers[m.layers.length - 1].outputShape).toEqual([null, 4, 3, 5]);
    }
    expect(outs[0].some((v) => v === 6) || outs[0].some((v) => v === 0)).toBe(true);
    expectClose(outs[0], outs[1], 1e-5, 'folded vs unfolded');
  });

  it('freezing a trained conv + BatchNormalization folds the statistics training left on the device', async () => {
    const input = Input({ shape: [6, 6, 3] });
    let x = new Conv2D({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, name: 'c' }).apply(input);
    x = new BatchNormalization({ momentum: 0.5, name: 'bn' }).apply(x);
    x = new ReLU({ maxValue: 6 }).apply(x);
    const m = new Model({ inputs: input, outputs: new Dense({ units: 1, activation: 'sigmoid' }).apply(new GlobalAveragePooling2D().apply(x)) });
    m.compile({ optimizer: new SGD({ learningRate: 0.1 }), loss: 'binary_crossentropy' });
    const xs = randomArray(4 * 6 * 6 * 3, 41, 0, 2);
    const ys = new Float32Array([1, 0, 0, 1]);
    for (let i = 0; i < 3; i++) await m.trainOnBatch(xs, ys);
    const before = await m.predict(xs);
    m.getLayer('c').trainable = false;
    m.getLayer('bn').trainable = false;
    m.compile({ optimizer: new SGD({ learningRate: 0.1 }), loss: 'binary_crossentropy' });
    const plan = await m.compiledPlan(4);
    expect(plan.layout.nodes.some((n) => n.fold?.name === 'bn')).toBe(true);
    expectClose(await m.predict(xs), before, 1e-5, 'predictions after folding');
  });

  it('weights of every layer kind round-trip through Keras HDF5 and the manifest format (BN moving statistics included)', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'graph-weights-'));
    try {
      const a = oracleModel();
      await setAll(a, oracleInit(3));
      await a.saveWeightsH5(join(dir, 'w.h5'));
      await a.saveWeights(join(dir, 'manifest'));
      for (const path of [join(dir, 'w.h5'), join(dir, 'manifest')]) {
        const b = oracleModel();
        await b.loadWeights(path);
        for (const name of Object.keys(ORACLE_WEIGHT_SHAPES)) {
          const [wa, wb] = [await a.getLayer(name).getWeights(), await b.getLayer(name).getWeights()];
          wa.forEach((w, i) => expect(wb[i].data, `${path}: ${name} weight ${i}`).toEqual(w.data));
        }
      }
      expect(a.getLayer('stem_bn').params.map((p) => p.name)).toEqual(['stem_bn/gamma', 'stem_bn/beta', 'stem_bn/moving_mean', 'stem_bn/moving_variance']);
      expect(a.getLayer('dw').params.map((p) => p.name)).toEqual(['dw/depthwise_kernel', 'dw/bias']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('two tensors cross from the frozen part into the trainable one: micro-batches and the feature cache give the losses of a plain run', async () => {
    const build = () => {
      setInitSeed(5);
      const input = Input({ shape: [12, 10, 3] });
      const c1 = new Conv2D({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', name: 'f_conv' }).apply(input);
      const p = new MaxPooling2D({ name: 'f_max' }).apply(c1);
      const q = new AveragePooling2D({ name: 'f_avg' }).apply(c1);
      const t = new Conv2D({ filters: 8, kernelSize: 3, padding: 'same', name: 't_conv' }).apply(p);
      const x = new GlobalAveragePooling2D().apply(new Add().apply([t, q]));
      const m = new Model({ inputs: input, outputs: new Dense({ units: 1, activation: 'sigmoid', name: 't_head' }).apply(x) });
      m.getLayer('f_conv').trainable = false;
      m.compile({ optimizer: new SGD({ learningRate: 0.1, momentum: 0.9 }), loss: 'binary_crossentropy', metrics: ['acc'] });
      return m;
    };
    const x = randomArray(5 * 12 * 10 * 3, 31, 0, 1);
    const y = new Float32Array([0, 1, 1, 0, 1]);
    const run = async (opts: { maxBinding?: number; cache?: boolean }) => {
      const m = build();
      if (opts.maxBinding) m.maxBindingOverride = opts.maxBinding;
      const h = await m.fit(new ArrayBatches(x, y, { batchSize: 5, shuffle: false }), { epochs: 3, verbose: 0, featureCache: opts.cache ?? false });
      return { m, loss: h.history.loss };
    };
    const plain = await run({});
    const plan = await plain.m.compiledPlan(5);
    expect(plan.layout.boundaries.map((t) => t.sourceLayer.name).sort()).toEqual(['f_avg', 'f_max']);
    expect(plan.layout.microBatch).toBe(5);
    // a 12x10x8 activation is 3,840 bytes per image: 8,000 bytes fit two images at a time
    const chunked = await run({ maxBinding: 8000 });
    expect((await chunked.m.compiledPlan(5)).layout.microBatch).toBe(2);
    expectClose(chunked.loss, plain.loss, 1e-6, 'micro-batched losses');
    const cached = await run({ cache: true });
    expect(cached.m.lastFitTiming.cachedSteps).toBe(2); // epochs 2 and 3 replay both boundary tensors
    expectClose(cached.loss, plain.loss, 1e-6, 'cached losses');
  });

  it("the reference VGG16 plan's activation memory (60x90 b8, 240x360 b32) is no more than the chain plan's", async () => {
    // the chain plan (before the graph engine) measured with the same model: 24,160,608 and 443,747,712 bytes
    for (const [h, w, b, before] of [[60, 90, 8, 24_160_608], [240, 360, 32, 443_747_712]]) {
      const base = await VGG16({ weights: null, includeTop: false, inputShape: [h, w, 3] });
      for (const l of base.layers.slice(0, 15)) l.trainable = false;
      let x = new Flatten().apply(base.output);
      x = new Dense({ units: 256, activation: 'relu' }).apply(x);
      x = new Dropout({ rate: 0.5 }).apply(x);
      const m = new Model({ inputs: base.input, outputs: new Dense({ units: 1, activation: 'sigmoid' }).apply(x) });
      m.compile({ optimizer: 'sgd', loss: 'binary_crossentropy' });
      const mem = m.memory(b);
      console.log(`VGG16 reference plan ${h}x${w} b${b}: activations ${mem.activations} bytes (chain plan: ${before})`);
      expect(mem.activations).toBeLessThanOrEqual(before);
    }
  });
});
