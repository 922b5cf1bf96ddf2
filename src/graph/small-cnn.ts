// A small VGG-style base (3x3 convolutions, BatchNormalization, max-pooling) that trains from
// random initialisation in a minute or two on a CPU: the offline demo pretrains it on four
// generated shape families and fine-tunes it, frozen, on circles vs squares. A stride-2 first
// convolution keeps the full-resolution work small; BatchNormalization (momentum 0.9, so the
// moving statistics follow a short run) lets Adam train it at a high rate.
import { loadWeightsInto } from '../io/weights.ts';
import { backboneInput, checkBackboneArgs, type BackboneConfigBase } from './applications.ts';
import { BatchNormalization, Conv2D, MaxPooling2D, ReLU } from './layers.ts';
import { Model } from './model.ts';
import type { LoadWeightsOptions } from '../io/weights.ts';

export interface SmallCNNConfig extends LoadWeightsOptions, BackboneConfigBase {
  /** null: random initialisation (the default; there are no ImageNet weights), or a weights file path or URL */
  weights?: null | string;
}

/** Its preprocessing (Keras's 'tf' mode, as MobileNetV2's): pixels 0..255 to -1..1, in place. */
export function smallCnnPreprocessInput(x: Float32Array): Float32Array {
  if (!(x instanceof Float32Array)) throw new Error(`smallCnnPreprocessInput expects a Float32Array of RGB pixels (values 0..255), got ${Object.prototype.toString.call(x)}`);
  for (let i = 0; i < x.length; i++) x[i] = x[i] / 127.5 - 1;
  return x;
}

/** Filters per block; the first block starts with the stride-2 convolution. */
const BLOCKS = [[24, 24, 24], [48, 48], [96]];

/** Layers of the base (model.layers, input included): what --freeze counts. */
export const SMALL_CNN_LAYERS = 1 + BLOCKS.length - 1 + 3 * BLOCKS.flat().length;

/**
 * The base without a top: input, then per block (conv, bn, relu) x n and a 2x2 max-pool between
 * blocks; the output is the last block's feature map (4x4x96 for 32x32 inputs).
 */
export async function SmallCNN(config: SmallCNNConfig = {}): Promise<Model> {
  const weights = checkBackboneArgs('SmallCNN', { ...config, weights: config.weights ?? null });
  if (weights === 'imagenet') {
    throw new Error("SmallCNN: there are no ImageNet weights for this base; pretrain it (webgpu-finetune demo does, offline) or pass weights: null");
  }
  let x = backboneInput('SmallCNN', config);
  const input = x;
  BLOCKS.forEach((filters, b) => {
    if (b > 0) x = new MaxPooling2D({ poolSize: 2, strides: 2, name: `block${b}_pool` }).apply(x);
    filters.forEach((f, c) => {
      const name = `block${b + 1}_conv${c + 1}`;
      x = new Conv2D({ filters: f, kernelSize: 3, strides: b === 0 && c === 0 ? 2 : 1, padding: 'same', useBias: false, name }).apply(x);
      x = new BatchNormalization({ momentum: 0.9, name: `${name}_bn` }).apply(x);
      x = new ReLU({ name: `${name}_relu` }).apply(x);
    });
  });
  const model = new Model({ inputs: input, outputs: x, name: 'small_cnn' });
  if (weights !== null) await loadWeightsInto(model, weights, config);
  return model;
}
