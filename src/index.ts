// webgpu-finetune: the public API (Keras / TF.js style).
export {
  Input, Layer, InputLayer, setInitSeed, Conv2D, DepthwiseConv2D, Dense, BatchNormalization, setInferenceMode, Flatten, Dropout, Activation, ReLU,
  MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, Add, ZeroPadding2D,
} from './graph/layers.ts';
export { SymbolicTensor } from './graph/symbolic.ts';
export { Model, NonFiniteLossError, type Batch, type BatchSource, type CompileConfig, type EvaluateConfig, type FitConfig, type History, type Logs, type NamedTensor, type OptimizerState } from './graph/model.ts';
export { Adam, AdamW, optimizerFromName, RMSprop, SGD, type Optimizer, type OptimizerConfig } from './graph/optimizers.ts';
export { CosineDecay, ExponentialDecay, PiecewiseConstantDecay, type LearningRateSchedule } from './graph/schedules.ts';
export { Callback, CallbackList, EarlyStopping, LearningRateScheduler, ModelCheckpoint, ReduceLROnPlateau, type CallbackHooks, type CallbackModel } from './graph/callbacks.ts';
export { CSVLogger } from './io/csv-logger-node.ts';
export { balancedClassWeights } from './graph/class-weights.ts';
export { metricNames } from './graph/metrics.ts';
export { ArrayBatches } from './graph/array-batches.ts';
export { VGG16, type VGG16Config } from './graph/vgg16.ts';
export { MobileNetV2, type MobileNetV2Config } from './graph/mobilenet-v2.ts';
export { ResNet50, type ResNet50Config } from './graph/resnet50.ts';
export { mobilenetV2, resnet50, vgg16 } from './graph/preprocess.ts';
export { convertWeights, exportWeights, importWeights, loadWeightsInto, readWeights, weightsLoadReport, type LoadWeightsOptions, type WeightsLoadReport, type WeightsMatch } from './io/weights.ts';
export { collectLayerWeights, loadLayerWeights, type LoadLayerWeightsOptions } from './io/model-weights.ts';
export { fetchWeights } from './io/weights-fetch.ts';
export { buildWeightsManifest, parseWeightsManifest, readWeightsData, type LayerWeights, type NamedWeight, type ProgressCallback, type WeightsManifest, type WeightsSourceOptions } from './io/weights-manifest.ts';
export { memory, getGpu, setGpu } from './graph/backend.ts';
export type { PlanMemory } from './graph/plan.ts';
export { acquireGpu, Gpu, GpuError, kernelFamilyOption, KERNEL_FAMILIES, registerShaders, fmtBytes, type AdapterDescription, type KernelFamily } from './gpu/index.ts';
export { ImageDataGenerator, type ImageDataGeneratorOptions } from './io/image-data-generator.ts';
export { DirectoryIterator, type ImageBatch, type ClassMode } from './io/flow.ts';
export type { FlowOptions } from './io/dataset.ts';
