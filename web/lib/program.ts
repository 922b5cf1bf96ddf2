/**
 * The training program the page runs: the reference Keras program (VGG16 base, frozen prefix,
 * Flatten -> Dense(256, relu) -> Dropout(0.5) -> Dense(1, sigmoid), SGD, binary cross-entropy),
 * and the weights that go in and come out. Platform-free: the browser test runs this same module
 * in Node to check that both runtimes give the same numbers.
 */
import { Dense, Dropout, Flatten, Input, setInitSeed } from '../../src/graph/layers.ts';
import { Model } from '../../src/graph/model.ts';
import { SGD } from '../../src/graph/optimizers.ts';
import { VGG16 } from '../../src/graph/vgg16.ts';
import { collectLayerWeights, loadLayerWeights } from '../../src/io/model-weights.ts';
import { fetchWeights } from '../../src/io/weights-fetch.ts';
import { parseWeightsManifest, readWeightsData, type LayerWeights, type ProgressCallback } from '../../src/io/weights-manifest.ts';
import { processImage } from '../../src/io/pipeline.ts';
import { readPngBrowser } from '../../src/io/png-browser.ts';
import type { NamedBlob } from './data.ts';
import type { TrainSettings } from './settings.ts';

/** Weights read from somewhere, not yet placed in a model. */
export interface WeightsFile {
  layers: LayerWeights[];
  /** for messages: the URL or file name */
  source: string;
}

/** Keras's own ImageNet file for VGG16 without its top (58.9 MB, legacy HDF5 layout). */
export const KERAS_IMAGENET_URL = 'https://storage.googleapis.com/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5';

/** A whole response body, reporting progress (total from content-length when the server sends it). */
async function fetchBytes(url: string, onProgress?: ProgressCallback): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`could not fetch ${url}: ${(e as Error).message} (a server on another origin must allow cross-origin downloads (CORS); otherwise download the file and pick it from disk)`);
  }
  if (!res.ok || !res.body) throw new Error(`could not fetch ${url}: HTTP ${res.status} ${res.statusText}`);
  const total = Number(res.headers.get('content-length')) || null;
  const label = url.split('/').pop() ?? url;
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress?.({ label, loaded, total });
  }
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Weights from a URL, with download progress: a Keras .h5 (converted here), or exported weights
 * (manifest.json, or its folder, with its .bin beside it).
 */
export async function weightsFromUrl(url: string, onProgress?: ProgressCallback): Promise<WeightsFile> {
  if (/\.(h5|hdf5)([?#].*)?$/i.test(url)) {
    const { readKerasH5Bytes } = await import('../../src/io/keras-h5-browser.ts');
    const read = await readKerasH5Bytes(await fetchBytes(url, onProgress), url);
    return { layers: read.layers, source: url };
  }
  return { layers: await fetchWeights(url, { onProgress }), source: url };
}

/**
 * Weights from picked files: a Keras .h5 (converted here with h5wasm's WebAssembly build), or an
 * exported manifest.json with its .bin.
 */
export async function weightsFromFiles(files: NamedBlob[]): Promise<WeightsFile> {
  const h5 = files.find((f) => /\.(h5|hdf5|keras)$/i.test(f.name));
  if (h5) {
    const { readKerasH5Bytes } = await import('../../src/io/keras-h5-browser.ts');
    const read = await readKerasH5Bytes(new Uint8Array(await h5.arrayBuffer()), h5.name);
    return { layers: read.layers, source: h5.name };
  }
  const json = files.find((f) => /\.json$/i.test(f.name));
  if (!json) throw new Error(`pick a Keras .h5 file, or an exported manifest.json together with its .bin (got ${files.map((f) => f.name).join(', ') || 'nothing'})`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(await json.text());
  } catch (e) {
    throw new Error(`${json.name}: not a weights manifest (${(e as Error).message})`);
  }
  const manifest = parseWeightsManifest(parsed, json.name);
  const bins = files.filter((f) => f !== json);
  const bin = bins.find((f) => f.name === manifest.dataFile) ?? (bins.length === 1 ? bins[0] : undefined);
  if (!bin) throw new Error(`${json.name} keeps its numbers in ${manifest.dataFile}: pick that file together with the manifest`);
  return { layers: await readWeightsData(manifest, await bin.arrayBuffer(), { where: bin.name }), source: json.name };
}

export interface Built {
  model: Model;
  /** the VGG16 base (its layers are the model's first 19) */
  base: Model;
  /** where the weights went: the base (ImageNet-style files), the whole model (a fine-tuned export), or nowhere (random) */
  weightsInto: 'base' | 'model' | null;
}

const weighted = (m: Model) => m.layers.filter((l) => l.params.length > 0).length;

/**
 * Builds and compiles the reference model. Initial weights come from `setInitSeed(seed)` (Keras's
 * glorot-uniform), then from `weights` when given: a VGG16 base file (13 conv layers) goes into
 * the base, a file of the whole fine-tuned model (15 layers) into the model.
 */
export async function buildModel(s: TrainSettings, weights: WeightsFile | null = null): Promise<Built> {
  setInitSeed(s.seed);
  const base = await VGG16({ weights: null, includeTop: false, inputTensor: Input({ shape: [s.height, s.width, 3] }) });
  let weightsInto: Built['weightsInto'] = null;
  const fileLayers = weights ? weights.layers.filter((l) => l.weights.length > 0).length : 0;
  if (weights && fileLayers === weighted(base)) {
    await loadLayerWeights(base, weights.layers, { source: weights.source });
    weightsInto = 'base';
  }
  for (const layer of base.layers.slice(0, s.frozen)) layer.trainable = false;
  let x = new Flatten({ name: 'flatten' }).apply(base.output);
  x = new Dense({ units: 256, activation: 'relu', name: 'dense' }).apply(x);
  x = new Dropout({ rate: 0.5, name: 'dropout' }).apply(x);
  const outputs = new Dense({ units: 1, activation: 'sigmoid', name: 'dense_1' }).apply(x);
  const model = new Model({ inputs: base.input, outputs, name: 'vgg16_finetune' });
  if (weights && !weightsInto) {
    if (fileLayers !== weighted(model)) {
      throw new Error(`${weights.source} has ${fileLayers} layers with weights; expected ${weighted(base)} (a VGG16 base, e.g. Keras's ImageNet notop file) or ${weighted(model)} (this page's fine-tuned model)`);
    }
    await loadLayerWeights(model, weights.layers, { source: weights.source });
    weightsInto = 'model';
  }
  model.compile({ optimizer: new SGD({ learningRate: s.learningRate, momentum: s.momentum }), loss: 'binary_crossentropy', metrics: ['acc'] });
  model.seed = s.seed;
  return { model, base, weightsInto };
}

/** The trained weights in Keras's HDF5 layout (every layer listed, as Keras writes it). */
export async function modelWeightsH5(model: Model): Promise<Uint8Array> {
  const { writeKerasH5Bytes } = await import('../../src/io/keras-h5-browser.ts');
  const byLayer = new Map((await collectLayerWeights(model)).map((l) => [l.layer, l.weights]));
  return writeKerasH5Bytes(model.layers.map((l) => ({ layer: l.name, weights: byLayer.get(l.name) ?? [] })));
}

/** An image file as the model's input: decoded, resized (nearest, as Keras) and scaled by 1/255, as in training. */
export async function imageInput(file: Blob, s: Pick<TrainSettings, 'height' | 'width'>): Promise<Float32Array> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  return processImage(bytes, {
    height: s.height,
    width: s.width,
    interpolation: 'nearest',
    augment: { fillMode: 'nearest', cval: 0, interpolationOrder: 1, rescale: 1 / 255 },
  }, null, readPngBrowser);
}
