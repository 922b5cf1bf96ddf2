/**
 * What the page trains, as plain data: the settings form reads into this, and the browser test's
 * Node side builds the same program from the same object. Platform-free (no DOM, no Node).
 */
import { defaultLearningRate, OPTIMIZER_NAMES, type OptimizerName } from '../../src/graph/optimizers.ts';
import { SMALL_CNN_LAYERS } from '../../src/graph/small-cnn.ts';

/** keras.applications.VGG16 (no top): the layers the freeze control lists, input first. */
export const VGG16_LAYERS = [
  'input', 'block1_conv1', 'block1_conv2', 'block1_pool', 'block2_conv1', 'block2_conv2', 'block2_pool',
  'block3_conv1', 'block3_conv2', 'block3_conv3', 'block3_pool', 'block4_conv1', 'block4_conv2', 'block4_conv3', 'block4_pool',
  'block5_conv1', 'block5_conv2', 'block5_conv3', 'block5_pool',
] as const;

export interface TrainSettings {
  /** input images are resized to height x width (at least 32, VGG16's five poolings) */
  height: number;
  width: number;
  batchSize: number;
  epochs: number;
  /** Keras's `for layer in base.layers[:frozen]: layer.trainable = False` (0 to the base's layer count: 19, 154, 175 or 21) */
  frozen: number;
  learningRate: number;
  momentum: number;
  /** the reference program's augmentation (rotation, shifts, zoom, flips) on the training images */
  augment: boolean;
  /** one seed for initial weights, shuffling, augmentation and dropout */
  seed: number;
  /** the pretrained base (absent: 'vgg16', the reference program) */
  base?: BaseName;
  /** absent: 'sgd' (the reference program); momentum applies to SGD and RMSprop */
  optimizer?: OptimizerName;
  /** the learning rate over the run: constant, cosine decay to 0 over all steps, or exponential (x0.9 per epoch) */
  schedule?: ScheduleName;
  /** EarlyStopping on val_loss with this patience, best weights restored; 0 or absent: off */
  earlyStopping?: number;
  /**
   * Keras's two-phase recipe (as `train --fine-tune-at`): after `epochs`, the base's layers from
   * index `at` on become trainable (the base's BatchNormalization stays on its moving statistics)
   * and the model is compiled again with a new optimizer at `lr` (no schedule) for `epochs` more.
   * Absent: one phase.
   */
  fineTune?: FineTune;
}

export interface FineTune {
  at: number;
  epochs: number;
  lr: number;
}

export const BASE_NAMES = ['vgg16', 'mobilenet_v2', 'resnet50', 'small_cnn'] as const;
export type BaseName = (typeof BASE_NAMES)[number];
export { OPTIMIZER_NAMES, type OptimizerName } from '../../src/graph/optimizers.ts';
export const SCHEDULE_NAMES = ['none', 'cosine', 'exponential'] as const;
export type ScheduleName = (typeof SCHEDULE_NAMES)[number];

/** Keras 3's default learning rate per optimizer (the form offers it when the optimizer changes). */
export const DEFAULT_LEARNING_RATES = Object.fromEntries(OPTIMIZER_NAMES.map((n) => [n, defaultLearningRate(n)])) as Record<OptimizerName, number>;

/** ExponentialDecay's rate per epoch on the page (decaySteps = one epoch's steps). */
export const EXPONENTIAL_DECAY_PER_EPOCH = 0.9;

export interface BaseInfo {
  /** the builder's name ('VGG16') */
  builder: string;
  /** layers of the base without its top, input included (what `frozen` counts) */
  layers: number;
  /** default frozen prefix: the reference program's 15 for VGG16, the whole base for the others (Keras's transfer-learning guide) */
  frozen: number;
  /** the top, as text */
  top: string;
  /** the fine-tuning phase's default first unfrozen layer: the start of the base's last block (VGG16: block 4, as block 5 already trains) */
  fineTuneAt: number;
  /** false: Keras has no ImageNet file for it (SmallCNN: the page pretrains it itself) */
  imagenet: boolean;
  /**
   * Settings the form takes when the base is chosen (absent: it keeps its size and optimizer).
   * SmallCNN: the CLI's offline demo (32x32, Adam at 0.01: only the new top trains).
   */
  recipe?: Pick<TrainSettings, 'height' | 'width' | 'optimizer' | 'learningRate'>;
}

/** What the page offers per base; MobileNetV2, ResNet50 and SmallCNN follow Keras's transfer-learning guide (as `train --base`). */
export const BASES: Record<BaseName, BaseInfo> = {
  vgg16: { builder: 'VGG16', layers: 19, frozen: 15, top: 'Flatten, Dense(256, relu), Dropout(0.5), Dense(1, sigmoid)', fineTuneAt: 11, imagenet: true },
  mobilenet_v2: { builder: 'MobileNetV2', layers: 154, frozen: 154, top: 'GlobalAveragePooling2D, Dropout(0.2), Dense(1, sigmoid)', fineTuneAt: 143, imagenet: true },
  resnet50: { builder: 'ResNet50', layers: 175, frozen: 175, top: 'GlobalAveragePooling2D, Dropout(0.2), Dense(1, sigmoid)', fineTuneAt: 165, imagenet: true },
  // the offline path (as src/cli/reference-model.ts's small_cnn): no ImageNet weights; the page
  // pretrains it on four other shape families (program.ts's pretrainedBase). 18: block3_conv1.
  small_cnn: {
    builder: 'SmallCNN', layers: SMALL_CNN_LAYERS, frozen: SMALL_CNN_LAYERS, top: 'GlobalAveragePooling2D, Dropout(0.2), Dense(1, sigmoid)', fineTuneAt: 18, imagenet: false,
    recipe: { height: 32, width: 32, optimizer: 'adam', learningRate: 0.01 },
  },
};

export const baseOf = (s: Pick<TrainSettings, 'base'>): BaseName => s.base ?? 'vgg16';

export const DEFAULT_SETTINGS: TrainSettings = {
  height: 64,
  width: 64,
  batchSize: 8,
  epochs: 5,
  frozen: 15, // blocks 1-4, as in the reference program
  learningRate: 0.01, // Keras's SGD defaults ('sgd')
  momentum: 0,
  augment: true,
  seed: 1,
  base: 'vgg16',
  optimizer: 'sgd',
  schedule: 'none',
  earlyStopping: 0,
};

/** Epochs of the whole run: the first phase's, plus the fine-tuning phase's. */
export const totalEpochsOf = (s: Pick<TrainSettings, 'epochs' | 'fineTune'>): number => s.epochs + (s.fineTune?.epochs ?? 0);

/** The reference program's ImageDataGenerator for training (besides rescale). */
export const AUGMENTATION = { rotationRange: 30, widthShiftRange: 0.3, zoomRange: 0.3, horizontalFlip: true, verticalFlip: true };

/** Checks settings from a form; returns the problems, worded for a person (empty when fine). */
export function checkSettings(s: TrainSettings): string[] {
  const problems: string[] = [];
  const int = (v: number, lo: number, hi: number, what: string) => {
    if (!Number.isInteger(v) || v < lo || v > hi) problems.push(`${what} must be a whole number from ${lo} to ${hi} (got ${v})`);
  };
  int(s.height, 32, 1024, 'Input height');
  int(s.width, 32, 1024, 'Input width');
  int(s.batchSize, 1, 512, 'Batch size');
  int(s.epochs, 1, 1000, 'Epochs');
  const base = s.base ?? 'vgg16';
  if (!BASE_NAMES.includes(base)) problems.push(`Base must be one of ${BASE_NAMES.join(', ')} (got ${String(base)})`);
  int(s.frozen, 0, BASES[base]?.layers ?? VGG16_LAYERS.length, 'Frozen layers');
  if (s.optimizer !== undefined && !OPTIMIZER_NAMES.includes(s.optimizer)) problems.push(`Optimizer must be one of ${OPTIMIZER_NAMES.join(', ')} (got ${String(s.optimizer)})`);
  if (s.schedule !== undefined && !SCHEDULE_NAMES.includes(s.schedule)) problems.push(`Learning-rate schedule must be one of ${SCHEDULE_NAMES.join(', ')} (got ${String(s.schedule)})`);
  if (s.earlyStopping !== undefined) int(s.earlyStopping, 0, 1000, 'Early-stopping patience');
  if (s.fineTune) {
    const ft = s.fineTune;
    int(ft.at, 0, BASES[base]?.layers ?? VGG16_LAYERS.length, 'Fine-tune from layer');
    if (Number.isInteger(ft.at) && ft.at >= s.frozen) problems.push(`Fine-tuning from layer ${ft.at} unfreezes nothing: only the first ${s.frozen} layers are frozen; pick a layer before ${s.frozen} (or freeze more)`);
    int(ft.epochs, 1, 1000, 'Fine-tuning epochs');
    if (!(ft.lr > 0 && ft.lr <= 10)) problems.push(`Fine-tuning learning rate must be above 0 (and at most 10), got ${ft.lr}`);
    if ((s.earlyStopping ?? 0) > 0) problems.push('Early stopping is not supported with fine-tuning yet (each phase would need its own): turn one of them off');
  }
  int(s.seed, 0, 2 ** 32 - 1, 'Seed');
  if (!(s.learningRate > 0 && s.learningRate <= 10)) problems.push(`Learning rate must be above 0 (and at most 10), got ${s.learningRate}`);
  if (!(s.momentum >= 0 && s.momentum < 1)) problems.push(`Momentum must be in [0, 1), got ${s.momentum}`);
  return problems;
}
