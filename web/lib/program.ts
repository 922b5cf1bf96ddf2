/**
 * The training program the page runs: by default the reference Keras program (VGG16 base, frozen
 * prefix, Flatten -> Dense(256, relu) -> Dropout(0.5) -> Dense(1, sigmoid), SGD, binary
 * cross-entropy); MobileNetV2, ResNet50 and SmallCNN with Keras's transfer-learning top
 * (GlobalAveragePooling2D -> Dropout(0.2) -> Dense(1, sigmoid)); the optimizer and schedule chosen;
 * and the weights that go in and come out, SmallCNN's pretrained here on other shapes (offline). Platform-free: the browser test runs this same module in Node to check that
 * both runtimes give the same numbers.
 *
 * (src/cli/reference-model.ts builds the same models but imports src/index.ts, which pulls Node
 * modules, so the page cannot share it; the two are kept alike by hand.)
 */
import { Dense, Dropout, Flatten, GlobalAveragePooling2D, Input, setInferenceMode, setInitSeed } from '../../src/graph/layers.ts';
import { MobileNetV2 } from '../../src/graph/mobilenet-v2.ts';
import { Model } from '../../src/graph/model.ts';
import { Adam, AdamW, RMSprop, SGD, type Optimizer } from '../../src/graph/optimizers.ts';
import { ResNet50 } from '../../src/graph/resnet50.ts';
import { pretrainShapes, SHAPE_PRETRAIN_DEFAULTS, shapePretrainKey, type ShapePretrainFitOptions, type ShapePretrainSettings } from '../../src/graph/shape-pretraining.ts';
import { SmallCNN } from '../../src/graph/small-cnn.ts';
import type { History } from '../../src/graph/model.ts';
import { CosineDecay, ExponentialDecay, type LearningRateSchedule } from '../../src/graph/schedules.ts';
import { VGG16 } from '../../src/graph/vgg16.ts';
import { mobilenetV2NoTop, RESNET50_NOTOP, VGG16_NOTOP } from '../../src/io/imagenet-files.ts';
import { collectLayerWeights, loadLayerWeights } from '../../src/io/model-weights.ts';
import { fetchWeights } from '../../src/io/weights-fetch.ts';
import { parseWeightsManifest, readWeightsData, type LayerWeights, type ProgressCallback } from '../../src/io/weights-manifest.ts';
import { processImage } from '../../src/io/pipeline.ts';
import { readPngBrowser } from '../../src/io/png-browser.ts';
import { preprocessFor, type NamedBlob } from './data.ts';
import { baseOf, BASES, EXPONENTIAL_DECAY_PER_EPOCH, type BaseName, type TrainSettings } from './settings.ts';

/** Weights read from somewhere, not yet placed in a model. */
export interface WeightsFile {
  layers: LayerWeights[];
  /** for messages: the URL or file name */
  source: string;
}

/** Keras's own ImageNet file for VGG16 without its top (58.9 MB, legacy HDF5 layout). */
export const KERAS_IMAGENET_URL = VGG16_NOTOP.url;

/** Keras's ImageNet file (no top) for each base that has one: what the weights hint links to. */
export const IMAGENET_FILES: Partial<Record<BaseName, { fileName: string; url: string; size: string }>> = {
  vgg16: { fileName: VGG16_NOTOP.fileName, url: VGG16_NOTOP.url, size: '59 MB' },
  // Keras has MobileNetV2 files per input size; 224 is its default (other sizes load it too)
  mobilenet_v2: { fileName: mobilenetV2NoTop(1.0, 224).fileName, url: mobilenetV2NoTop(1.0, 224).url, size: '9 MB' },
  resnet50: { fileName: RESNET50_NOTOP.fileName, url: RESNET50_NOTOP.url, size: '95 MB' },
};


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
  /** the base (its layers are the model's first BASES[base].layers) */
  base: Model;
  /** where the weights went: the base (ImageNet-style files), the whole model (a fine-tuned export), or nowhere (random) */
  weightsInto: 'base' | 'model' | null;
}

const weighted = (m: Model) => m.layers.filter((l) => l.params.length > 0).length;

/** The base without its top, random weights (files are loaded afterwards, by name or by order). */
export async function buildBase(name: BaseName, height: number, width: number): Promise<Model> {
  const inputTensor = Input({ shape: [height, width, 3] });
  if (name === 'mobilenet_v2') return MobileNetV2({ weights: null, includeTop: false, inputTensor, alpha: 1.0 });
  if (name === 'resnet50') return ResNet50({ weights: null, includeTop: false, inputTensor });
  if (name === 'small_cnn') return SmallCNN({ weights: null, inputTensor });
  return VGG16({ weights: null, includeTop: false, inputTensor });
}

/**
 * The learning rate over the run: a number, or a schedule of the optimizer's step. Cosine decays
 * to 0 over all the run's steps; exponential multiplies by 0.9 each epoch (smoothly, not by
 * staircase). Schedules need the number of steps per epoch.
 */
export function learningRateFor(s: TrainSettings, stepsPerEpoch?: number): number | LearningRateSchedule {
  const schedule = s.schedule ?? 'none';
  if (schedule === 'none') return s.learningRate;
  if (!stepsPerEpoch || stepsPerEpoch < 1) throw new Error(`the ${schedule} learning-rate schedule needs the number of steps per epoch (got ${stepsPerEpoch}); pass it to buildModel`);
  if (schedule === 'cosine') return new CosineDecay({ initialLearningRate: s.learningRate, decaySteps: s.epochs * stepsPerEpoch });
  return new ExponentialDecay({ initialLearningRate: s.learningRate, decaySteps: stepsPerEpoch, decayRate: EXPONENTIAL_DECAY_PER_EPOCH });
}

/** The optimizer the settings name, with Keras's defaults besides the learning rate (and momentum for SGD and RMSprop). */
export function optimizerFor(s: TrainSettings, stepsPerEpoch?: number): Optimizer {
  const learningRate = learningRateFor(s, stepsPerEpoch);
  switch (s.optimizer ?? 'sgd') {
    case 'adam': return new Adam({ learningRate });
    case 'adamw': return new AdamW({ learningRate });
    case 'rmsprop': return new RMSprop({ learningRate, momentum: s.momentum });
    default: return new SGD({ learningRate, momentum: s.momentum });
  }
}

/**
 * Builds and compiles the model. Initial weights come from `setInitSeed(seed)` (Keras's
 * glorot-uniform), then from `weights` when given: a base file (VGG16: 13 layers with weights)
 * goes into the base, a file of the whole fine-tuned model (base + top) into the model.
 * `stepsPerEpoch` is needed for a learning-rate schedule.
 */
export async function buildModel(s: TrainSettings, weights: WeightsFile | null = null, options: { stepsPerEpoch?: number } = {}): Promise<Built> {
  setInitSeed(s.seed);
  const name = baseOf(s);
  const info = BASES[name];
  const base = await buildBase(name, s.height, s.width);
  let weightsInto: Built['weightsInto'] = null;
  const fileLayers = weights ? weights.layers.filter((l) => l.weights.length > 0).length : 0;
  if (weights && fileLayers === weighted(base)) {
    await loadLayerWeights(base, weights.layers, { source: weights.source });
    weightsInto = 'base';
  }
  for (const layer of base.layers.slice(0, s.frozen)) layer.trainable = false;
  let x;
  if (name === 'vgg16') {
    x = new Flatten({ name: 'flatten' }).apply(base.output);
    x = new Dense({ units: 256, activation: 'relu', name: 'dense' }).apply(x);
    x = new Dropout({ rate: 0.5, name: 'dropout' }).apply(x);
  } else {
    x = new GlobalAveragePooling2D({ name: 'global_average_pooling2d' }).apply(base.output);
    x = new Dropout({ rate: 0.2, name: 'dropout' }).apply(x);
  }
  const outputs = new Dense({ units: 1, activation: 'sigmoid', name: name === 'vgg16' ? 'dense_1' : 'dense' }).apply(x);
  const model = new Model({ inputs: base.input, outputs, name: name === 'vgg16' ? 'vgg16_finetune' : `${name}_transfer` });
  if (weights && !weightsInto) {
    if (fileLayers !== weighted(model)) {
      const example = IMAGENET_FILES[name] ? `e.g. Keras's ImageNet notop file ${IMAGENET_FILES[name].fileName}` : 'e.g. one pretrained here on other shapes';
      throw new Error(`${weights.source} has ${fileLayers} layers with weights; expected ${weighted(base)} (a ${info.builder} base, ${example}) or ${weighted(model)} (this page's fine-tuned ${info.builder} model). Is the base choice right?`);
    }
    await loadLayerWeights(model, weights.layers, { source: weights.source });
    weightsInto = 'model';
  }
  model.compile({ optimizer: optimizerFor(s, options.stepsPerEpoch), loss: 'binary_crossentropy', metrics: ['acc'] });
  model.seed = s.seed;
  return { model, base, weightsInto };
}

// ---------------------------------------------------------------- SmallCNN pretrained here

/** What the page lets a person set about the pretraining (the rest follows the fine-tuning's size and seed). */
export type PretrainSize = Pick<ShapePretrainSettings, 'images' | 'valImages' | 'epochs' | 'batch' | 'lr'>;

/** The pretraining for a fine-tuning run: its input size and seed, the CLI demo's defaults for the rest. */
export function shapePretrainSettings(s: Pick<TrainSettings, 'height' | 'width' | 'seed'>, size: Partial<PretrainSize> = {}): ShapePretrainSettings {
  return { height: s.height, width: s.width, seed: s.seed, ...SHAPE_PRETRAIN_DEFAULTS, ...size };
}

/** A SmallCNN pretrained on the four other shape families, kept as host arrays (its GPU model is disposed). */
export interface PretrainedBase {
  /** shapePretrainKey of its settings: what the cache keys on */
  key: string;
  settings: ShapePretrainSettings;
  /** the base's weights by layer name: buildModel places them into the fine-tuning model's base */
  weights: WeightsFile;
  history: History;
  seconds: number;
  /** the last epoch's val_acc on the held-out images of the four families (chance 0.25) */
  valAcc: number;
}

// In memory for the page's lifetime. The weights depend only on what the key names (the held-out
// images only change the val_acc reported), and the host arrays are small (about 90k values).
const pretrainedBases = new Map<string, PretrainedBase>();

/** The base pretrained earlier (in this page or process) with these settings, else null. */
export function cachedPretrainedBase(p: ShapePretrainSettings): PretrainedBase | null {
  return pretrainedBases.get(shapePretrainKey(p)) ?? null;
}

/**
 * The pretrained base for these settings: the cached one, else pretrainShapes now (progress through
 * `o`; an abort through o.signal rejects and caches nothing). Its weights are read back to the host
 * by layer name and the pretraining's model is disposed.
 */
export async function pretrainedBase(p: ShapePretrainSettings, o: ShapePretrainFitOptions = {}): Promise<{ base: PretrainedBase; cached: boolean }> {
  const hit = cachedPretrainedBase(p);
  if (hit) return { base: hit, cached: true };
  const run = await pretrainShapes(p, o);
  let layers: LayerWeights[];
  try {
    layers = await collectLayerWeights(run.base);
  } finally {
    await run.base.dispose();
  }
  const key = shapePretrainKey(p);
  const base: PretrainedBase = {
    key, settings: { ...p }, history: run.history, seconds: run.seconds,
    valAcc: run.history.history.val_acc?.at(-1) ?? Number.NaN,
    weights: { layers, source: `the SmallCNN pretrained here (${key})` },
  };
  pretrainedBases.set(key, base);
  return { base, cached: false };
}

/**
 * The second phase of Keras's transfer-learning recipe (as `train --fine-tune-at`): the layers
 * from `fineTune.at` up to the frozen prefix's end become trainable, the base's BatchNormalization
 * layers (the model's first `baseLayers`) stay in inference mode (the guide calls the base with
 * training=False), and the model is compiled again with a new optimizer at the fine-tuning rate,
 * no schedule (Keras's guide recompiles, so the optimizer starts from zero state).
 */
export function enterFineTuning(model: Model, s: TrainSettings, baseLayers = BASES[baseOf(s)].layers): void {
  const ft = s.fineTune;
  if (!ft) throw new Error('enterFineTuning: the settings have no fineTune ({ at, epochs, lr })');
  for (const l of model.layers.slice(ft.at, s.frozen)) l.trainable = true;
  setInferenceMode(model.layers.slice(0, baseLayers), true);
  model.compile({ optimizer: optimizerFor({ ...s, learningRate: ft.lr, schedule: 'none' }), loss: 'binary_crossentropy', metrics: ['acc'] });
}

/** The trained weights in Keras's HDF5 layout (every layer listed, as Keras writes it). */
export async function modelWeightsH5(model: Model): Promise<Uint8Array> {
  const { writeKerasH5Bytes } = await import('../../src/io/keras-h5-browser.ts');
  const byLayer = new Map((await collectLayerWeights(model)).map((l) => [l.layer, l.weights]));
  return writeKerasH5Bytes(model.layers.map((l) => ({ layer: l.name, weights: byLayer.get(l.name) ?? [] })));
}

/**
 * An image file as the model's input, as in training: decoded, resized (nearest, as Keras), then
 * scaled by 1/255 (VGG16) or through the base's preprocess_input (MobileNetV2, ResNet50).
 */
export async function imageInput(file: Blob, s: Pick<TrainSettings, 'height' | 'width' | 'base'>): Promise<Float32Array> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const preprocess = preprocessFor(baseOf(s));
  const x = await processImage(bytes, {
    height: s.height,
    width: s.width,
    interpolation: 'nearest',
    augment: { fillMode: 'nearest', cval: 0, interpolationOrder: 1, rescale: preprocess ? null : 1 / 255 },
  }, null, readPngBrowser);
  return preprocess ? preprocess(x) : x;
}
