/**
 * One image through DirectoryIterator._get_batches_of_transformed_samples: decode to RGB, resize to
 * the target size (load_img), float32 0..255 (img_to_array), random transform with parameters
 * drawn beforehand on the main thread, then standardize (rescale). Runs in a worker or in-thread.
 */
import { applyTransform, standardize, type AugmentSettings, type TransformParams } from './augment.ts';
import { decodeRgb, type PngReader } from './image-decode.ts';
import { resizeRgb, type Interpolation } from './resize.ts';

/** Everything about processing that is the same for every image of a flow. */
export interface ImageSpec {
  height: number;
  width: number;
  interpolation: Interpolation;
  augment: Pick<AugmentSettings, 'fillMode' | 'cval' | 'interpolationOrder' | 'rescale'>;
  /** Images above this many pixels are refused before decoding (null: no limit); checked again here, in the worker, for a file replaced after the up-front check. */
  maxImagePixels?: number | null;
}

/** Returns a height x width x 3 float32 image. Throws ImageError when the bytes cannot be decoded. */
export function processImage(bytes: Uint8Array, spec: ImageSpec, params: TransformParams | null, readPng: PngReader): Float32Array {
  const rgb = decodeRgb(bytes, readPng, spec.maxImagePixels ?? null);
  const sized = resizeRgb(rgb.data, rgb.height, rgb.width, spec.height, spec.width, spec.interpolation);
  let x: Float32Array = Float32Array.from(sized);
  if (params) x = applyTransform(x, spec.height, spec.width, 3, params, spec.augment);
  return standardize(x, spec.augment.rescale);
}
