// Keras HDF5 weight files: the layouts, independent of where the bytes live. h5wasm is passed in
// (its Node build opens host files; its browser build works on an in-memory file system), so
// Node (keras-h5-node.ts) and browsers (keras-h5-browser.ts) share every rule below.
// Reads the three layouts Keras has used:
// - legacy (Keras 1/2, e.g. the ImageNet VGG16 notop file): root attribute `layer_names`; each
//   layer group has `weight_names` such as `block1_conv1_W_1:0`, datasets directly in the group;
// - nested (tf.keras 2 / Keras 2.x with TF): the same attributes, weight names such as
//   `block1_conv1/kernel:0`, so datasets sit at `block1_conv1/block1_conv1/kernel:0`;
// - Keras 3 `.weights.h5`: `layers/<snake class>[_N]/vars/<i>`, addressed by class and counter.
// Writes the legacy layout with nested names (what Keras 2.2.4 and tf.keras 2 write), which every
// Keras from 2.2 to 3 loads with model.load_weights().

import type { Dataset, Group } from 'h5wasm';
import type { LayerWeights, NamedWeight } from './weights-manifest.ts';

/** The h5wasm module (its Node or its browser build: the same API). */
export type H5 = typeof import('h5wasm');

export type KerasH5Layout = 'legacy' | 'nested' | 'keras3';

export interface KerasH5Weights {
  layout: KerasH5Layout;
  /** Every layer the file lists, in its order, weightless ones (pools) with empty `weights`. */
  layers: LayerWeights[];
  kerasVersion?: string;
  backend?: string;
}

/** HDF5 files start with a signature at 0, 512, 1024, 2048, ... (after an optional user block). */
export const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** Byte offsets where an HDF5 signature may sit in a file of `size` bytes. */
export function signatureOffsets(size: number): number[] {
  const out: number[] = [];
  for (let at = 0; at + 8 <= size; at = at === 0 ? 512 : at * 2) out.push(at);
  return out;
}

export const NOT_HDF5 = 'not an HDF5 file (no HDF5 signature); expected a Keras weights file such as vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5';

/** What an HDF5 error while reading means for the user (withHdf5Errors' `hint`). */
export const DAMAGED_HDF5 = 'damaged or truncated HDF5 file; replace it with a good copy';

/**
 * Runs synchronous h5wasm calls with HDF5's error printer replaced by one that throws, so a
 * damaged file gives an exception naming the file instead of a trace on stderr and garbage.
 * `hint` says what it means for the user (HDF5's own calls follow in brackets).
 */
export function withHdf5Errors<T>(h5: H5, file: string, fn: () => T, hint?: string): T {
  h5.Module.activate_throwing_error_handler();
  try {
    return fn();
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    if (!text.includes('HDF5-DIAG')) throw e;
    const calls = text.split('\n').filter((l) => /#\d+:/.test(l)).map((l) => l.replace(/^.* in /, '').trim());
    throw new Error(`${file}: ${hint ? `${hint} (` : ''}HDF5 error: ${calls.slice(0, 2).join('; ') || text.split('\n')[0]}${hint ? ')' : ''}`);
  } finally {
    h5.Module.deactivate_throwing_error_handler();
  }
}

function stripNul(s: string): string {
  const i = s.indexOf('\0');
  return i < 0 ? s : s.slice(0, i);
}

/** A string-list attribute (h5py writes Keras's lists as fixed-length byte strings; an empty list as an empty float array). */
function stringList(obj: Group, name: string, where: string): string[] | null {
  const attrs = obj.attrs;
  const decode = (attr: string): string[] => {
    const v = attrs[attr].value;
    if (typeof v === 'string') return [stripNul(v)];
    if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return (v as string[]).map(stripNul);
    if (ArrayBuffer.isView(v) && (v as unknown as ArrayLike<unknown>).length === 0) return [];
    if (Array.isArray(v) && v.length === 0) return [];
    throw new Error(`${where}: attribute ${attr} should be a list of strings, found ${attrs[attr].dtype} ${JSON.stringify(attrs[attr].shape)}`);
  };
  if (name in attrs) return decode(name);
  // Keras splits lists longer than HDF5's 64 KiB attribute limit into name0, name1, ...
  if (!(`${name}0` in attrs)) return null;
  const out: string[] = [];
  for (let i = 0; `${name}${i}` in attrs; i++) out.push(...decode(`${name}${i}`));
  return out;
}

function stringAttr(obj: Group, name: string): string | undefined {
  if (!(name in obj.attrs)) return undefined;
  const v = obj.attrs[name].value;
  return typeof v === 'string' ? stripNul(v) : undefined;
}

export function isGroup(h5: H5, e: unknown): e is Group {
  return e instanceof h5.Group;
}

function readFloats(h5: H5, ds: unknown, where: string): { shape: number[]; data: Float32Array } {
  if (!(ds instanceof h5.Dataset)) throw new Error(`${where}: not a dataset`);
  const d = ds as Dataset;
  const meta = d.metadata;
  if (meta.type !== 1 || (meta.size !== 4 && meta.size !== 8)) throw new Error(`${where}: expected float32 weights, found dtype ${JSON.stringify(d.dtype)}`);
  if (!meta.littleEndian) throw new Error(`${where}: big-endian floats are not supported`);
  const shape = d.shape ?? [];
  const value = d.value;
  const n = shape.reduce((a, b) => a * b, 1);
  if (!(value instanceof Float32Array || value instanceof Float64Array) || value.length !== n) {
    throw new Error(`${where}: could not read ${n} floats of shape [${shape.join(', ')}]`);
  }
  // float64 files (floatx float64) are cast, as Keras casts to the variable's dtype.
  return { shape, data: value instanceof Float32Array ? value : Float32Array.from(value) };
}

function readKeras2(h5: H5, root: Group, file: string): KerasH5Weights {
  const names = stringList(root, 'layer_names', file)!;
  let nested = false;
  const layers = names.map((layer): LayerWeights => {
    if (!root.keys().includes(layer)) throw new Error(`${file}: layer_names lists '${layer}' but the file has no group '${layer}'`);
    const g = root.get(layer);
    if (!isGroup(h5, g)) throw new Error(`${file}: '${layer}' is not a group`);
    const weightNames = stringList(g, 'weight_names', `${file} ${layer}`);
    if (weightNames === null) throw new Error(`${file}: layer group '${layer}' has no weight_names attribute`);
    const weights = weightNames.map((name): NamedWeight => {
      if (name.includes('/')) nested = true;
      // Walk the path one component at a time: get() on a missing path would be an HDF5 error.
      let at: Group = g;
      const parts = name.split('/');
      parts.slice(0, -1).forEach((part) => {
        const next = at.keys().includes(part) ? at.get(part) : null;
        if (!isGroup(h5, next)) throw new Error(`${file}: layer '${layer}' lists weight '${name}' but there is no group '${layer}/${parts.slice(0, parts.indexOf(part) + 1).join('/')}'`);
        at = next;
      });
      const last = parts[parts.length - 1];
      if (!at.keys().includes(last)) throw new Error(`${file}: layer '${layer}' lists weight '${name}' but the file has no dataset '${layer}/${name}'`);
      return { name, ...readFloats(h5, at.get(last), `${file} ${layer}/${name}`) };
    });
    return { layer, weights };
  });
  return { layout: nested ? 'nested' : 'legacy', layers, kerasVersion: stringAttr(root, 'keras_version'), backend: stringAttr(root, 'backend') };
}

/** `conv2d_12` -> ['conv2d', 12]; `conv2d` -> ['conv2d', 0], for Keras 3's class-and-counter names. */
function splitCounter(key: string): [string, number] {
  const m = /^(.*)_(\d+)$/.exec(key);
  return m ? [m[1], Number(m[2])] : [key, 0];
}

function readKeras3(h5: H5, layersGroup: Group, prefix: string, file: string): KerasH5Weights {
  const keys = layersGroup.keys().slice().sort((a, b) => {
    const [ba, na] = splitCounter(a);
    const [bb, nb] = splitCounter(b);
    return ba === bb ? na - nb : ba < bb ? -1 : 1;
  });
  const layers = keys.map((key): LayerWeights => {
    const g = layersGroup.get(key);
    const path = `${prefix}/${key}`;
    if (!isGroup(h5, g)) throw new Error(`${file}: ${path} is not a group`);
    if (g.keys().includes('layers')) {
      const inner = g.get('layers');
      if (isGroup(h5, inner) && inner.keys().length > 0) throw new Error(`${file}: ${path} is a nested model; nested models are not supported (build the model flat, as keras.applications bases are used in the reference program)`);
    }
    const vars = g.keys().includes('vars') ? g.get('vars') : null;
    if (!isGroup(h5, vars)) return { layer: key, path: `layers/${key}`, weights: [] };
    const indices = vars.keys();
    if (!indices.every((k) => /^\d+$/.test(k))) throw new Error(`${file}: ${path}/vars holds ${indices.join(', ')}; expected datasets named 0, 1, ...`);
    const sorted = indices.map(Number).sort((a, b) => a - b);
    if (sorted.some((k, i) => k !== i)) throw new Error(`${file}: ${path}/vars holds ${sorted.join(', ')}; expected 0..${sorted.length - 1}`);
    const weights = sorted.map((i): NamedWeight => ({ name: `${path}/vars/${i}`, ...readFloats(h5, vars.get(String(i)), `${file} ${path}/vars/${i}`) }));
    // Some Keras versions record the layer's name; otherwise the class-and-counter key names it.
    const layer = stringAttr(vars, 'name') ?? stringAttr(g, 'name') ?? key;
    return { layer, path: `layers/${key}`, weights };
  });
  return { layout: 'keras3', layers };
}

/** Reads every layer's weights from an open HDF5 file (any of the three layouts). `file` names it in errors. */
export function readKerasH5Root(h5: H5, f: Group, file: string): KerasH5Weights {
  if (stringList(f, 'layer_names', file) !== null) return readKeras2(h5, f, file);
  // A whole model saved with model.save('x.h5') keeps its weights in model_weights/.
  const mw = f.keys().includes('model_weights') ? f.get('model_weights') : null;
  if (isGroup(h5, mw) && stringList(mw, 'layer_names', file) !== null) {
    const r = readKeras2(h5, mw, file);
    return { ...r, kerasVersion: r.kerasVersion ?? stringAttr(f, 'keras_version'), backend: r.backend ?? stringAttr(f, 'backend') };
  }
  // Keras 2.13 wrote Keras 3-style files under another name for `layers`.
  for (const prefix of ['layers', '_layer_checkpoint_dependencies']) {
    const g = f.keys().includes(prefix) ? f.get(prefix) : null;
    if (isGroup(h5, g)) return readKeras3(h5, g, prefix, file);
  }
  throw new Error(`${file}: not a Keras weights file: no 'layer_names' attribute (Keras 2 HDF5) and no 'layers' group (Keras 3 .weights.h5)`);
}

export interface WriteKerasH5Options {
  /** Recorded as Keras records it; Keras 2 reads it only to convert Keras 1 files. */
  kerasVersion?: string;
  backend?: string;
}

function fixedString(values: string[]): string {
  const longest = Math.max(0, ...values.map((v) => new TextEncoder().encode(v).length));
  // 'A': ASCII, NUL-terminated; one byte more than the longest name so every string ends in NUL.
  return `A${longest + 1}`;
}

/** Checks what writeKerasH5Root will write; throws naming the layer and weight. */
export function checkKerasH5Layers(layers: { layer: string; weights: NamedWeight[] }[]): void {
  const names = layers.map((l) => l.layer);
  for (const l of layers) {
    if (!l.layer || l.layer.includes('/')) throw new Error(`writeKerasH5: layer name ${JSON.stringify(l.layer)} cannot be an HDF5 group name`);
    for (const w of l.weights) {
      if (w.name.split('/').some((p) => p === '' || p === '.' || p === '..')) throw new Error(`writeKerasH5: ${l.layer}: weight name ${JSON.stringify(w.name)} is not a valid HDF5 path`);
      if (w.data.length !== w.shape.reduce((a, b) => a * b, 1)) throw new Error(`writeKerasH5: ${l.layer} ${w.name}: ${w.data.length} values for shape [${w.shape.join(', ')}]`);
    }
  }
  if (new Set(names).size !== names.length) throw new Error('writeKerasH5: layer names must be unique');
}

/**
 * Writes weights in Keras's HDF5 layout into an open, empty file: root attributes layer_names,
 * backend, keras_version; one group per layer (weightless ones too, with an empty weight_names)
 * holding its datasets.
 */
export function writeKerasH5Root(h5: H5, f: Group, layers: { layer: string; weights: NamedWeight[] }[], options: WriteKerasH5Options = {}): void {
  const names = layers.map((l) => l.layer);
  f.create_attribute('layer_names', names, [names.length], fixedString(names));
  f.create_attribute('backend', options.backend ?? 'tensorflow', null, fixedString([options.backend ?? 'tensorflow']));
  f.create_attribute('keras_version', options.kerasVersion ?? '2.2.4', null, fixedString([options.kerasVersion ?? '2.2.4']));
  for (const l of layers) {
    const g = f.create_group(l.layer);
    const wn = l.weights.map((w) => w.name);
    g.create_attribute('weight_names', wn, [wn.length], fixedString(wn));
    for (const w of l.weights) {
      // h5wasm does not create intermediate groups: make `block1_conv1/` before `kernel:0`.
      const parts = w.name.split('/');
      let at: Group = g;
      for (const part of parts.slice(0, -1)) {
        const next = at.keys().includes(part) ? at.get(part) : at.create_group(part);
        if (!isGroup(h5, next)) throw new Error(`writeKerasH5: ${l.layer}/${w.name}: '${part}' is already a dataset`);
        at = next;
      }
      at.create_dataset({ name: parts[parts.length - 1], data: w.data, shape: w.shape, dtype: '<f' });
    }
  }
}
