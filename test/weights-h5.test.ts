import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D, Model, VGG16, convertWeights } from '../src/index.ts';
import { readKerasH5 } from '../src/io/keras-h5-node.ts';
import { md5File } from '../src/io/download-node.ts';
import { h5, sameBits, vgg16Fixture, writeKeras3H5, writeLegacyH5, writeNestedH5, type FixtureLayer } from './helpers/weights-h5.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weights-h5-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every weighted layer of `model` holds exactly the fixture's bits. */
async function expectWeights(model: Model, fixture: FixtureLayer[]): Promise<void> {
  const weighted = fixture.filter((l) => l.weights.length);
  const layers = model.layers.filter((l) => l.params.length);
  expect(layers.map((l) => l.name)).toEqual(weighted.map((l) => l.name));
  for (let i = 0; i < layers.length; i++) {
    const got = await layers[i].getWeights();
    expect(got.map((w) => w.shape)).toEqual(weighted[i].weights.map((w) => w.shape));
    got.forEach((w, j) => expect(sameBits(w.data, weighted[i].weights[j].data), `${layers[i].name} weight ${j}`).toBe(true));
  }
}

/** A small model with convs, pools and dense layers: Keras 3 names them conv2d, conv2d_1, dense, dense_1. */
function smallModel(): Model {
  const input = Input({ shape: [6, 6, 3] });
  let x = new Conv2D({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1' }).apply(input);
  x = new MaxPooling2D({ name: 'p1' }).apply(x);
  x = new Conv2D({ filters: 5, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c2' }).apply(x);
  x = new Flatten({ name: 'f' }).apply(x);
  x = new Dense({ units: 7, activation: 'relu', name: 'd1' }).apply(x);
  x = new Dropout({ rate: 0.5, name: 'drop' }).apply(x);
  x = new Dense({ units: 1, activation: 'sigmoid', name: 'd2' }).apply(x);
  return new Model({ inputs: input, outputs: x, name: 'small' });
}

function smallFixture(seed: number): FixtureLayer[] {
  const w = (shape: number[], s: number) => ({ shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.37 + s)) });
  return [
    { name: 'c1', className: 'Conv2D', weights: [w([3, 3, 3, 4], seed), w([4], seed + 1)] },
    { name: 'p1', className: 'MaxPooling2D', weights: [] },
    { name: 'c2', className: 'Conv2D', weights: [w([3, 3, 4, 5], seed + 2), w([5], seed + 3)] },
    { name: 'f', className: 'Flatten', weights: [] },
    { name: 'd1', className: 'Dense', weights: [w([45, 7], seed + 4), w([7], seed + 5)] },
    { name: 'drop', className: 'Dropout', weights: [] },
    { name: 'd2', className: 'Dense', weights: [w([7, 1], seed + 6), w([1], seed + 7)] },
  ];
}

describe('Keras HDF5 weights', () => {
  it('full-size VGG16 in the legacy notop layout: converts, and loads bit for bit from the manifest and from the .h5', async () => {
    const fixture = vgg16Fixture(7);
    const h5Path = join(dir, 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5');
    await writeLegacyH5(h5Path, fixture);

    const t0 = performance.now();
    const manifest = await convertWeights(h5Path, join(dir, 'vgg16-converted'), { model: 'vgg16' });
    const ms = performance.now() - t0;
    console.log(`convertWeights: full-size VGG16 notop .h5 (${((await readFile(h5Path)).length / 1e6).toFixed(1)} MB) -> manifest + bin in ${ms.toFixed(0)} ms`);

    expect(manifest.model).toBe('vgg16');
    expect(manifest.tensors).toHaveLength(26);
    expect(manifest.byteLength).toBe(14_714_688 * 4);
    expect(manifest.tensors[0]).toMatchObject({ layer: 'block1_conv1', name: 'block1_conv1_W_1:0', shape: [3, 3, 3, 64], dtype: 'float32', offset: 0, byteLength: 6912 });
    expect(manifest.tensors[25]).toMatchObject({ layer: 'block5_conv3', name: 'block5_conv3_b_1:0', shape: [512] });
    expect(manifest.source).toMatchObject({ layout: 'legacy', md5: await md5File(h5Path), file: 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5' });
    const bin = await readFile(join(dir, 'vgg16-converted', 'weights.bin'));
    expect(bin.length).toBe(manifest.byteLength);
    const onDisk = JSON.parse(await readFile(join(dir, 'vgg16-converted', 'manifest.json'), 'utf8'));
    expect(onDisk).toEqual(manifest);

    const fromManifest = await VGG16({ weights: join(dir, 'vgg16-converted'), inputShape: [32, 32, 3] });
    await expectWeights(fromManifest, fixture);
    const fromH5 = await VGG16({ weights: h5Path, inputShape: [32, 32, 3] });
    await expectWeights(fromH5, fixture);
  });

  it('full-size VGG16 in the nested tf.keras layout (input layer listed, keras_version, backend)', async () => {
    const fixture = vgg16Fixture(8);
    const h5Path = join(dir, 'vgg16-nested.h5');
    await writeNestedH5(h5Path, fixture);
    const read = await readKerasH5(h5Path);
    expect(read.layout).toBe('nested');
    expect(read.kerasVersion).toBe('2.11.0');
    expect(read.backend).toBe('tensorflow');
    expect(read.layers.map((l) => l.layer).slice(0, 4)).toEqual(['input_1', 'block1_conv1', 'block1_conv2', 'block1_pool']);
    expect(read.layers[1].weights.map((w) => w.name)).toEqual(['block1_conv1/kernel:0', 'block1_conv1/bias:0']);
    const model = await VGG16({ weights: h5Path, inputShape: [32, 32, 3] });
    await expectWeights(model, fixture);
  });

  it('full-size VGG16 in the Keras 3 .weights.h5 layout', async () => {
    const fixture = vgg16Fixture(9);
    const h5Path = join(dir, 'vgg16.weights.h5');
    await writeKeras3H5(h5Path, fixture, { reverse: true });
    const read = await readKerasH5(h5Path);
    expect(read.layout).toBe('keras3');
    // conv2d_10 sorts after conv2d_9: counters compare as numbers
    expect(read.layers.filter((l) => l.weights.length).map((l) => l.path)).toEqual(['layers/conv2d', ...Array.from({ length: 12 }, (_, i) => `layers/conv2d_${i + 1}`)]);
    const model = await VGG16({ weights: h5Path, inputShape: [32, 32, 3] });
    await expectWeights(model, fixture);
    // and through a converted manifest, which keeps the Keras 3 paths
    const manifest = await convertWeights(h5Path, join(dir, 'k3-converted'));
    expect(manifest.tensors[0].path).toBe('layers/conv2d');
    await expectWeights(await VGG16({ weights: join(dir, 'k3-converted', 'manifest.json'), inputShape: [32, 32, 3] }), fixture);
  });

  it('Keras 3 layout matches layers by class and counter, not by position across classes', async () => {
    const fixture = smallFixture(3);
    const h5Path = join(dir, 'small.weights.h5');
    await writeKeras3H5(h5Path, fixture);
    const model = smallModel();
    await model.loadWeights(h5Path);
    await expectWeights(model, fixture);

    // A file without the last Dense: the layer is named, as Keras names it.
    const missing = join(dir, 'missing.weights.h5');
    await writeKeras3H5(missing, fixture.slice(0, 5));
    await expect(smallModel().loadWeights(missing)).rejects.toThrow(/no weights in the file for d2 \(layers\/dense_1\)/);
    // A file with an extra Dense that matches nothing.
    const extra = join(dir, 'extra.weights.h5');
    await writeKeras3H5(extra, [...fixture, { name: 'd3', className: 'Dense', weights: [fixture[6].weights[0], fixture[6].weights[1]] }]);
    await expect(smallModel().loadWeights(extra)).rejects.toThrow(/layers\/dense_2 .* match no layer/);
  });

  it('legacy and nested layouts load a model with dense layers by order', async () => {
    const fixture = smallFixture(5);
    for (const [name, write] of [['legacy', writeLegacyH5], ['nested', writeNestedH5]] as const) {
      const h5Path = join(dir, `small-${name}.h5`);
      await write(h5Path, fixture);
      const model = smallModel();
      await model.loadWeights(h5Path);
      await expectWeights(model, fixture);
    }
  });

  it('mismatches name the layer and both shapes; extra or missing layers are errors; nothing is half-loaded', async () => {
    const fixture = smallFixture(11);
    const bad = fixture.map((l) => (l.name === 'd1' ? { ...l, weights: [{ shape: [44, 7], data: new Float32Array(44 * 7) }, l.weights[1]] } : l));
    const badPath = join(dir, 'bad-shape.h5');
    await writeLegacyH5(badPath, bad);
    const model = smallModel();
    const before = await model.layers[1].getWeights();
    await expect(model.loadWeights(badPath)).rejects.toThrow(/layer 'd1'.*weight 0 \(d1\/kernel\): expected shape \[45, 7\], found \[44, 7\] \(d1_W_1:0\)/);
    // c1 comes before d1 in the file but was not written: a failed load changes nothing.
    expect(sameBits((await model.layers[1].getWeights())[0].data, before[0].data)).toBe(true);

    const shortPath = join(dir, 'short.h5');
    await writeLegacyH5(shortPath, fixture.slice(0, 5));
    await expect(smallModel().loadWeights(shortPath)).rejects.toThrow(/the file has 3 layers with weights but model 'small' has 4[\s\S]*file:  c1, c2, d1\n  model: c1, c2, d1, d2/);

    const vggPath = join(dir, 'small-into-vgg.h5');
    await writeLegacyH5(vggPath, fixture);
    await expect(VGG16({ weights: vggPath, inputShape: [32, 32, 3] })).rejects.toThrow(/the file has 4 layers with weights but model 'vgg16' has 13/);

    const oneWeight = fixture.map((l) => (l.name === 'c2' ? { ...l, weights: [l.weights[0]] } : l));
    const onePath = join(dir, 'one-weight.h5');
    await writeLegacyH5(onePath, oneWeight);
    await expect(smallModel().loadWeights(onePath)).rejects.toThrow(/layer 'c2' has 2 weight arrays \(\[3, 3, 4, 5\], \[5\]\) but the file gives 1/);
  });

  it('rejects files that are not Keras weights, with the reason', async () => {
    const text = join(dir, 'not-hdf5.h5');
    await writeFile(text, 'hello, not an HDF5 file');
    await expect(smallModel().loadWeights(text)).rejects.toThrow(/not a weights manifest|not an HDF5 file/);
    await expect(readKerasH5(text)).rejects.toThrow(/not an HDF5 file/);
    await expect(readKerasH5(join(dir, 'nope.h5'))).rejects.toThrow(/no such file/);

    const m = await h5();
    const plain = join(dir, 'plain.h5');
    const f = new m.File(plain, 'w');
    f.create_dataset({ name: 'x', data: new Float32Array(3), shape: [3], dtype: '<f' });
    f.close();
    await expect(readKerasH5(plain)).rejects.toThrow(/not a Keras weights file/);

    const dangling = join(dir, 'dangling.h5');
    const g = new m.File(dangling, 'w');
    g.create_attribute('layer_names', ['c1'], [1], 'S2');
    g.create_group('c1').create_attribute('weight_names', ['c1_W_1:0'], [1], 'S8');
    g.close();
    await expect(readKerasH5(dangling)).rejects.toThrow(/layer 'c1' lists weight 'c1_W_1:0' but the file has no dataset 'c1\/c1_W_1:0'/);

    const ints = join(dir, 'ints.h5');
    const k = new m.File(ints, 'w');
    k.create_attribute('layer_names', ['c1'], [1], 'S2');
    const c1 = k.create_group('c1');
    c1.create_attribute('weight_names', ['k'], [1], 'S1');
    c1.create_dataset({ name: 'k', data: new Int32Array(4), shape: [4], dtype: '<i' });
    k.close();
    await expect(readKerasH5(ints)).rejects.toThrow(/c1\/k: expected float32 weights, found dtype "<i"/);
  });

  it('saveWeightsH5 writes the layout Keras loads: layer_names, backend, keras_version, weight_names, datasets', async () => {
    const model = smallModel();
    const path = join(dir, 'saved', 'small.h5');
    await model.saveWeightsH5(path);

    // Read back with h5wasm directly, as Keras would walk it.
    const m = await h5();
    const f = new m.File(path, 'r');
    const attr = (o: { attrs: Record<string, { value: unknown }> }, n: string) => o.attrs[n].value;
    expect(attr(f, 'layer_names')).toEqual(model.layers.map((l) => l.name));
    expect(attr(f, 'backend')).toBe('tensorflow');
    expect(typeof attr(f, 'keras_version')).toBe('string');
    for (const layer of model.layers) {
      const g = f.get(layer.name) as InstanceType<typeof m.Group>;
      const names = attr(g, 'weight_names') as string[];
      expect(names).toEqual(layer.params.map((p) => `${p.name}:0`));
      const values = await layer.getWeights();
      names.forEach((n, i) => {
        const ds = g.get(n) as InstanceType<typeof m.Dataset>;
        expect(ds.dtype).toBe('<f');
        expect(ds.shape).toEqual(layer.params[i].shape);
        expect(sameBits(ds.value as Float32Array, values[i].data), `${layer.name}/${n}`).toBe(true);
      });
    }
    f.close();

    // And our reader loads it into a fresh model (fresh random weights) bit for bit.
    const again = smallModel();
    await again.loadWeights(path);
    for (let i = 0; i < model.layers.length; i++) {
      const a = await model.layers[i].getWeights();
      const b = await again.layers[i].getWeights();
      a.forEach((w, j) => expect(sameBits(w.data, b[j].data)).toBe(true));
    }
    expect((await readKerasH5(path)).layout).toBe('nested');
  });
});
