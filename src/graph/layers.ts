// Every layer type, for `import { ... } from './layers.ts'`. Each lives in its own module under layers/.
export { Param, Layer, UnaryLayer, InputLayer, Input, setInitSeed, uniqueName } from './layer.ts';
export type { ProgramContext, LayerProgram, ForwardIO, BackwardIO, BackwardReads } from './layer.ts';
export { Conv2D, type Conv2DConfig } from './layers/conv2d.ts';
export { DepthwiseConv2D, type DepthwiseConv2DConfig } from './layers/depthwise-conv2d.ts';
export { Dense, type DenseConfig } from './layers/dense.ts';
export { BatchNormalization, setInferenceMode, type BatchNormalizationConfig } from './layers/batchnorm.ts';
export { Flatten, Dropout, Activation, ReLU } from './layers/core.ts';
export { MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, type Pooling2DConfig } from './layers/pooling.ts';
export { Add } from './layers/merge.ts';
export { ZeroPadding2D } from './layers/zero-padding.ts';
export type { ActivationName } from './activations.ts';
