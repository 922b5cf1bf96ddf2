// Weights I/O entry points for the graph (VGG16, Model): platform-free. Node-only work (files,
// HDF5, downloads) lives in weights-node.ts, imported dynamically and only under Node, so browser
// bundles never see node:fs.

import { imagenetFileOf, type ImagenetWeightsFile } from './imagenet-files.ts';
import { fetchWeights } from './weights-fetch.ts';
import { collectLayerWeights, loadLayerWeights, type WeightedModel, type WeightsLoadReport } from './model-weights.ts';
import {
  buildWeightsManifest,
  parseWeightsManifest,
  readWeightsData,
  type LayerWeights,
  type ProgressCallback,
  type WeightsManifest,
  type WeightsSourceOptions,
} from './weights-manifest.ts';

export function isNode(): boolean {
  return typeof process !== 'undefined' && typeof process.versions?.node === 'string';
}

// A variable specifier (and @vite-ignore) keeps bundlers from pulling the Node module into a browser build.
const NODE_MODULE = './weights-node.ts';

/** The Node weights module; an error naming `what` outside Node. */
export async function nodeWeightsIo(what: string): Promise<typeof import('./weights-node.ts')> {
  if (!isNode()) throw new Error(`${what} needs Node (files, HDF5); in a browser use exportWeights()/importWeights() or a URL to an exported manifest.json`);
  return import(/* @vite-ignore */ NODE_MODULE);
}

const isUrl = (s: string) => /^https?:\/\//i.test(s);

/**
 * Weights named by a string: 'imagenet' (Node: cache, else download + convert; `imagenet` says
 * which of Keras's files, VGG16's by default), an http(s) URL to
 * an exported manifest.json or its folder (anywhere), or a path (Node): a Keras .h5 file, a
 * manifest.json, or a folder holding one. In a browser any other string is taken as a URL.
 */
export async function readWeights(spec: string, options: WeightsSourceOptions = {}, imagenet?: ImagenetWeightsFile): Promise<LayerWeights[]> {
  if (isUrl(spec) || (!isNode() && spec !== 'imagenet')) {
    let onProgress: ProgressCallback | undefined;
    if (options.onProgress !== false) onProgress = options.onProgress ?? (isNode() ? (await nodeWeightsIo('a progress bar')).textProgress() : undefined);
    return fetchWeights(spec, { onProgress });
  }
  if (!isNode()) {
    throw new Error("weights: 'imagenet' is available in Node only (it reads Keras's HDF5 file). In a browser, convert the weights once in Node " +
      '(`webgpu-finetune convert-weights` or convertWeights()), serve manifest.json and weights.bin, and pass the URL of manifest.json.');
  }
  return (await nodeWeightsIo('reading weights files')).readWeightsSpec(spec, options, imagenet);
}

export type { WeightsLoadReport, WeightsMatch } from './model-weights.ts';
export { weightsLoadReport } from './model-weights.ts';

/** Where weights come from (downloads, cache) and where to say how they were read. */
export interface LoadWeightsOptions extends WeightsSourceOptions {
  /** Called with one line saying which way the file was read (by layer name, by layer order, by Keras 3 path). */
  log?: (line: string) => void;
}

/**
 * Reads weights named by `spec` (see readWeights) and sets them on the model by Keras's rules:
 * by layer name where every name matches, else by layer order (see loadLayerWeights). 'imagenet'
 * means the file of `imagenet`, else the one of the builder that made the model (VGG16, ResNet50,
 * MobileNetV2); for any other model it is an error. Resolves to how the file was read.
 */
export async function loadWeightsInto(model: WeightedModel, spec: string, options: LoadWeightsOptions = {}, imagenet?: ImagenetWeightsFile): Promise<WeightsLoadReport> {
  if (spec === 'imagenet' && !imagenet && isNode()) {
    imagenet = imagenetFileOf(model);
    if (!imagenet) {
      throw new Error(`loadWeights('imagenet'): model '${model.name}' was not made by VGG16(), ResNet50() or MobileNetV2(), so there is no ImageNet file for it. ` +
        "Build the base with the builder (e.g. MobileNetV2({ weights: 'imagenet', inputShape })) and use it in your model, or pass the path of a weights file for this model.");
    }
  }
  return loadLayerWeights(model, await readWeights(spec, options, imagenet), {
    source: spec === 'imagenet' ? `the ImageNet weights ('imagenet'${imagenet ? `, ${imagenet.fileName}` : ''})` : spec,
    log: options.log,
  });
}

/** The model's weights as a manifest object and its data buffer (to download, store in IndexedDB, upload...). */
export async function exportWeights(model: WeightedModel): Promise<{ manifest: WeightsManifest; data: ArrayBuffer }> {
  return buildWeightsManifest(await collectLayerWeights(model), { model: model.name });
}

/**
 * Sets a model's weights from a (parsed, untrusted) manifest object and its data buffer.
 * `source` names where they came from in errors (e.g. a checkpoint file).
 */
export async function importWeights(model: WeightedModel, manifest: unknown, data: ArrayBuffer | Uint8Array, options: { source?: string; log?: (line: string) => void } = {}): Promise<WeightsLoadReport> {
  const parsed = parseWeightsManifest(manifest);
  const source = options.source ?? `manifest of '${parsed.model}'`;
  return loadLayerWeights(model, await readWeightsData(parsed, data, options.source ? { where: options.source } : {}), { source, log: options.log });
}

/** Node: saves manifest + .bin (a folder, or a path ending in .json), or Keras HDF5 for a .h5 path. */
export async function saveWeightsTo(model: WeightedModel, path: string): Promise<void> {
  await (await nodeWeightsIo('saveWeights(path)')).saveModelWeights(model, path);
}

/** Node: saves in Keras's HDF5 layout (layer_names / weight_names), for Keras's model.load_weights(). */
export async function saveWeightsH5To(model: WeightedModel, path: string): Promise<void> {
  await (await nodeWeightsIo('saveWeightsH5(path)')).saveModelWeightsH5(model, path);
}

/** Node: converts a Keras HDF5 weights file into manifest.json + weights.bin in `outDir`. */
export async function convertWeights(h5Path: string, outDir: string, options: { model?: string } = {}): Promise<WeightsManifest> {
  return (await nodeWeightsIo('convertWeights')).convertWeights(h5Path, outDir, options);
}
