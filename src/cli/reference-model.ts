// The models `train` builds. The default base is the reference program's (DESIGN.md): VGG16
// without its top, the first `freeze` layers frozen, then Flatten, Dense 256 ReLU, Dropout 0.5,
// Dense 1 sigmoid; SGD and binary cross-entropy with accuracy. With more than two classes (or
// categorical asked for) the last layer is Dense K softmax with categorical cross-entropy instead.
//
// The other bases (MobileNetV2, ResNet50) follow Keras's transfer-learning guide: the base's
// preprocess_input instead of rescale, the base frozen (a frozen BatchNormalization layer
// normalises with its moving statistics, i.e. runs in inference mode), then
// GlobalAveragePooling2D, Dropout 0.2, Dense 1 sigmoid (or Dense K softmax).
import { Adam, AdamW, CosineDecay, Dense, Dropout, ExponentialDecay, Flatten, GlobalAveragePooling2D, Input, MobileNetV2, Model, mobilenetV2, ResNet50, resnet50, RMSprop, SGD, VGG16, type LearningRateSchedule, type Optimizer } from '../index.ts';
import type { OptimizerName } from '../graph/optimizers.ts';
import { SMALL_CNN_LAYERS, SmallCNN, smallCnnPreprocessInput } from '../graph/small-cnn.ts';
import { UsageError } from './args.ts';

export const ARCHITECTURE = 'vgg16-reference';
export const TOP = 'Flatten, Dense(256, relu), Dropout(0.5), Dense(1, sigmoid)';

export const BASE_NAMES = ['vgg16', 'mobilenet_v2', 'resnet50', 'small_cnn'] as const;
export type BaseName = (typeof BASE_NAMES)[number];

export interface BaseInfo {
  /** the builder's name, as in messages ('VGG16') */
  builder: string;
  /** settings.json's architecture field for runs on this base */
  architecture: string;
  /** layers of the base without its top, input layer included (what --freeze counts) */
  layers: number;
  /** --size default */
  size: [number, number];
  /** --freeze default */
  freeze: number | 'all';
  /** the generators' preprocessing_function (null: rescale 1/255, the reference program's) */
  preprocess: ((x: Float32Array) => Float32Array) | null;
}

export const BASES: Record<BaseName, BaseInfo> = {
  vgg16: { builder: 'VGG16', architecture: ARCHITECTURE, layers: 19, size: [240, 360], freeze: 15, preprocess: null },
  mobilenet_v2: { builder: 'MobileNetV2', architecture: 'mobilenet_v2-transfer', layers: 154, size: [224, 224], freeze: 'all', preprocess: mobilenetV2.preprocessInput },
  resnet50: { builder: 'ResNet50', architecture: 'resnet50-transfer', layers: 175, size: [224, 224], freeze: 'all', preprocess: resnet50.preprocessInput },
  // the offline demo's base (src/graph/small-cnn.ts): no ImageNet weights, pretrained by the demo
  small_cnn: { builder: 'SmallCNN', architecture: 'small_cnn-transfer', layers: SMALL_CNN_LAYERS, size: [32, 32], freeze: 'all', preprocess: smallCnnPreprocessInput },
};

/** A run's base: settings without one are the reference program's (VGG16). */
export function baseOf(s: { base?: BaseName }): BaseName {
  return s.base ?? 'vgg16';
}

/** The top's description for a class mode and class count. */
export function topFor(classMode: 'binary' | 'categorical' = 'binary', classes = 2, base: BaseName = 'vgg16'): string {
  const last = classMode === 'binary' ? 'Dense(1, sigmoid)' : `Dense(${classes}, softmax)`;
  return base === 'vgg16' ? `Flatten, Dense(256, relu), Dropout(0.5), ${last}` : `GlobalAveragePooling2D, Dropout(0.2), ${last}`;
}
/** Layers of VGG16 without its top, input layer included: what --freeze counts. */
export const VGG16_LAYERS = BASES.vgg16.layers;

/** The base without its top, random weights unless `weights` says otherwise. */
async function buildBase(base: BaseName, height: number, width: number, weights: null | string): Promise<Model> {
  const inputTensor = Input({ shape: [height, width, 3] });
  if (base === 'mobilenet_v2') return MobileNetV2({ weights, includeTop: false, inputTensor, alpha: 1.0 });
  if (base === 'resnet50') return ResNet50({ weights, includeTop: false, inputTensor });
  if (base === 'small_cnn') return SmallCNN({ weights, inputTensor });
  return VGG16({ weights, includeTop: false, inputTensor });
}

/** Names of the base's layers in model.layers order (input included), for --freeze-until. */
export async function baseLayerNames(base: BaseName): Promise<string[]> {
  return (await buildBase(base, 32, 32, null)).layers.map((l) => l.name);
}

/**
 * --freeze-until LAYER: the number of layers before LAYER (those are frozen); an unknown name is
 * a usage error listing some of the base's names.
 */
export async function freezeUntilIndex(base: BaseName, layer: string): Promise<number> {
  const names = await baseLayerNames(base);
  const i = names.indexOf(layer);
  if (i < 0) {
    const pick = names.length <= 8 ? names : [...names.slice(0, 3), '...', ...names.slice(-4)];
    throw new UsageError(`--freeze-until: ${BASES[base].builder} has no layer named '${layer}'; its ${names.length} layers are ${pick.join(', ')} (names as in Keras's model.layers)`);
  }
  return i;
}

export interface ModelSettings {
  /** absent: vgg16 (run folders from before there was a choice) */
  base?: BaseName;
  height: number;
  width: number;
  /** the first `freeze` layers of the base (input included) are frozen */
  freeze: number;
  lr: number;
  momentum: number;
  nesterov: boolean;
  seed: number;
  /** 'binary' (Dense 1 sigmoid; the default, as in the reference) or 'categorical' (Dense K softmax) */
  classMode?: 'binary' | 'categorical';
  /** number of classes (class folders) */
  numClasses?: number;
  /** absent in run folders from before the choice: sgd */
  optimizer?: OptimizerName;
  /** Keras's weight_decay (null: none; AdamW's default 0.004 when absent) */
  weightDecay?: number | null;
  lrSchedule?: 'none' | 'cosine' | 'exponential';
  /** cosine only: epochs of linear warmup from 0 to --lr */
  warmupEpochs?: number;
  clipnorm?: number | null;
  epochs?: number;
  /** 'acc' and the stateful metrics (auc, precision, ...) */
  metrics?: string[];
}

export { OPTIMIZER_NAMES, type OptimizerName } from '../graph/optimizers.ts';

/**
 * The run's learning rate: a number, or a schedule over all of the run's steps (cosine to 0,
 * with optional linear warmup from 0; exponential: ten times lower by the last step).
 */
export function learningRateFor(s: ModelSettings, stepsPerEpoch: number): number | LearningRateSchedule {
  const total = Math.max(1, (s.epochs ?? 1) * stepsPerEpoch);
  if (s.lrSchedule === 'cosine') {
    const warm = Math.min(total - 1, (s.warmupEpochs ?? 0) * stepsPerEpoch);
    if (warm > 0) return new CosineDecay({ initialLearningRate: 0, warmupTarget: s.lr, warmupSteps: warm, decaySteps: total - warm });
    return new CosineDecay({ initialLearningRate: s.lr, decaySteps: total });
  }
  if (s.lrSchedule === 'exponential') return new ExponentialDecay({ initialLearningRate: s.lr, decaySteps: total, decayRate: 0.1 });
  return s.lr;
}

/** The optimizer a run's settings ask for (Keras's defaults for what they leave out). */
export function optimizerFor(s: ModelSettings, stepsPerEpoch: number): Optimizer {
  const learningRate = learningRateFor(s, stepsPerEpoch);
  const common = { learningRate, clipnorm: s.clipnorm ?? null, ...(s.weightDecay !== undefined && s.weightDecay !== null ? { weightDecay: s.weightDecay } : {}) };
  switch (s.optimizer ?? 'sgd') {
    case 'adam': return new Adam(common);
    case 'adamw': return new AdamW(common);
    case 'rmsprop': return new RMSprop({ ...common, momentum: s.momentum });
    default: return new SGD({ ...common, momentum: s.momentum, nesterov: s.nesterov });
  }
}

/**
 * Builds and compiles the model. `weights` is the base's: null (random), 'imagenet' or a path.
 * The top is initialised from the global init seed (set it first for a reproducible run).
 */
export async function referenceModel(s: ModelSettings, weights: null | string, stepsPerEpoch = 1): Promise<Model> {
  const name = baseOf(s);
  const base = await buildBase(name, s.height, s.width, weights);
  for (const layer of base.layers.slice(0, s.freeze)) layer.trainable = false;
  const categorical = s.classMode === 'categorical';
  let x;
  if (name === 'vgg16') {
    x = new Flatten().apply(base.output);
    x = new Dense({ units: 256, activation: 'relu' }).apply(x);
    x = new Dropout({ rate: 0.5 }).apply(x);
  } else {
    x = new GlobalAveragePooling2D().apply(base.output);
    x = new Dropout({ rate: 0.2 }).apply(x);
  }
  const outputs = categorical
    ? new Dense({ units: s.numClasses ?? 2, activation: 'softmax' }).apply(x)
    : new Dense({ units: 1, activation: 'sigmoid' }).apply(x);
  const model = new Model({ inputs: base.input, outputs });
  model.seed = s.seed; // dropout masks are a function of (seed, step)
  model.compile({ optimizer: optimizerFor(s, stepsPerEpoch), loss: categorical ? 'categorical_crossentropy' : 'binary_crossentropy', metrics: s.metrics ?? ['acc'] });
  return model;
}
