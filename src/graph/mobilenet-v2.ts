import { MOBILENET_V2_ALPHAS, mobilenetV2NoTop, mobilenetV2Rows, setImagenetFile } from '../io/imagenet-files.ts';
import { loadWeightsInto, type LoadWeightsOptions } from '../io/weights.ts';
import { backboneInput, checkBackboneArgs, type BackboneConfigBase } from './applications.ts';
import { Add, BatchNormalization, Conv2D, DepthwiseConv2D, GlobalAveragePooling2D, GlobalMaxPooling2D, ReLU, ZeroPadding2D } from './layers.ts';
import { Model } from './model.ts';
import type { SymbolicTensor } from './symbolic.ts';

export interface MobileNetV2Config extends LoadWeightsOptions, BackboneConfigBase {
  /**
   * null: Keras's random initialisation. 'imagenet' (Node): Keras's ImageNet weights for this alpha
   * and size (see below), from the cache or downloaded once. A path (Node): a Keras .h5 file, or an
   * exported manifest.json or its folder. A URL (browser and Node): an exported manifest.json or its folder.
   */
  weights?: null | 'imagenet' | string;
  /** Width multiplier (Keras's alpha): any value > 0; ImageNet weights exist for 0.35, 0.5, 0.75, 1.0, 1.3, 1.4. */
  alpha?: number;
}

/** keras.applications.mobilenet_v2._make_divisible. */
export function makeDivisible(v: number, divisor = 8, minValue?: number): number {
  const min = minValue ?? divisor;
  let newV = Math.max(min, Math.floor(Math.trunc(v + divisor / 2) / divisor) * divisor);
  // Make sure that rounding down does not go down by more than 10%.
  if (newV < 0.9 * v) newV += divisor;
  return newV;
}

/** imagenet_utils.correct_pad(x, k): ((k//2 - (1 - h%2), k//2), (k//2 - (1 - w%2), k//2)). */
export function correctPad(shape: readonly number[], kernelSize: number): [[number, number], [number, number]] {
  const c = Math.floor(kernelSize / 2);
  const [h, w] = shape;
  return [[c - (1 - (h % 2)), c], [c - (1 - (w % 2)), c]];
}

/** The 17 inverted residual blocks: [filters, stride, expansion], block_id = index. */
const BLOCKS: [number, 1 | 2, number][] = [
  [16, 1, 1],
  [24, 2, 6], [24, 1, 6],
  [32, 2, 6], [32, 1, 6], [32, 1, 6],
  [64, 2, 6], [64, 1, 6], [64, 1, 6], [64, 1, 6],
  [96, 1, 6], [96, 1, 6], [96, 1, 6],
  [160, 2, 6], [160, 1, 6], [160, 1, 6],
  [320, 1, 6],
];

const bn = (name: string) => new BatchNormalization({ axis: -1, epsilon: 1e-3, momentum: 0.999, name });

/** mobilenet_v2._inverted_res_block, layer for layer. */
function invertedResBlock(inputs: SymbolicTensor, expansion: number, stride: 1 | 2, alpha: number, filters: number, blockId: number): SymbolicTensor {
  const inChannels = inputs.shape[2];
  const pointwiseFilters = makeDivisible(Math.trunc(filters * alpha), 8);
  let x = inputs;
  let prefix = `block_${blockId}_`;
  if (blockId) {
    x = new Conv2D({ filters: expansion * inChannels, kernelSize: 1, padding: 'same', useBias: false, name: `${prefix}expand` }).apply(x);
    x = bn(`${prefix}expand_BN`).apply(x);
    x = new ReLU({ maxValue: 6, name: `${prefix}expand_relu` }).apply(x);
  } else {
    prefix = 'expanded_conv_';
  }
  if (stride === 2) x = new ZeroPadding2D({ padding: correctPad(x.shape, 3), name: `${prefix}pad` }).apply(x);
  x = new DepthwiseConv2D({ kernelSize: 3, strides: stride, useBias: false, padding: stride === 1 ? 'same' : 'valid', name: `${prefix}depthwise` }).apply(x);
  x = bn(`${prefix}depthwise_BN`).apply(x);
  x = new ReLU({ maxValue: 6, name: `${prefix}depthwise_relu` }).apply(x);
  x = new Conv2D({ filters: pointwiseFilters, kernelSize: 1, padding: 'same', useBias: false, name: `${prefix}project` }).apply(x);
  x = bn(`${prefix}project_BN`).apply(x);
  if (inChannels === pointwiseFilters && stride === 1) return new Add({ name: `${prefix}add` }).apply([inputs, x]);
  return x;
}

/**
 * keras.applications.MobileNetV2 without its top: at alpha 1.0, 154 layers with Keras's names and
 * order (input_1 ... out_relu), plus Keras's unnamed GlobalAveragePooling2D / GlobalMaxPooling2D
 * for pooling 'avg' / 'max'. BatchNormalization epsilon 1e-3, momentum 0.999; ReLU(6).
 *
 * 'imagenet' loads `mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{rows}_no_top.h5`,
 * where rows is the input size if the input is square and 96, 128, 160, 192 or 224, else 224 (as
 * Keras, with a warning). Keras checks no hash for these files; it loads them by the order of the
 * layers with weights (their layer names are not the model's).
 */
export async function MobileNetV2(config: MobileNetV2Config = {}): Promise<Model> {
  const weights = checkBackboneArgs('MobileNetV2', config);
  const alpha = config.alpha ?? 1.0;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) throw new Error(`MobileNetV2: alpha must be a number > 0, got ${JSON.stringify(config.alpha)}`);
  if (weights === 'imagenet' && !(MOBILENET_V2_ALPHAS as readonly number[]).includes(alpha)) {
    throw new Error(`MobileNetV2: with weights 'imagenet', alpha must be one of ${MOBILENET_V2_ALPHAS.join(', ')}; got ${alpha}`);
  }
  const input = backboneInput('MobileNetV2', config);
  const [height, width] = input.shape;
  const rows = weights === 'imagenet' ? mobilenetV2Rows(height, width) : height;

  let x = new Conv2D({ filters: makeDivisible(32 * alpha, 8), kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'Conv1' }).apply(input);
  x = bn('bn_Conv1').apply(x);
  x = new ReLU({ maxValue: 6, name: 'Conv1_relu' }).apply(x);
  BLOCKS.forEach(([filters, stride, expansion], blockId) => {
    x = invertedResBlock(x, expansion, stride, alpha, filters, blockId);
  });
  // No alpha on the last conv (the paper), except that alpha > 1 widens it.
  const lastBlockFilters = alpha > 1.0 ? makeDivisible(1280 * alpha, 8) : 1280;
  x = new Conv2D({ filters: lastBlockFilters, kernelSize: 1, useBias: false, name: 'Conv_1' }).apply(x);
  x = bn('Conv_1_bn').apply(x);
  x = new ReLU({ maxValue: 6, name: 'out_relu' }).apply(x);
  if (config.pooling === 'avg') x = new GlobalAveragePooling2D().apply(x);
  else if (config.pooling === 'max') x = new GlobalMaxPooling2D().apply(x);

  const model = new Model({ inputs: input, outputs: x, name: `mobilenetv2_${alpha.toFixed(2)}_${rows}` });
  // For a later model.loadWeights('imagenet'): Keras's rule for the file, applied when asked.
  setImagenetFile(model, weights === 'imagenet' ? mobilenetV2NoTop(alpha, rows) : () => {
    if (!(MOBILENET_V2_ALPHAS as readonly number[]).includes(alpha)) {
      throw new Error(`MobileNetV2: ImageNet weights exist for alpha ${MOBILENET_V2_ALPHAS.join(', ')} only; model '${model.name}' was built with alpha ${alpha}`);
    }
    return mobilenetV2NoTop(alpha, mobilenetV2Rows(height, width));
  });
  if (weights !== null) await loadWeightsInto(model, weights, config, weights === 'imagenet' ? mobilenetV2NoTop(alpha, rows) : undefined);
  return model;
}
