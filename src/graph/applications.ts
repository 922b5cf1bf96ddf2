// What the keras.applications builders (MobileNetV2, ResNet50) share: argument checks and the
// input tensor, as VGG16 does them (Keras's obtain_input_shape: 3 channels, at least 32x32).
import { Input } from './layers.ts';
import type { SymbolicTensor } from './symbolic.ts';

export interface BackboneConfigBase {
  weights?: null | 'imagenet' | string;
  includeTop?: false;
  inputTensor?: SymbolicTensor;
  inputShape?: number[];
  /** Keras's pooling for include_top=False: undefined/null = the 4D feature map, 'avg' or 'max' = a global pool. */
  pooling?: 'avg' | 'max' | null;
}

/** The weights argument (default 'imagenet'), checked. */
export function checkBackboneArgs(builder: string, config: BackboneConfigBase): null | string {
  if (config.includeTop !== undefined && config.includeTop !== false) {
    throw new Error(`${builder}: only includeTop: false is supported (add your own top, e.g. GlobalAveragePooling2D + Dense)`);
  }
  const weights = config.weights === undefined ? 'imagenet' : config.weights;
  if (weights !== null && (typeof weights !== 'string' || weights === '')) {
    throw new Error(`${builder}: weights must be null (random initialisation), 'imagenet', or the path or URL of a weights file; got ${JSON.stringify(weights)}`);
  }
  if (config.pooling !== undefined && config.pooling !== null && config.pooling !== 'avg' && config.pooling !== 'max') {
    throw new Error(`${builder}: pooling must be undefined, 'avg' or 'max'; got ${JSON.stringify(config.pooling)}`);
  }
  return weights;
}

/** The image input: inputTensor, else Input(inputShape ?? [224, 224, 3]); [h >= 32, w >= 32, 3]. */
export function backboneInput(builder: string, config: BackboneConfigBase): SymbolicTensor {
  if (config.inputTensor && config.inputShape) {
    const a = config.inputTensor.shape;
    const b = config.inputShape;
    if (a.length !== b.length || a.some((d, i) => d !== b[i])) {
      throw new Error(`${builder}: inputShape [${b.join(', ')}] does not match the shape of inputTensor [${a.join(', ')}]`);
    }
  }
  const input = config.inputTensor ?? Input({ shape: config.inputShape ?? [224, 224, 3] });
  if (input.shape.length !== 3 || input.shape[2] !== 3) {
    throw new Error(`${builder}: the input must be [height, width, 3] images, got [${input.shape.join(', ')}]`);
  }
  if (input.shape[0] < 32 || input.shape[1] < 32) {
    throw new Error(`${builder}: input height and width must be at least 32 (Keras's minimum), got ${input.shape[0]}x${input.shape[1]}`);
  }
  return input;
}
