// The reference program's model (DESIGN.md): VGG16 without its top, the first `freeze` layers
// frozen, then Flatten, Dense 256 ReLU, Dropout 0.5, Dense 1 sigmoid; SGD and binary
// cross-entropy with accuracy. With more than two classes (or categorical asked for) the last
// layer is Dense K softmax with categorical cross-entropy instead.
import { Dense, Dropout, Flatten, Input, Model, SGD, VGG16 } from '../index.ts';

export const ARCHITECTURE = 'vgg16-reference';
export const TOP = 'Flatten, Dense(256, relu), Dropout(0.5), Dense(1, sigmoid)';

/** The top's description for a class mode and class count. */
export function topFor(classMode: 'binary' | 'categorical' = 'binary', classes = 2): string {
  return classMode === 'binary' ? TOP : `Flatten, Dense(256, relu), Dropout(0.5), Dense(${classes}, softmax)`;
}
/** Layers of VGG16 without its top, input layer included: what --freeze counts. */
export const VGG16_LAYERS = 19;

export interface ModelSettings {
  height: number;
  width: number;
  freeze: number;
  lr: number;
  momentum: number;
  nesterov: boolean;
  seed: number;
  /** 'binary' (Dense 1 sigmoid; the default, as in the reference) or 'categorical' (Dense K softmax) */
  classMode?: 'binary' | 'categorical';
  /** number of classes (class folders) */
  numClasses?: number;
}

/**
 * Builds and compiles the model. `weights` is VGG16's: null (random), 'imagenet' or a path.
 * The top is initialised from the global init seed (set it first for a reproducible run).
 */
export async function referenceModel(s: ModelSettings, weights: null | string): Promise<Model> {
  const base = await VGG16({ weights, includeTop: false, inputTensor: Input({ shape: [s.height, s.width, 3] }) });
  for (const layer of base.layers.slice(0, s.freeze)) layer.trainable = false;
  let x = new Flatten().apply(base.output);
  x = new Dense({ units: 256, activation: 'relu' }).apply(x);
  x = new Dropout({ rate: 0.5 }).apply(x);
  const categorical = s.classMode === 'categorical';
  const outputs = categorical
    ? new Dense({ units: s.numClasses ?? 2, activation: 'softmax' }).apply(x)
    : new Dense({ units: 1, activation: 'sigmoid' }).apply(x);
  const model = new Model({ inputs: base.input, outputs });
  model.seed = s.seed; // dropout masks are a function of (seed, step)
  model.compile({ optimizer: new SGD({ learningRate: s.lr, momentum: s.momentum, nesterov: s.nesterov }), loss: categorical ? 'categorical_crossentropy' : 'binary_crossentropy', metrics: ['acc'] });
  return model;
}
