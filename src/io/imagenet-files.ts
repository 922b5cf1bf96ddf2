// Keras's ImageNet weights files for keras.applications backbones without their top: which file
// `weights: 'imagenet'` means for each model. Platform-free data (the Node side in weights-node.ts
// finds, downloads, checks and converts them).

/** One Keras ImageNet weights file, and how we cache it. */
export interface ImagenetWeightsFile {
  /** The model, for messages and the converted manifest ('VGG16', 'ResNet50', 'MobileNetV2'). */
  readonly builder: string;
  /** Keras's file name (also its name in Keras's cache, ~/.keras/models). */
  readonly fileName: string;
  readonly url: string;
  /** The MD5 Keras checks, or null where Keras passes no hash (MobileNetV2). */
  readonly md5: string | null;
  /** Size in bytes, where known (shown in messages). */
  readonly bytes?: number;
  /** Folder of the converted manifest + .bin inside our cache. */
  readonly converted: string;
  /** The model name written into the converted manifest. */
  readonly model: string;
}

export const KERAS_APPLICATIONS_URL = 'https://storage.googleapis.com/tensorflow/keras-applications/';

/** keras/applications/vgg16.py, WEIGHTS_PATH_NO_TOP. */
export const VGG16_NOTOP = {
  builder: 'VGG16',
  fileName: 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5',
  url: 'https://storage.googleapis.com/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5',
  md5: '6d6bbae143d832006294945121d1f1fc',
  bytes: 58_889_256,
  converted: 'vgg16_notop',
  model: 'vgg16',
} as const satisfies ImagenetWeightsFile;

/** keras/src/applications/resnet.py: BASE_WEIGHTS_PATH + 'resnet50' + '_weights_tf_dim_ordering_tf_kernels_notop.h5', WEIGHTS_HASHES['resnet50'][1]. */
export const RESNET50_NOTOP = {
  builder: 'ResNet50',
  fileName: 'resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5',
  url: `${KERAS_APPLICATIONS_URL}resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`,
  md5: '4d473c1dd8becc155b73f8504c6f6626',
  converted: 'resnet50_notop',
  model: 'resnet50',
} as const satisfies ImagenetWeightsFile;

/** The alphas and square sizes Keras has MobileNetV2 ImageNet weights for. */
export const MOBILENET_V2_ALPHAS = [0.35, 0.5, 0.75, 1.0, 1.3, 1.4] as const;
export const MOBILENET_V2_ROWS = [96, 128, 160, 192, 224] as const;

/** Python's str(float(alpha)): 1 -> '1.0', 0.5 -> '0.5', 0.35 -> '0.35'. */
export function pythonFloatStr(v: number): string {
  return Number.isInteger(v) ? v.toFixed(1) : String(v);
}

/**
 * keras/src/applications/mobilenet_v2.py (include_top=False): BASE_WEIGHT_PATH +
 * `mobilenet_v2_weights_tf_dim_ordering_tf_kernels_${float(alpha)}_${rows}_no_top.h5`, no hash.
 * `rows` must already be Keras's choice (the input size if square and in MOBILENET_V2_ROWS, else 224).
 */
export function mobilenetV2NoTop(alpha: number, rows: number): ImagenetWeightsFile {
  if (!(MOBILENET_V2_ALPHAS as readonly number[]).includes(alpha)) throw new Error(`MobileNetV2 ImageNet weights exist for alpha ${MOBILENET_V2_ALPHAS.join(', ')} only, got ${alpha}`);
  if (!(MOBILENET_V2_ROWS as readonly number[]).includes(rows)) throw new Error(`MobileNetV2 ImageNet weights exist for sizes ${MOBILENET_V2_ROWS.join(', ')} only, got ${rows}`);
  const a = pythonFloatStr(alpha);
  const fileName = `mobilenet_v2_weights_tf_dim_ordering_tf_kernels_${a}_${rows}_no_top.h5`;
  return {
    builder: 'MobileNetV2',
    fileName,
    url: `${KERAS_APPLICATIONS_URL}mobilenet_v2/${fileName}`,
    md5: null,
    converted: `mobilenet_v2_${a}_${rows}_notop`,
    model: `mobilenetv2_${alpha.toFixed(2)}_${rows}`,
  };
}

// Which file 'imagenet' means for a model a builder made (VGG16, ResNet50, MobileNetV2), so
// model.loadWeights('imagenet') finds it later. A WeakMap: models stay collectable, and a model
// that was not built by a builder has no entry.
const builtWith = new WeakMap<object, () => ImagenetWeightsFile>();

/**
 * Records the ImageNet file of a model made by a builder. A function is called when the file is
 * asked for (it may throw: MobileNetV2 at an alpha Keras has no weights for).
 */
export function setImagenetFile(model: object, file: ImagenetWeightsFile | (() => ImagenetWeightsFile)): void {
  builtWith.set(model, typeof file === 'function' ? file : () => file);
}

/** The ImageNet file of a model made by a builder; undefined for any other model. */
export function imagenetFileOf(model: object): ImagenetWeightsFile | undefined {
  return builtWith.get(model)?.();
}

/**
 * Keras's choice of rows for MobileNetV2's weights: the input size when the input is square and
 * one of MOBILENET_V2_ROWS, else 224 (`warn` is then called with Keras's warning).
 */
export function mobilenetV2Rows(height: number, width: number, warn: (message: string) => void = console.warn): number {
  if (height === width && (MOBILENET_V2_ROWS as readonly number[]).includes(height)) return height;
  warn('MobileNetV2: the input is non-square, or its size is not in [96, 128, 160, 192, 224]. Weights for input shape (224, 224) will be loaded as the default.');
  return 224;
}
