import { setImagenetFile, VGG16_NOTOP } from '../io/imagenet-files.ts';
import { loadWeightsInto, type LoadWeightsOptions } from '../io/weights.ts';
import { Conv2D, Input, MaxPooling2D } from './layers.ts';
import { Model } from './model.ts';
import type { SymbolicTensor } from './symbolic.ts';

export interface VGG16Config extends LoadWeightsOptions {
  /**
   * null: Keras's random initialisation. 'imagenet' (Node): Keras's ImageNet weights, from the
   * cache or downloaded once. A path (Node): a Keras .h5 file, or an exported manifest.json or its
   * folder. A URL (browser and Node): an exported manifest.json or its folder.
   */
  weights?: null | 'imagenet' | string;
  includeTop?: false;
  inputTensor?: SymbolicTensor;
  inputShape?: number[];
}

/** Filters per block, as keras.applications.vgg16. */
const BLOCKS: [number, number][] = [[64, 2], [128, 2], [256, 3], [512, 3], [512, 3]];

/**
 * keras.applications.VGG16 without its top: 19 layers with Keras's names and order
 * (input, block1_conv1 ... block5_pool).
 */
export async function VGG16(config: VGG16Config = {}): Promise<Model> {
  if (config.includeTop !== undefined && config.includeTop !== false) {
    throw new Error('VGG16: only includeTop: false is supported (add your own top, as in the reference program)');
  }
  const weights = config.weights === undefined ? 'imagenet' : config.weights;
  if (weights !== null && (typeof weights !== 'string' || weights === '')) {
    throw new Error(`VGG16: weights must be null (random initialisation), 'imagenet', or the path or URL of a weights file; got ${JSON.stringify(weights)}`);
  }
  const input = config.inputTensor ?? Input({ shape: config.inputShape ?? [224, 224, 3] });
  if (input.shape.length !== 3 || input.shape[2] !== 3) {
    throw new Error(`VGG16: the input must be [height, width, 3] images, got [${input.shape.join(', ')}]`);
  }
  if (input.shape[0] < 32 || input.shape[1] < 32) {
    throw new Error(`VGG16: input height and width must be at least 32 (five 2x2 poolings), got ${input.shape[0]}x${input.shape[1]}`);
  }
  let x = input;
  BLOCKS.forEach(([filters, convs], b) => {
    for (let c = 1; c <= convs; c++) {
      x = new Conv2D({ filters, kernelSize: 3, padding: 'same', activation: 'relu', name: `block${b + 1}_conv${c}` }).apply(x);
    }
    x = new MaxPooling2D({ poolSize: 2, strides: 2, name: `block${b + 1}_pool` }).apply(x);
  });
  const model = new Model({ inputs: input, outputs: x, name: 'vgg16' });
  setImagenetFile(model, VGG16_NOTOP); // for a later model.loadWeights('imagenet')
  if (weights !== null) await loadWeightsInto(model, weights, config, weights === 'imagenet' ? VGG16_NOTOP : undefined);
  return model;
}
