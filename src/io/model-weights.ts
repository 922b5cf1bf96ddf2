// Moving weights between a model and per-layer lists, with Keras's matching rules.
// Structural types only: src/io must not depend on src/graph (graph uses io, not the reverse).

import type { LayerWeights, NamedWeight } from './weights-manifest.ts';

export interface WeightedLayer {
  readonly name: string;
  readonly className: string;
  readonly params: readonly { readonly name: string; readonly shape: readonly number[] }[];
  getWeights(): Promise<{ shape: number[]; data: Float32Array }[]>;
  setWeights(weights: { shape: number[]; data: Float32Array }[]): Promise<void>;
}

export interface WeightedModel {
  readonly name: string;
  readonly layers: readonly WeightedLayer[];
}

const shapeStr = (s: readonly number[]) => `[${s.join(', ')}]`;
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

function listNames(names: string[], max = 20): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')}, ... (${names.length - max} more)`;
}

/** Counts NaN and ±Inf values (x - x is 0 only for finite x). */
export function nonFinite(data: Float32Array): { count: number; nan: number; first: number } {
  let count = 0;
  let nan = 0;
  let first = -1;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v !== 0) {
      if (count++ === 0) first = i;
      if (v !== v) nan++;
    }
  }
  return { count, nan, first };
}

/** Throws, naming `what`, when `w` holds NaN or Inf; `after` says what was (not) done. */
export function requireFinite(w: { data: Float32Array }, what: string, after: string): void {
  const bad = nonFinite(w.data);
  if (!bad.count) return;
  throw new Error(`${what}: ${bad.count} of ${w.data.length} values are NaN or Inf (${bad.nan} NaN, ${bad.count - bad.nan} Inf; first at index ${bad.first}); ` +
    `the file is damaged or the training that wrote it diverged: use an earlier copy of the weights or retrain (${after})`);
}

/** Keras's naming.to_snake_case: Conv2D -> conv2d, MaxPooling2D -> max_pooling2d, InputLayer -> input_layer. */
export function kerasSnakeCase(className: string): string {
  return className
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

/**
 * Where Keras 3 stores each layer in a `.weights.h5`: `layers/<snake class>` with a per-class
 * counter (`conv2d`, `conv2d_1`, ...), counted over all layers in order, weightless ones included.
 */
export function keras3LayerPaths(model: WeightedModel): string[] {
  const used = new Map<string, number>();
  return model.layers.map((l) => {
    const base = kerasSnakeCase(l.className);
    const n = used.get(base);
    used.set(base, n === undefined ? 0 : n + 1);
    return `layers/${n === undefined ? base : `${base}_${n + 1}`}`;
  });
}

/** The model's weights per layer (layers with weights only), Keras variable names (`<layer>/kernel:0`). */
export async function collectLayerWeights(model: WeightedModel): Promise<LayerWeights[]> {
  const out: LayerWeights[] = [];
  for (const l of model.layers) {
    if (l.params.length === 0) continue;
    const values = await l.getWeights();
    out.push({ layer: l.name, weights: values.map((v, i) => ({ name: `${l.params[i].name}:0`, shape: v.shape, data: v.data })) });
  }
  return out;
}

/**
 * Sets a model's weights from per-layer lists, as Keras's load_weights does:
 * - by order (Keras 2 HDF5 and our manifests): layers without weights are skipped on both sides,
 *   then the counts of layers, the count of arrays per layer and every shape must match;
 * - by Keras 3 path when every entry has one (`.weights.h5`): `layers/conv2d_3` is the fourth
 *   Conv2D of the model; a weighted layer with no entry, or an entry with no layer, is an error.
 * Everything is checked before anything is written (shapes, sizes, and that every value is finite),
 * so a failed load leaves the model unchanged.
 */
export async function loadLayerWeights(model: WeightedModel, entries: LayerWeights[], options: { source?: string } = {}): Promise<void> {
  const from = options.source ? ` from ${options.source}` : '';
  const fileLayers = entries.filter((e) => e.weights.length > 0);
  const modelLayers = model.layers.filter((l) => l.params.length > 0);
  const pairs: [WeightedLayer, LayerWeights][] = [];

  if (fileLayers.length > 0 && fileLayers.every((e) => e.path !== undefined)) {
    const paths = keras3LayerPaths(model);
    const byPath = new Map(fileLayers.map((e) => [e.path!, e]));
    const missing: string[] = [];
    model.layers.forEach((l, i) => {
      if (l.params.length === 0) return;
      const e = byPath.get(paths[i]);
      if (e) {
        pairs.push([l, e]);
        byPath.delete(paths[i]);
      } else missing.push(`${l.name} (${paths[i]})`);
    });
    if (missing.length || byPath.size) {
      throw new Error(`loading weights${from} into model '${model.name}' (Keras 3 layout, matched by class and position): ` +
        (missing.length ? `no weights in the file for ${listNames(missing)}` : '') +
        (missing.length && byPath.size ? '; ' : '') +
        (byPath.size ? `the file has weights for ${listNames([...byPath.values()].map((e) => `${e.path} (${e.layer})`))} which match no layer of the model` : ''));
    }
  } else {
    if (fileLayers.length !== modelLayers.length) {
      throw new Error(`loading weights${from}: the file has ${fileLayers.length} layers with weights but model '${model.name}' has ${modelLayers.length} ` +
        `(Keras loads by order; layers without weights are skipped).\n  file:  ${listNames(fileLayers.map((e) => e.layer)) || '(none)'}\n  model: ${listNames(modelLayers.map((l) => l.name)) || '(none)'}`);
    }
    modelLayers.forEach((l, i) => pairs.push([l, fileLayers[i]]));
  }

  for (const [l, e] of pairs) {
    const named = e.layer === l.name ? `layer '${l.name}'` : `layer '${l.name}' (named '${e.layer}' in the file)`;
    if (e.weights.length !== l.params.length) {
      throw new Error(`loading weights${from}: ${named} has ${l.params.length} weight arrays (${l.params.map((p) => shapeStr(p.shape)).join(', ')}) but the file gives ${e.weights.length} (${e.weights.map((w) => `${w.name} ${shapeStr(w.shape)}`).join(', ')})`);
    }
    e.weights.forEach((w: NamedWeight, i) => {
      const p = l.params[i];
      if (!sameShape(w.shape, p.shape)) {
        throw new Error(`loading weights${from}: ${named}, weight ${i} (${p.name}): expected shape ${shapeStr(p.shape)}, found ${shapeStr(w.shape)} (${w.name})`);
      }
      const n = w.shape.reduce((a, b) => a * b, 1);
      if (w.data.length !== n) throw new Error(`loading weights${from}: ${named}, weight ${i} (${w.name}) has ${w.data.length} values for shape ${shapeStr(w.shape)}`);
      requireFinite(w, `loading weights${from}: ${named}, weight ${i} (${w.name})`, 'nothing was loaded');
    });
  }
  for (const [l, e] of pairs) await l.setWeights(e.weights.map((w) => ({ shape: w.shape, data: w.data })));
}
