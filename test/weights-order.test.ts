// Which way a Keras weights file is read: by layer name where every name with weights matches
// (VGG16's files, our exports), else by layer order as Keras's HDF5 loader does (MobileNetV2's
// files, converted from another framework), and the report saying which. Also: files saved by
// Keras 3 (input layer `input_layer`) and Keras 2 (`input_1`) load into our models (weightless
// layers do not count), and model.loadWeights('imagenet') on a model a builder made.
// The HDF5 files are written here with h5wasm, independently of src/io.
import { createServer } from 'node:net';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BatchNormalization, Conv2D, Dense, Flatten, Input, MaxPooling2D, MobileNetV2, Model, ResNet50, VGG16 } from '../src/index.ts';
import { mobilenetV2NoTop } from '../src/io/imagenet-files.ts';
import { loadWeightsInto, weightsLoadReport, type WeightsLoadReport } from '../src/io/weights.ts';
import { h5, randomFloats, sameBits, writeKeras3H5, type FixtureLayer } from './helpers/weights-h5.ts';

let dir: string;
let closedUrl: string;
const savedEnv = { KERAS_HOME: process.env.KERAS_HOME, WEBGPU_FINETUNE_CACHE: process.env.WEBGPU_FINETUNE_CACHE, WEBGPU_FINETUNE_WEIGHTS_URL: process.env.WEBGPU_FINETUNE_WEIGHTS_URL };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weights-order-'));
  process.env.KERAS_HOME = join(dir, 'keras-home'); // never this machine's Keras cache
  process.env.WEBGPU_FINETUNE_CACHE = join(dir, 'cache');
  const probe = createServer();
  const port = await new Promise<number>((r) => probe.listen(0, '127.0.0.1', () => r((probe.address() as { port: number }).port)));
  await new Promise((r) => probe.close(r));
  closedUrl = `http://127.0.0.1:${port}/weights.h5`; // "no network", without the network
  process.env.WEBGPU_FINETUNE_WEIGHTS_URL = closedUrl;
});
afterAll(async () => {
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await rm(dir, { recursive: true, force: true });
});

/**
 * Conv + BN + pool + four Dense; d2 and d3 have the same shape ([4, 4]), so a file whose layers are
 * listed in another order loads wrongly by order without any error: only matching by name gets it right.
 */
function model(inputName?: string): Model {
  const input = Input({ shape: [6, 6, 3], name: inputName });
  let x = new Conv2D({ filters: 4, kernelSize: 3, padding: 'same', name: 'c1' }).apply(input);
  x = new BatchNormalization({ name: 'bn' }).apply(x);
  x = new MaxPooling2D({ name: 'pool' }).apply(x);
  x = new Flatten({ name: 'flat' }).apply(x);
  x = new Dense({ units: 4, activation: 'relu', name: 'd1' }).apply(x);
  x = new Dense({ units: 4, activation: 'relu', name: 'd2' }).apply(x);
  x = new Dense({ units: 4, activation: 'relu', name: 'd3' }).apply(x);
  x = new Dense({ units: 1, activation: 'sigmoid', name: 'out' }).apply(x);
  return new Model({ inputs: input, outputs: x, name: 'small' });
}

interface Entry {
  name: string;
  /** Short variable names (kernel, bias, gamma ...), for the weight_names styles. */
  vars: string[];
  weights: { shape: number[]; data: Float32Array }[];
}

/** Every layer of `m` (weightless ones too) with random weights of its shapes; BN variances > 0. */
function fixtureOf(m: Model, seed: number): Entry[] {
  return m.layers.filter((l) => l.className !== 'InputLayer').map((l, i) => ({
    name: l.name,
    vars: l.params.map((p) => p.name.split('/').pop()!),
    weights: l.params.map((p, j) => {
      const data = randomFloats(p.size, seed * 100 + i * 10 + j);
      if (p.name.endsWith('moving_variance')) for (let k = 0; k < data.length; k++) data[k] = Math.abs(data[k]) + 0.5;
      return { shape: p.shape.slice(), data };
    }),
  }));
}

const fixed = (names: string[]) => `S${Math.max(1, ...names.map((n) => new TextEncoder().encode(n).length))}`;

/**
 * How each Keras names the datasets of a layer: 'legacy' `<layer>_<i>:0` in the group (Keras 1,
 * the ImageNet files); 'tf2' `<layer>/<var>:0` (tf.keras 2, nested); 'keras3-name' `<var>`
 * (Keras 3.0-3.2 model.save('.h5'): variable.name); 'keras3-path' `<layer>/<var>` (later Keras 3: variable.path).
 */
type WeightNames = 'legacy' | 'tf2' | 'keras3-name' | 'keras3-path';

function weightNames(e: Entry, style: WeightNames): string[] {
  return e.vars.map((v, i) => (style === 'legacy' ? `${e.name}_${i}:0` : style === 'tf2' ? `${e.name}/${v}:0` : style === 'keras3-name' ? v : `${e.name}/${v}`));
}

/**
 * A Keras 2 layout HDF5 file: `layer_names` in the given order (input layer first when
 * `inputName`), one group per layer. `modelSave` writes what model.save('x.h5') writes: the
 * weights under /model_weights, groups created in sorted name order, and Keras 3's
 * top_level_model_weights group (not in layer_names).
 */
async function writeH5(path: string, entries: Entry[], o: { style?: WeightNames; inputName?: string; kerasVersion?: string; modelSave?: boolean } = {}): Promise<void> {
  const m = await h5();
  const f = new m.File(path, 'w');
  const style = o.style ?? 'legacy';
  const all = o.inputName ? [{ name: o.inputName, vars: [], weights: [] } as Entry, ...entries] : entries;
  let root = f as unknown as InstanceType<typeof m.Group>;
  if (o.modelSave) {
    f.create_attribute('keras_version', o.kerasVersion ?? '3.3.3', null, 'S8');
    f.create_attribute('backend', 'tensorflow', null, 'S10');
    root = f.create_group('model_weights');
  }
  const names = all.map((e) => e.name);
  root.create_attribute('layer_names', names, [names.length], fixed(names));
  if (o.kerasVersion) {
    root.create_attribute('keras_version', o.kerasVersion, null, 'S8');
    root.create_attribute('backend', 'tensorflow', null, 'S10');
  }
  const groups = o.modelSave ? [...all].sort((a, b) => (a.name < b.name ? -1 : 1)) : all;
  const writeGroup = (g: InstanceType<typeof m.Group>, e: Entry) => {
    const wn = weightNames(e, style);
    if (wn.length) g.create_attribute('weight_names', wn, [wn.length], fixed(wn));
    else g.create_attribute('weight_names', new Float64Array(0), [0], '<d'); // h5py's []
    wn.forEach((name, i) => {
      const parts = name.split('/');
      let at = g;
      for (const p of parts.slice(0, -1)) at = (at.keys().includes(p) ? at.get(p) : at.create_group(p)) as typeof g;
      at.create_dataset({ name: parts[parts.length - 1], data: e.weights[i].data, shape: e.weights[i].shape, dtype: '<f' });
    });
  };
  for (const e of groups) writeGroup(root.create_group(e.name), e);
  if (o.modelSave) writeGroup(root.create_group('top_level_model_weights'), { name: 'top_level_model_weights', vars: [], weights: [] });
  f.close();
}

/** Every weighted layer of `m` holds exactly the weights of the fixture layer of `expected[name]`. */
async function expectWeights(m: Model, fixture: Entry[], source: (modelLayer: string) => string = (n) => n): Promise<void> {
  const byName = new Map(fixture.map((e) => [e.name, e]));
  for (const l of m.layers.filter((x) => x.params.length)) {
    const want = byName.get(source(l.name))!;
    const got = await l.getWeights();
    expect(got.length, l.name).toBe(want.weights.length);
    got.forEach((w, j) => expect(sameBits(w.data, want.weights[j].data), `${l.name} weight ${j}`).toBe(true));
  }
}

const renameAll = (fixture: Entry[], rename: (name: string, i: number) => string) => fixture.map((e, i) => ({ ...e, name: rename(e.name, i) }));

describe('by layer name, or by layer order when the names differ', () => {
  it('names match: read by name, even when the file lists the layers in another order', async () => {
    const fixture = fixtureOf(model(), 1);
    // d3 before d2: same shapes, so by order would swap them silently
    const shuffled = [...fixture];
    const i2 = shuffled.findIndex((e) => e.name === 'd2');
    const i3 = shuffled.findIndex((e) => e.name === 'd3');
    [shuffled[i2], shuffled[i3]] = [shuffled[i3], shuffled[i2]];
    const path = join(dir, 'named.h5');
    await writeH5(path, shuffled, { style: 'tf2', inputName: 'input_1', kerasVersion: '2.11.0' });
    const m = model();
    const lines: string[] = [];
    const report = await loadWeightsInto(m, path, { log: (l) => lines.push(l) });
    expect(report).toEqual({ matchedBy: 'name', layers: 6, source: path, renamed: [], message: `read ${path} by layer name: 6 layers with weights` } satisfies WeightsLoadReport);
    expect(lines).toEqual([report.message]);
    await expectWeights(m, fixture);
    // model.loadWeights resolves to nothing; the report is kept for the model
    const again = model();
    await again.loadWeights(path);
    expect(weightsLoadReport(again)?.matchedBy).toBe('name');
    await expectWeights(again, fixture);
  });

  it('names differ: read by order (the i-th layer with weights of the file to the model\'s i-th), said so, identical outputs', async () => {
    const fixture = fixtureOf(model(), 2);
    const named = join(dir, 'order-named.h5');
    await writeH5(named, fixture);
    // As the real MobileNetV2 files: every layer named otherwise (weightless ones too)
    const renamed = renameAll(fixture, (_, i) => `layer_${String(i).padStart(3, '0')}`);
    const other = join(dir, 'order-renamed.h5');
    await writeH5(other, renamed);
    const a = model();
    const b = model();
    expect((await loadWeightsInto(a, named)).matchedBy).toBe('name');
    const lines: string[] = [];
    const report = await loadWeightsInto(b, other, { log: (l) => lines.push(l) });
    expect(report.matchedBy).toBe('order');
    expect(report.layers).toBe(6);
    expect(report.renamed).toEqual([
      { file: 'layer_000', model: 'c1' }, { file: 'layer_001', model: 'bn' }, { file: 'layer_004', model: 'd1' },
      { file: 'layer_005', model: 'd2' }, { file: 'layer_006', model: 'd3' }, { file: 'layer_007', model: 'out' },
    ]);
    expect(lines).toEqual([`read ${other} by layer order (names differ: file 'layer_000' is model 'c1', file 'layer_001' is model 'bn', file 'layer_004' is model 'd1', ... 6 differ): 6 layers with weights`]);
    await expectWeights(b, fixture);
    // the same weights give the same outputs (a GPU predict)
    const x = randomFloats(2 * 6 * 6 * 3, 99);
    const [ya, yb] = [await a.predict(x), await b.predict(x)];
    expect(ya.every((v) => Number.isFinite(v))).toBe(true);
    expect(sameBits(ya, yb)).toBe(true);

    // One name differing is enough to read by order (Keras's rule), here with the same result
    const oneOff = renameAll(fixture, (n) => (n === 'd2' ? 'dense_7' : n));
    const onePath = join(dir, 'order-one-off.h5');
    await writeH5(onePath, oneOff);
    const c = model();
    const r = await loadWeightsInto(c, onePath);
    expect(r.matchedBy).toBe('order');
    expect(r.renamed).toEqual([{ file: 'dense_7', model: 'd2' }]);
    expect(r.message).toContain("by layer order (names differ: file 'dense_7' is model 'd2')");
    await expectWeights(c, oneOff, (n) => (n === 'd2' ? 'dense_7' : n));
  });

  it('by order, a wrong shape is refused naming both layers and both shapes; nothing is loaded', async () => {
    const fixture = renameAll(fixtureOf(model(), 3), (n) => `k_${n}`);
    const d1 = fixture.findIndex((e) => e.name === 'k_d1');
    fixture[d1] = { ...fixture[d1], weights: [{ shape: [35, 4], data: randomFloats(35 * 4, 7) }, fixture[d1].weights[1]] };
    const path = join(dir, 'order-bad-shape.h5');
    await writeH5(path, fixture);
    const m = model();
    const before = await m.getLayer('c1').getWeights();
    const err = await loadWeightsInto(m, path).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/^loading weights from .*order-bad-shape\.h5: layer 'd1' \(named 'k_d1' in the file\), weight 0 \(d1\/kernel\): expected shape \[36, 4\], found \[35, 4\] \(k_d1_0:0\)/);
    expect(err?.message).toContain("read by layer order (its names are not the model's), so its layer #3 with weights 'k_d1' went to the model's #3 'd1'");
    // c1 comes first in the file and was not written
    expect(sameBits((await m.getLayer('c1').getWeights())[0].data, before[0].data)).toBe(true);
    expect(weightsLoadReport(m)).toBeUndefined();

    // a layer with too few arrays (BN with 2 of 4) names both layers too
    const bnShort = renameAll(fixtureOf(model(), 4), (n) => `k_${n}`).map((e) => (e.name === 'k_bn' ? { ...e, vars: e.vars.slice(0, 2), weights: e.weights.slice(0, 2) } : e));
    const bnPath = join(dir, 'order-bn-short.h5');
    await writeH5(bnPath, bnShort);
    await expect(loadWeightsInto(model(), bnPath)).rejects.toThrow(/layer 'bn' \(named 'k_bn' in the file\) has 4 weight arrays \(\[4\], \[4\], \[4\], \[4\]\) but the file gives 2 .*its layer #2 with weights 'k_bn' went to the model's #2 'bn'/);
  });

  it('by order, the counts of layers with weights must match; a file of a larger model is named as such', async () => {
    const fixture = fixtureOf(model(), 5);
    const fewer = renameAll(fixture.filter((e) => e.name !== 'd3'), (n) => `x_${n}`);
    const path = join(dir, 'order-fewer.h5');
    await writeH5(path, fewer);
    await expect(model().loadWeights(path)).rejects.toThrow(/the file has 5 layers with weights but model 'small' has 6 \(Keras loads by order; layers without weights are skipped\)\.\n  file:  x_c1, x_bn, x_d1, x_d2, x_out\n  model: c1, bn, d1, d2, d3, out$/);
    // every name of the model, plus a head: a file saved from a bigger model
    const bigger = [...fixture, { name: 'head', vars: ['kernel', 'bias'], weights: [{ shape: [1, 2], data: randomFloats(2, 1) }, { shape: [2], data: randomFloats(2, 2) }] }];
    const bigPath = join(dir, 'order-bigger.h5');
    await writeH5(bigPath, bigger);
    await expect(model().loadWeights(bigPath)).rejects.toThrow(/the file has 7 layers with weights but model 'small' has 6[\s\S]*The file has every layer of the model by name, and 1 more: it was saved from a larger model/);
  });
});

describe('input layers of Keras 2 (input_1) and Keras 3 (input_layer) have no weights and do not count', () => {
  it("Keras 3 model.save('.h5') (model_weights, 'input_layer', sorted groups) loads by name, with both weight name styles", async () => {
    const m0 = model();
    expect(m0.layers[0].name).not.toBe('input_layer'); // ours is 'input' or 'input_N': the input's name must not matter
    const fixture = fixtureOf(m0, 6);
    for (const style of ['keras3-name', 'keras3-path'] as const) {
      const path = join(dir, `keras3-${style}.h5`);
      await writeH5(path, fixture, { style, inputName: 'input_layer', modelSave: true });
      const m = model();
      const r = await loadWeightsInto(m, path);
      expect(r.matchedBy, style).toBe('name');
      expect(r.layers).toBe(6);
      await expectWeights(m, fixture);
    }
    // with renamed layers the input entry is skipped in the order too
    const renamed = renameAll(fixture, (n) => `${n}_k3`);
    const path = join(dir, 'keras3-renamed.h5');
    await writeH5(path, renamed, { style: 'keras3-path', inputName: 'input_layer', modelSave: true });
    const m = model('input_1');
    const r = await loadWeightsInto(m, path);
    expect(r.matchedBy).toBe('order');
    await expectWeights(m, renamed, (n) => `${n}_k3`);
  });

  it("Keras 3 .weights.h5 with layers/input_layer: by class and counter; Keras 2's input_1 by name", async () => {
    const m0 = model();
    const fixture = fixtureOf(m0, 8);
    const asFixture: FixtureLayer[] = m0.layers.slice(1).map((l, i) => ({ name: fixture[i].name, className: l.className, weights: fixture[i].weights }));
    const k3 = join(dir, 'k3.weights.h5');
    await writeKeras3H5(k3, asFixture); // with its layers/input_layer entry
    const m = model('input_1');
    const r = await loadWeightsInto(m, k3);
    expect(r.matchedBy).toBe('path');
    expect(r.message).toBe(`read ${k3} by Keras 3 layer path (class and counter): 6 layers with weights`);
    await expectWeights(m, fixture);

    const k2 = join(dir, 'k2-input_1.h5');
    await writeH5(k2, fixture, { style: 'tf2', inputName: 'input_1', kerasVersion: '2.15.0' });
    const n = model('input_layer');
    expect((await loadWeightsInto(n, k2)).matchedBy).toBe('name');
    await expectWeights(n, fixture);
  });
});

describe("model.loadWeights('imagenet') on a model a builder made", () => {
  it("MobileNetV2 built with weights: null loads its Keras file from the cache, by order", async () => {
    const cache = process.env.WEBGPU_FINETUNE_CACHE!;
    await mkdir(cache, { recursive: true });
    const file = mobilenetV2NoTop(0.35, 96);
    const m = await MobileNetV2({ weights: null, alpha: 0.35, inputShape: [96, 96, 3] });
    const fixture: Entry[] = renameAll(fixtureOf(m, 9), (_, i) => `mnv2_${i}`);
    await writeH5(join(cache, file.fileName), fixture);
    await m.loadWeights('imagenet');
    const report = weightsLoadReport(m)!;
    expect(report.matchedBy).toBe('order');
    expect(report.layers).toBe(m.layers.filter((l) => l.params.length).length);
    expect(report.message).toMatch(new RegExp(`^read the ImageNet weights \\('imagenet', ${file.fileName.replace(/\./g, '\\.')}\\) by layer order \\(names differ: file 'mnv2_0' is model 'Conv1'`));
    const byModelName = new Map(m.layers.filter((l) => l.className !== 'InputLayer').map((l, i) => [l.name, `mnv2_${i}`]));
    await expectWeights(m, fixture, (n) => byModelName.get(n)!);
    // a builder passes `log` on: now from the converted cache, by order again
    const lines: string[] = [];
    const again = await MobileNetV2({ weights: 'imagenet', alpha: 0.35, inputShape: [96, 96, 3], onProgress: false, log: (l) => lines.push(l) });
    expect(lines).toEqual([weightsLoadReport(again)!.message]);
    expect(lines[0]).toMatch(/by layer order \(names differ: file 'mnv2_0' is model 'Conv1'/);
    await expectWeights(again, fixture, (n) => byModelName.get(n)!);
  });

  it("each builder's model asks for its own file; other models are refused", async () => {
    const opts = { cacheDir: join(dir, 'empty-cache'), downloadUrl: closedUrl, onProgress: false as const };
    const vgg = await VGG16({ weights: null, inputShape: [32, 32, 3] });
    await expect(loadWeightsInto(vgg, 'imagenet', opts)).rejects.toThrow(/^Could not get the VGG16 ImageNet weights[\s\S]*vgg16_weights_tf_dim_ordering_tf_kernels_notop\.h5/);
    const r50 = await ResNet50({ weights: null, inputShape: [32, 32, 3] });
    await expect(loadWeightsInto(r50, 'imagenet', opts)).rejects.toThrow(/^Could not get the ResNet50 ImageNet weights[\s\S]*resnet50_weights_tf_dim_ordering_tf_kernels_notop\.h5/);
    // MobileNetV2 at 97x131: Keras's 224 file, with Keras's warning, when asked
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const odd = await MobileNetV2({ weights: null, inputShape: [97, 131, 3] });
      expect(warn).not.toHaveBeenCalled();
      await expect(loadWeightsInto(odd, 'imagenet', opts)).rejects.toThrow(/MobileNetV2 ImageNet weights[\s\S]*mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1\.0_224_no_top\.h5/);
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/Weights for input shape \(224, 224\) will be loaded as the default/));
    } finally {
      warn.mockRestore();
    }
    const wide = await MobileNetV2({ weights: null, alpha: 0.6, inputShape: [32, 32, 3] });
    await expect(wide.loadWeights('imagenet')).rejects.toThrow(/ImageNet weights exist for alpha 0.35, 0.5, 0.75, 1, 1.3, 1.4 only; model 'mobilenetv2_0.60_32' was built with alpha 0.6/);

    await expect(model().loadWeights('imagenet')).rejects.toThrow(/^loadWeights\('imagenet'\): model 'small' was not made by VGG16\(\), ResNet50\(\) or MobileNetV2\(\), so there is no ImageNet file for it/);
    // a model built on a base is not the base
    const base = await MobileNetV2({ weights: null, alpha: 0.35, inputShape: [32, 32, 3], pooling: 'avg' });
    const full = new Model({ inputs: base.inputs, outputs: new Dense({ units: 1, name: 'head' }).apply(base.outputs), name: 'full' });
    await expect(full.loadWeights('imagenet')).rejects.toThrow(/model 'full' was not made by/);
  });
});
