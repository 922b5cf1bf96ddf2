// Writes Keras-layout HDF5 weight files with h5wasm, independently of src/io, mimicking what
// Keras (through h5py) writes in each of its three layouts. For tests only.

import { rng } from './random.ts';

type H5 = typeof import('h5wasm/node');
let ready: Promise<H5> | null = null;
export function h5(): Promise<H5> {
  ready ??= import('h5wasm/node').then(async (m) => {
    await m.ready;
    return m;
  });
  return ready;
}

export interface FixtureLayer {
  name: string;
  className: string;
  /** Kernel then bias; empty for weightless layers. */
  weights: { shape: number[]; data: Float32Array }[];
}

/** Fast deterministic floats (any bit pattern of a finite float is as good as another here). */
export function randomFloats(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() - 0.5) * 0.2;
  return out;
}

/** keras.applications VGG16 (notop) layers, input excluded, with random weights of the real shapes. */
export function vgg16Fixture(seed = 1): FixtureLayer[] {
  const blocks: [number, number][] = [[64, 2], [128, 2], [256, 3], [512, 3], [512, 3]];
  const out: FixtureLayer[] = [];
  let cin = 3;
  blocks.forEach(([cout, convs], b) => {
    for (let c = 1; c <= convs; c++) {
      const k = [3, 3, cin, cout];
      out.push({
        name: `block${b + 1}_conv${c}`,
        className: 'Conv2D',
        weights: [
          { shape: k, data: randomFloats(9 * cin * cout, seed * 1000 + out.length) },
          { shape: [cout], data: randomFloats(cout, seed * 1000 + 500 + out.length) },
        ],
      });
      cin = cout;
    }
    out.push({ name: `block${b + 1}_pool`, className: 'MaxPooling2D', weights: [] });
  });
  return out;
}

const fixed = (names: string[]) => `S${Math.max(1, ...names.map((n) => n.length))}`;

/**
 * The layout of Keras's ImageNet notop file: root `layer_names` only (no keras_version, no
 * backend), weight names `<layer>_W_1:0` / `<layer>_b_1:0` with datasets directly in the layer
 * group, pools with an empty weight_names (h5py stores [] as an empty float64 array).
 */
export async function writeLegacyH5(path: string, layers: FixtureLayer[]): Promise<void> {
  const m = await h5();
  const f = new m.File(path, 'w');
  const names = layers.map((l) => l.name);
  f.create_attribute('layer_names', names, [names.length], fixed(names));
  for (const l of layers) {
    const g = f.create_group(l.name);
    const wn = l.weights.map((_, i) => `${l.name}_${i === 0 ? 'W' : 'b'}_1:0`);
    if (wn.length) g.create_attribute('weight_names', wn, [wn.length], fixed(wn));
    else g.create_attribute('weight_names', new Float64Array(0), [0], '<d');
    l.weights.forEach((w, i) => g.create_dataset({ name: wn[i], data: w.data, shape: w.shape, dtype: '<f' }));
  }
  f.close();
}

/**
 * tf.keras 2 save_weights: root layer_names (input layer included), backend, keras_version;
 * weight names `<layer>/kernel:0`, so datasets nest at `<layer>/<layer>/kernel:0`.
 */
export async function writeNestedH5(path: string, layers: FixtureLayer[], inputName = 'input_1'): Promise<void> {
  const m = await h5();
  const f = new m.File(path, 'w');
  const all = [{ name: inputName, className: 'InputLayer', weights: [] } as FixtureLayer, ...layers];
  const names = all.map((l) => l.name);
  f.create_attribute('layer_names', names, [names.length], fixed(names));
  f.create_attribute('backend', 'tensorflow', null, 'S10');
  f.create_attribute('keras_version', '2.11.0', null, 'S6');
  for (const l of all) {
    const g = f.create_group(l.name);
    const wn = l.weights.map((_, i) => `${l.name}/${i === 0 ? 'kernel' : 'bias'}:0`);
    g.create_attribute('weight_names', wn, [wn.length], fixed(wn.length ? wn : ['']));
    if (l.weights.length) {
      const inner = g.create_group(l.name);
      l.weights.forEach((w, i) => inner.create_dataset({ name: i === 0 ? 'kernel:0' : 'bias:0', data: w.data, shape: w.shape, dtype: '<f' }));
    }
  }
  f.close();
}

const snake = (c: string) => c.replace(/(.)([A-Z][a-z]+)/g, '$1_$2').replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();

/**
 * Keras 3 `.weights.h5`: `layers/<snake class>[_N]/vars/<i>`, every layer (input included) with a
 * `vars` group, plus the model's own empty `vars`. `reverse` creates the groups in reverse order to show the
 * reader does not depend on it.
 */
export async function writeKeras3H5(path: string, layers: FixtureLayer[], options: { withInput?: boolean; reverse?: boolean } = {}): Promise<void> {
  const m = await h5();
  const f = new m.File(path, 'w');
  f.create_group('vars');
  const lg = f.create_group('layers');
  const all = options.withInput === false ? layers : [{ name: 'input_layer', className: 'InputLayer', weights: [] } as FixtureLayer, ...layers];
  const used = new Map<string, number>();
  const entries = all.map((l) => {
    const base = snake(l.className);
    const n = used.get(base);
    used.set(base, n === undefined ? 0 : n + 1);
    return { key: n === undefined ? base : `${base}_${n + 1}`, l };
  });
  if (options.reverse) entries.reverse();
  for (const { key, l } of entries) {
    const vars = lg.create_group(key).create_group('vars');
    l.weights.forEach((w, i) => vars.create_dataset({ name: String(i), data: w.data, shape: w.shape, dtype: '<f' }));
  }
  f.close();
}

/** True when two float arrays hold the same bits (NaN payloads and -0 included). */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}
