import { RESNET50_NOTOP, setImagenetFile } from '../io/imagenet-files.ts';
import { loadWeightsInto, type LoadWeightsOptions } from '../io/weights.ts';
import { backboneInput, checkBackboneArgs, type BackboneConfigBase } from './applications.ts';
import { Activation, Add, BatchNormalization, Conv2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D, ZeroPadding2D } from './layers.ts';
import { Model } from './model.ts';
import type { SymbolicTensor } from './symbolic.ts';

export interface ResNet50Config extends LoadWeightsOptions, BackboneConfigBase {
  /**
   * null: Keras's random initialisation. 'imagenet' (Node): Keras's ImageNet weights
   * (resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5, MD5-checked), from the cache or
   * downloaded once. A path (Node): a Keras .h5 file, or an exported manifest.json or its folder.
   * A URL (browser and Node): an exported manifest.json or its folder.
   */
  weights?: null | 'imagenet' | string;
}

const bn = (name: string) => new BatchNormalization({ axis: -1, epsilon: 1.001e-5, name });

/** resnet.residual_block_v1 (kernel 3), layer for layer and in Keras's order of construction. */
function residualBlockV1(x: SymbolicTensor, filters: number, stride: 1 | 2, convShortcut: boolean, name: string): SymbolicTensor {
  let shortcut = x;
  if (convShortcut) {
    shortcut = new Conv2D({ filters: 4 * filters, kernelSize: 1, strides: stride, name: `${name}_0_conv` }).apply(x);
    shortcut = bn(`${name}_0_bn`).apply(shortcut);
  }
  x = new Conv2D({ filters, kernelSize: 1, strides: stride, name: `${name}_1_conv` }).apply(x);
  x = bn(`${name}_1_bn`).apply(x);
  x = new Activation({ activation: 'relu', name: `${name}_1_relu` }).apply(x);
  x = new Conv2D({ filters, kernelSize: 3, padding: 'same', name: `${name}_2_conv` }).apply(x);
  x = bn(`${name}_2_bn`).apply(x);
  x = new Activation({ activation: 'relu', name: `${name}_2_relu` }).apply(x);
  x = new Conv2D({ filters: 4 * filters, kernelSize: 1, name: `${name}_3_conv` }).apply(x);
  x = bn(`${name}_3_bn`).apply(x);
  x = new Add({ name: `${name}_add` }).apply([shortcut, x]);
  return new Activation({ activation: 'relu', name: `${name}_out` }).apply(x);
}

/** resnet.stack_residual_blocks_v1: a conv-shortcut block carrying the stride, then identity blocks. */
function stackV1(x: SymbolicTensor, filters: number, blocks: number, stride1: 1 | 2, name: string): SymbolicTensor {
  x = residualBlockV1(x, filters, stride1, true, `${name}_block1`);
  for (let i = 2; i <= blocks; i++) x = residualBlockV1(x, filters, 1, false, `${name}_block${i}`);
  return x;
}

/**
 * keras.applications.ResNet50 without its top: 175 layers with Keras's names and order
 * (input, conv1_pad ... conv5_block3_out), plus GlobalAveragePooling2D 'avg_pool' or
 * GlobalMaxPooling2D 'max_pool' for pooling 'avg' / 'max'. Convs have biases; BatchNormalization
 * epsilon 1.001e-5, momentum 0.99.
 */
export async function ResNet50(config: ResNet50Config = {}): Promise<Model> {
  const weights = checkBackboneArgs('ResNet50', config);
  const input = backboneInput('ResNet50', config);
  let x = new ZeroPadding2D({ padding: [[3, 3], [3, 3]], name: 'conv1_pad' }).apply(input);
  x = new Conv2D({ filters: 64, kernelSize: 7, strides: 2, useBias: true, name: 'conv1_conv' }).apply(x);
  x = bn('conv1_bn').apply(x);
  x = new Activation({ activation: 'relu', name: 'conv1_relu' }).apply(x);
  x = new ZeroPadding2D({ padding: [[1, 1], [1, 1]], name: 'pool1_pad' }).apply(x);
  x = new MaxPooling2D({ poolSize: 3, strides: 2, name: 'pool1_pool' }).apply(x);
  x = stackV1(x, 64, 3, 1, 'conv2');
  x = stackV1(x, 128, 4, 2, 'conv3');
  x = stackV1(x, 256, 6, 2, 'conv4');
  x = stackV1(x, 512, 3, 2, 'conv5');
  if (config.pooling === 'avg') x = new GlobalAveragePooling2D({ name: 'avg_pool' }).apply(x);
  else if (config.pooling === 'max') x = new GlobalMaxPooling2D({ name: 'max_pool' }).apply(x);
  const model = new Model({ inputs: input, outputs: x, name: 'resnet50' });
  setImagenetFile(model, RESNET50_NOTOP); // for a later model.loadWeights('imagenet')
  if (weights !== null) await loadWeightsInto(model, weights, config, weights === 'imagenet' ? RESNET50_NOTOP : undefined);
  return model;
}
