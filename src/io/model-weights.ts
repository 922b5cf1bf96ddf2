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

/** How a weights file's layers were paired with the model's. */
export type WeightsMatch = 'name' | 'order' | 'path';

/** What loadLayerWeights did: which way the source was read, how many layers it set, and a line saying so. */
export interface WeightsLoadReport {
  /**
   * 'name': every layer with weights has its name in the source (VGG16's and ResNet50's ImageNet
   * files, our own exports); 'order': the names differ, so Keras's HDF5 rule paired the i-th layer
   * with weights of the source with the model's i-th (MobileNetV2's ImageNet files); 'path': a
   * Keras 3 `.weights.h5`, paired by class and counter (`layers/conv2d_3`).
   */
  matchedBy: WeightsMatch;
  /** Layers whose weights were set (layers with weights). */
  layers: number;
  /** Where the weights came from, as given (a path, a URL, "the ImageNet weights (...)"). */
  source?: string;
  /** Pairs whose names differ (source layer, model layer): empty unless matchedBy is 'order' or 'path'. */
  renamed: { file: string; model: string }[];
  /** One line for a log: "read X by layer order (names differ: file 'a' is model 'b', ...): 52 layers". */
  message: string;
}

export interface LoadLayerWeightsOptions {
  /** Names the weights in errors and in the report (a path, a URL, a checkpoint). */
  source?: string;
  /** Called once with the report's message after a successful load. */
  log?: (line: string) => void;
}

// The last successful load per model, for callers that cannot take a return value (a builder's
// weights option): weightsLoadReport(model).
const lastLoad = new WeakMap<object, WeightsLoadReport>();

/** How the model's weights were last loaded from a file (undefined if never). */
export function weightsLoadReport(model: WeightedModel): WeightsLoadReport | undefined {
  return lastLoad.get(model);
}

/** The pairing by name when it is one to one over the layers with weights, else null. */
function pairByName(modelLayers: WeightedLayer[], fileLayers: LayerWeights[]): [WeightedLayer, LayerWeights][] | null {
  if (fileLayers.length !== modelLayers.length) return null;
  const byName = new Map(fileLayers.map((e) => [e.layer, e]));
  if (byName.size !== fileLayers.length) return null;
  const pairs: [WeightedLayer, LayerWeights][] = [];
  for (const l of modelLayers) {
    const e = byName.get(l.name);
    if (!e) return null;
    pairs.push([l, e]);
  }
  return pairs;
}

const ordinal = (n: number) => `#${n}`;

function describeLoad(matchedBy: WeightsMatch, from: string, layers: number, renamed: { file: string; model: string }[]): string {
  const what = `${layers} layer${layers === 1 ? '' : 's'} with weights`;
  const shown = renamed.slice(0, 3).map((r) => `file '${r.file}' is model '${r.model}'`).join(', ');
  const more = renamed.length > 3 ? `, ... ${renamed.length} differ` : '';
  if (matchedBy === 'name') return `read${from} by layer name: ${what}`;
  if (matchedBy === 'path') return `read${from} by Keras 3 layer path (class and counter): ${what}`;
  return `read${from} by layer order (names differ: ${shown}${more}): ${what}`;
}

/**
 * Sets a model's weights from per-layer lists (layers without weights are skipped on both sides):
 * - by Keras 3 path when every entry has one (`.weights.h5`): `layers/conv2d_3` is the fourth
 *   Conv2D of the model; a weighted layer with no entry, or an entry with no layer, is an error;
 * - else by name, when each layer with weights has exactly one entry of its name and there are no
 *   others (VGG16's and ResNet50's Keras files, our exports; the order of the entries then does not matter);
 * - else by order, as Keras's HDF5 load_weights does (MobileNetV2's Keras files, converted from
 *   another framework, name their layers differently): the i-th entry with weights goes to the
 *   model's i-th layer with weights; the counts must match.
 * The count of arrays per layer and every shape must match. Everything is checked before anything
 * is written (shapes, sizes, and that every value is finite), so a failed load leaves the model unchanged.
 * Resolves to a report saying which way the weights were read.
 */
export async function loadLayerWeights(model: WeightedModel, entries: LayerWeights[], options: LoadLayerWeightsOptions = {}): Promise<WeightsLoadReport> {
  const from = options.source ? ` from ${options.source}` : '';
  const fileLayers = entries.filter((e) => e.weights.length > 0);
  const modelLayers = model.layers.filter((l) => l.params.length > 0);
  let pairs: [WeightedLayer, LayerWeights][] = [];
  let matchedBy: WeightsMatch;

  if (fileLayers.length > 0 && fileLayers.every((e) => e.path !== undefined)) {
    matchedBy = 'path';
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
    const byName = pairByName(modelLayers, fileLayers);
    if (byName) {
      matchedBy = 'name';
      pairs = byName;
    } else {
      matchedBy = 'order';
      if (fileLayers.length !== modelLayers.length) {
        const fileNames = new Set(fileLayers.map((e) => e.layer));
        // A file for a larger model (a base with its head, say) holds every layer of this one by name.
        const superset = fileLayers.length > modelLayers.length && modelLayers.every((l) => fileNames.has(l.name));
        throw new Error(`loading weights${from}: the file has ${fileLayers.length} layers with weights but model '${model.name}' has ${modelLayers.length} ` +
          `(Keras loads by order; layers without weights are skipped).\n  file:  ${listNames(fileLayers.map((e) => e.layer)) || '(none)'}\n  model: ${listNames(modelLayers.map((l) => l.name)) || '(none)'}` +
          (superset ? `\n  The file has every layer of the model by name, and ${fileLayers.length - modelLayers.length} more: it was saved from a larger model; load it into that model, then take this part's layers.` : ''));
      }
      modelLayers.forEach((l, i) => pairs.push([l, fileLayers[i]]));
    }
  }

  pairs.forEach(([l, e], k) => {
    const named = e.layer === l.name ? `layer '${l.name}'` : `layer '${l.name}' (named '${e.layer}' in the file)`;
    // By order a mismatch usually means a file for another model, alpha or size: say which pair it was.
    const how = matchedBy === 'order' ? `; the file was read by layer order (its names are not the model's), so its layer ${ordinal(k + 1)} with weights '${e.layer}' went to the model's ${ordinal(k + 1)} '${l.name}': is the file for another model or alpha?` : '';
    if (e.weights.length !== l.params.length) {
      throw new Error(`loading weights${from}: ${named} has ${l.params.length} weight arrays (${l.params.map((p) => shapeStr(p.shape)).join(', ')}) but the file gives ${e.weights.length} (${e.weights.map((w) => `${w.name} ${shapeStr(w.shape)}`).join(', ')})${how}`);
    }
    e.weights.forEach((w: NamedWeight, i) => {
      const p = l.params[i];
      if (!sameShape(w.shape, p.shape)) {
        throw new Error(`loading weights${from}: ${named}, weight ${i} (${p.name}): expected shape ${shapeStr(p.shape)}, found ${shapeStr(w.shape)} (${w.name})${how}`);
      }
      const n = w.shape.reduce((a, b) => a * b, 1);
      if (w.data.length !== n) throw new Error(`loading weights${from}: ${named}, weight ${i} (${w.name}) has ${w.data.length} values for shape ${shapeStr(w.shape)}`);
      requireFinite(w, `loading weights${from}: ${named}, weight ${i} (${w.name})`, 'nothing was loaded');
    });
  });
  for (const [l, e] of pairs) await l.setWeights(e.weights.map((w) => ({ shape: w.shape, data: w.data })));

  const renamed = pairs.filter(([l, e]) => l.name !== e.layer).map(([l, e]) => ({ file: e.layer, model: l.name }));
  const report: WeightsLoadReport = { matchedBy, layers: pairs.length, renamed, message: describeLoad(matchedBy, options.source ? ` ${options.source}` : ' the weights', pairs.length, renamed) };
  if (options.source !== undefined) report.source = options.source;
  lastLoad.set(model, report);
  options.log?.(report.message);
  return report;
}
