// The reference program's model (DESIGN.md): VGG16 without its top, the first `freeze` layers
// frozen, then Flatten, Dense 256 ReLU, Dropout 0.5, Dense 1 sigmoid; SGD and binary
// cross-entropy with accuracy.
import { Dense, Dropout, Flatten, Input, Model, SGD, VGG16 } from '../index.ts';

export const ARCHITECTURE = 'vgg16-reference';
export const TOP = 'Flatten, Dense(256, relu), Dropout(0.5), Dense(1, sigmoid)';
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
  const outputs = new Dense({ units: 1, activation: 'sigmoid' }).apply(x);
  const model = new Model({ inputs: base.input, outputs });
  model.seed = s.seed; // dropout masks are a function of (seed, step)
  model.compile({ optimizer: new SGD({ learningRate: s.lr, momentum: s.momentum, nesterov: s.nesterov }), loss: 'binary_crossentropy', metrics: ['acc'] });
  return model;
}
