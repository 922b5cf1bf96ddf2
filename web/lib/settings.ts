/**
 * What the page trains, as plain data: the settings form reads into this, and the browser test's
 * Node side builds the same program from the same object. Platform-free (no DOM, no Node).
 */

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
  /** Keras's `for layer in base.layers[:frozen]: layer.trainable = False` (0..19) */
  frozen: number;
  learningRate: number;
  momentum: number;
  /** the reference program's augmentation (rotation, shifts, zoom, flips) on the training images */
  augment: boolean;
  /** one seed for initial weights, shuffling, augmentation and dropout */
  seed: number;
}

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
};

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
  int(s.frozen, 0, VGG16_LAYERS.length, 'Frozen layers');
  int(s.seed, 0, 2 ** 32 - 1, 'Seed');
  if (!(s.learningRate > 0 && s.learningRate <= 10)) problems.push(`Learning rate must be above 0 (and at most 10), got ${s.learningRate}`);
  if (!(s.momentum >= 0 && s.momentum < 1)) problems.push(`Momentum must be in [0, 1), got ${s.momentum}`);
  return problems;
}
