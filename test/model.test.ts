import { describe, expect, it } from 'vitest';
import { Activation, Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D, Model, NonFiniteLossError, SGD, VGG16, memory, setInitSeed } from '../src/index.ts';
import { randomArray, rng } from './helpers/random.ts';

function smallModel(opts: { dropout?: number; frozen?: number } = {}) {
  const input = Input({ shape: [8, 10, 3] });
  let x = new Conv2D({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(input);
  x = new MaxPooling2D({ poolSize: 2, strides: 2 }).apply(x);
  x = new Conv2D({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(x);
  x = new Flatten().apply(x);
  x = new Dense({ units: 12, activation: 'relu' }).apply(x);
  if (opts.dropout) x = new Dropout({ rate: opts.dropout }).apply(x);
  const out = new Dense({ units: 1, activation: 'sigmoid' }).apply(x);
  const model = new Model({ inputs: input, outputs: out });
  for (const l of model.layers.slice(0, opts.frozen ?? 0)) l.trainable = false;
  return model;
}

/** Images whose label is whether the red channel outweighs the blue one: learnable by a small CNN. */
function synthetic(n: number, seed: number, shape = [8, 10, 3]) {
  const r = rng(seed);
  const per = shape[0] * shape[1] * shape[2];
  const x = new Float32Array(n * per);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const label = r() < 0.5 ? 1 : 0;
    y[i] = label;
    for (let p = 0; p < per; p += 3) {
      const base = r() * 0.5;
      x[i * per + p] = base + (label ? 0.4 : 0) * r();
      x[i * per + p + 1] = r() * 0.5;
      x[i * per + p + 2] = base + (label ? 0 : 0.4) * r();
    }
  }
  return { x, y };
}

function batches(x: Float32Array, y: Float32Array, size: number) {
  const per = x.length / y.length;
  const out = [];
  for (let s = 0; s < y.length; s += size) {
    const e = Math.min(y.length, s + size);
    out.push({ x: x.slice(s * per, e * per), y: y.slice(s, e) });
  }
  return out;
}

describe('Model API', () => {
  it('VGG16 has Keras\'s 19 layers, names and the reference model\'s parameter counts', async () => {
    const base = await VGG16({ weights: null, includeTop: false, inputTensor: Input({ shape: [240, 360, 3] }) });
    expect(base.layers.map((l) => l.name)).toEqual(['input', 'block1_conv1', 'block1_conv2', 'block1_pool', 'block2_conv1', 'block2_conv2', 'block2_pool',
      'block3_conv1', 'block3_conv2', 'block3_conv3', 'block3_pool', 'block4_conv1', 'block4_conv2', 'block4_conv3', 'block4_pool',
      'block5_conv1', 'block5_conv2', 'block5_conv3', 'block5_pool'].map((n, i) => (i === 0 ? base.layers[0].name : n)));
    expect(base.layers[0].className).toBe('InputLayer');
    expect(base.output.shape).toEqual([7, 11, 512]);
    for (const l of base.layers.slice(0, 15)) l.trainable = false;
    let x = new Flatten().apply(base.output);
    x = new Dense({ units: 256, activation: 'relu' }).apply(x);
    x = new Dropout({ rate: 0.5 }).apply(x);
    const out = new Dense({ units: 1, activation: 'sigmoid' }).apply(x);
    const model = new Model({ inputs: base.input, outputs: out });
    const lines: string[] = [];
    model.summary((l) => lines.push(l));
    const text = lines.join('\n');
    expect(text).toContain('Total params: 24,807,745');
    expect(text).toContain('Trainable params: 17,172,481');
    expect(text).toContain('Non-trainable params: 7,635,264');
    expect(text).toContain('block5_conv1 (Conv2D)        (None, 15, 22, 512)       2359808');
    expect(text).toContain('flatten');
    // glorot_uniform limits and zero biases, as Keras initialises
    const [k, b] = await base.getLayer('block3_conv1').getWeights();
    expect(k.shape).toEqual([3, 3, 128, 256]);
    const limit = Math.sqrt(6 / (9 * 128 + 9 * 256));
    expect(Math.max(...k.data.slice(0, 5000).map(Math.abs))).toBeLessThanOrEqual(limit);
    expect(Math.max(...k.data.slice(0, 5000).map(Math.abs))).toBeGreaterThan(limit * 0.9);
    expect(b.data.every((v) => v === 0)).toBe(true);
  });

  it('VGG16 with ImageNet weights and no network explains how to supply the file by hand', async () => {
    // An empty cache and a download URL on a closed local port: never the real network.
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { createServer } = await import('node:net');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const cache = await mkdtemp(join(tmpdir(), 'vgg16-cache-'));
    const probe = createServer();
    const port = await new Promise<number>((r) => probe.listen(0, '127.0.0.1', () => r((probe.address() as { port: number }).port)));
    await new Promise((r) => probe.close(r));
    const vars = { WEBGPU_FINETUNE_CACHE: cache, KERAS_HOME: cache, WEBGPU_FINETUNE_WEIGHTS_URL: `http://127.0.0.1:${port}/vgg16.h5` };
    const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
    Object.assign(process.env, vars);
    try {
      await expect(VGG16({ weights: 'imagenet', includeTop: false, inputShape: [32, 32, 3] })).rejects.toThrow(/Could not get the VGG16 ImageNet weights[\s\S]*copy it to .*vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5[\s\S]*pass its path/);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await rm(cache, { recursive: true, force: true });
    }
  });

  it('errors: setWeights shape, incompatible apply, fit before compile', async () => {
    const d = new Dense({ units: 4, name: 'dd' });
    const t = new Flatten().apply(Input({ shape: [2, 3] }));
    d.apply(t);
    await expect(d.setWeights([{ shape: [5, 4], data: new Float32Array(20) }, { shape: [4], data: new Float32Array(4) }])).rejects.toThrow(/dd.setWeights: weight 0 \(dd\/kernel\) has shape \[6, 4\], got \[5, 4\]/);
    expect(() => new Dense({ units: 3, name: 'needsflat' }).apply(Input({ shape: [4, 4, 3] }))).toThrow(/needsflat \(Dense\) expects a flat input.*\[4, 4, 3\].*Flatten/);
    expect(() => new Conv2D({ filters: 2, kernelSize: 5, name: 'big' }).apply(Input({ shape: [3, 3, 1] }))).toThrow(/big \(Conv2D\): a 5x5 'valid' kernel does not fit an input of 3x3/);
    const m = smallModel();
    await expect(m.fit([{ x: new Float32Array(240), y: new Float32Array(1) }])).rejects.toThrow(/compile the model first/);
    m.compile({ optimizer: 'sgd', loss: 'binary_crossentropy', metrics: ['acc'] });
    await expect(m.trainOnBatch(new Float32Array(100), new Float32Array(1))).rejects.toThrow(/not a whole number of \[8, 10, 3\] images/);
  });
});

describe('execution plan', () => {
  it('creates gradient buffers only for trainable weights, and frozen layers stay unchanged', async () => {
    const m = smallModel({ frozen: 3 }); // input, conv, pool frozen
    m.compile({ optimizer: new SGD({ learningRate: 0.1 }), loss: 'binary_crossentropy' });
    const { x, y } = synthetic(4, 1);
    const before = await m.layers[1].getWeights();
    await m.trainOnBatch(x, y);
    const plan = await m.compiledPlan(4);
    const names = [...plan.gradientBuffers.keys()];
    expect(names.some((n) => n.startsWith(m.layers[1].name))).toBe(false);
    expect(names).toContain(`${m.layers[3].name}/kernel`);
    expect(plan.layout.region.forward.map((n) => n.layer.name)).toEqual([m.layers[1].name, m.layers[2].name]); // conv, pool run forward only
    const after = await m.layers[1].getWeights();
    expect(after[0].data).toEqual(before[0].data);
  });

  it('reference model at 60x90 batch 8: 15 frozen layers need far less memory than none frozen', async () => {
    const build = async (frozen: number) => {
      const base = await VGG16({ weights: null, includeTop: false, inputShape: [60, 90, 3] });
      for (const l of base.layers.slice(0, frozen)) l.trainable = false;
      let x = new Flatten().apply(base.output);
      x = new Dense({ units: 256, activation: 'relu' }).apply(x);
      x = new Dropout({ rate: 0.5 }).apply(x);
      const m = new Model({ inputs: base.input, outputs: new Dense({ units: 1, activation: 'sigmoid' }).apply(x) });
      m.compile({ optimizer: 'sgd', loss: 'binary_crossentropy', metrics: ['acc'] });
      return m.memory(8);
    };
    const frozen = await build(15);
    const none = await build(0);
    console.log('model.memory(8) at 60x90, 15 frozen:', JSON.stringify(frozen));
    console.log('model.memory(8) at 60x90, none frozen:', JSON.stringify(none));
    // 60x90 ends in a 1x2x512 block5_pool, so Dense(256) has 1024*256+256 weights
    const top = 1024 * 256 + 256 + 257;
    expect(frozen.gradients).toBe((7_079_424 + top) * 4);
    expect(none.gradients).toBe((14_714_688 + top) * 4);
    expect(frozen.total).toBeLessThan(0.7 * none.total);
    expect(frozen.activations).toBeLessThan(0.5 * none.activations);
  });

  it('micro-batching the frozen prefix (forced by a tiny binding limit) gives the same losses and weights', async () => {
    setInitSeed(7);
    const a = smallModel({ frozen: 3 });
    setInitSeed(7);
    const b = smallModel({ frozen: 3 });
    b.maxBindingOverride = 8 * 10 * 6 * 4 * 2; // two images of the widest prefix tensor
    for (const m of [a, b]) m.compile({ optimizer: new SGD({ learningRate: 0.1, momentum: 0.9 }), loss: 'binary_crossentropy' });
    expect(a.memory(5).microBatch).toBe(5);
    expect(b.memory(5).microBatch).toBe(2);
    for (let step = 0; step < 2; step++) {
      const { x, y } = synthetic(5, 10 + step);
      const la = await a.trainOnBatch(x, y);
      const lb = await b.trainOnBatch(x, y);
      expect(lb[0]).toBeCloseTo(la[0], 5);
    }
    const wa = await a.layers[a.layers.length - 1].getWeights();
    const wb = await b.layers[b.layers.length - 1].getWeights();
    for (let i = 0; i < wa[0].data.length; i++) expect(wb[0].data[i]).toBeCloseTo(wa[0].data[i], 5);
  });

  it('a trainable tensor over the binding limit is an error naming the layer and what to do', async () => {
    const m = smallModel();
    m.maxBindingOverride = 1000;
    m.compile({ optimizer: 'sgd', loss: 'binary_crossentropy' });
    expect(() => m.memory(8)).toThrow(/conv2d.*a batch of 8 needs a .* tensor .*maxStorageBufferBindingSize.*Freeze more layers/);
  });
});

describe('training', () => {
  it('fit learns a small synthetic task to over 90% validation accuracy; History has Keras\'s keys', async () => {
    setInitSeed(3);
    const m = smallModel({ dropout: 0.25 });
    m.compile({ optimizer: new SGD({ learningRate: 0.1, momentum: 0.9 }), loss: 'binary_crossentropy', metrics: ['acc'] });
    const train = synthetic(96, 5);
    const val = synthetic(40, 6);
    const out: string[] = [];
    const h = await m.fit(batches(train.x, train.y, 16), { epochs: 6, validationData: batches(val.x, val.y, 16), verbose: 1, sink: (s) => out.push(s) });
    expect(h.epoch).toEqual([0, 1, 2, 3, 4, 5]);
    for (const k of ['loss', 'acc', 'val_loss', 'val_acc'] as const) expect(h.history[k]).toHaveLength(6);
    expect(h.history.val_acc[5]).toBeGreaterThan(0.9);
    expect(h.history.loss[5]).toBeLessThan(h.history.loss[0]);
    const text = out.join('');
    expect(text).toContain('Epoch 1/6');
    expect(text).toMatch(/6\/6 \[==============================\] - \d+s \d+m?s\/step - loss: \d\.\d{4} - acc: \d\.\d{4} - val_loss: \d\.\d{4} - val_acc: \d\.\d{4}/);
    const [vl, va] = await m.evaluate(batches(val.x, val.y, 16));
    expect(vl).toBeCloseTo(h.history.val_loss[5], 5);
    expect(va).toBeCloseTo(h.history.val_acc[5], 5);
    const p = await m.predict(val.x);
    let correct = 0;
    p.forEach((v, i) => (correct += Number((v > 0.5) === (val.y[i] === 1))));
    expect(correct / val.y.length).toBeCloseTo(va, 5);
    expect(memory().numBuffers).toBeGreaterThan(0);
  });

  it('a NaN loss stops training with an error naming the step, and keeps the last good weights', async () => {
    setInitSeed(11);
    const m = smallModel();
    setInitSeed(11);
    const twin = smallModel();
    for (const x of [m, twin]) x.compile({ optimizer: new SGD({ learningRate: 0.1, momentum: 0.5 }), loss: 'binary_crossentropy' });
    const good = synthetic(4, 1);
    const bad = { x: good.x, y: good.y.slice() };
    bad.y[2] = Number.NaN; // a corrupt label
    // fit submits steps ahead of reading their losses: the NaN step and the step after it must
    // both leave the weights alone.
    const err = await m.fit([good, bad, good], { epochs: 1, verbose: 0 }).catch((e) => e);
    expect(err).toBeInstanceOf(NonFiniteLossError);
    expect(String(err.message)).toMatch(/loss became NaN at epoch 1, step 2/);
    await twin.trainOnBatch(good.x, good.y);
    const last = m.layers.length - 1;
    expect((await m.layers[last].getWeights())[0].data).toEqual((await twin.layers[last].getWeights())[0].data);
    expect((await m.layers[1].getWeights())[0].data).toEqual((await twin.layers[1].getWeights())[0].data);
    await expect(m.trainOnBatch(bad.x, bad.y)).rejects.toThrow(/loss became NaN at step/);
    // training continues normally after the error
    const [loss] = await m.trainOnBatch(good.x, good.y);
    expect(Number.isFinite(loss)).toBe(true);
  });

  it('Activation layers fold into the layer before them', async () => {
    const input = Input({ shape: [4, 4, 2] });
    let x = new Conv2D({ filters: 3, kernelSize: 3, padding: 'same' }).apply(input);
    x = new Activation({ activation: 'relu' }).apply(x);
    x = new Flatten().apply(x);
    x = new Dense({ units: 1 }).apply(x);
    const m = new Model({ inputs: input, outputs: new Activation({ activation: 'sigmoid' }).apply(x) });
    m.compile({ optimizer: 'sgd', loss: 'binary_crossentropy' });
    const p = await m.predict(randomArray(2 * 32, 1, 0, 1));
    expect(p.every((v) => v > 0 && v < 1)).toBe(true);
  });
});

describe('optimizer state', () => {
  it('a model restored from weights + optimizer state continues exactly like the original', async () => {
    setInitSeed(21);
    const a = smallModel({ dropout: 0.3 });
    setInitSeed(99);
    const b = smallModel({ dropout: 0.3 });
    const opt = () => new SGD({ learningRate: 0.05, momentum: 0.9, decay: 0.01 });
    a.compile({ optimizer: opt(), loss: 'binary_crossentropy' });
    b.compile({ optimizer: opt(), loss: 'binary_crossentropy' });
    const data = [synthetic(4, 1), synthetic(4, 2), synthetic(4, 3), synthetic(4, 4)];
    await a.trainOnBatch(data[0].x, data[0].y);
    await a.trainOnBatch(data[1].x, data[1].y);
    // b takes over a's weights and optimizer state, then both train on the same batches
    for (let i = 1; i < a.layers.length; i++) await b.layers[i].setWeights(await a.layers[i].getWeights());
    const state = await a.getOptimizerState();
    expect(state.iteration).toBe(2);
    expect(state.velocities.length).toBe(8);
    expect(state.velocities.some((v) => v.data.some((x) => x !== 0))).toBe(true);
    await b.setOptimizerState(state);
    for (const d of data.slice(2)) {
      const la = await a.trainOnBatch(d.x, d.y);
      const lb = await b.trainOnBatch(d.x, d.y);
      expect(lb).toEqual(la);
    }
    const last = a.layers.length - 1;
    expect((await b.layers[last].getWeights())[0].data).toEqual((await a.layers[last].getWeights())[0].data);
    await expect(b.setOptimizerState({ iteration: 1, velocities: [{ name: 'nope', data: new Float32Array(1) }] })).rejects.toThrow(/got 1 velocities for 8 trainable weights/);
  });
});
