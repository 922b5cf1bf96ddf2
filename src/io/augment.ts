/**
 * Keras's random image augmentation (keras-preprocessing 1.1.2's ImageDataGenerator):
 * the random parameters, drawn in Keras's order from numpy's RNG; the centred affine matrix;
 * the pull map with scipy.ndimage.affine_transform's interpolation and boundary modes; flips
 * after the affine transform; rescale last. Images are HWC float32 (channels-last, like Keras).
 * Platform-independent: shared by Node workers and browsers.
 */
import type { NumpyRandom } from './numpy-random.ts';

export type FillMode = 'nearest' | 'constant' | 'reflect' | 'wrap';

/** A shift range as Keras takes it: fraction (< 1) of the size, pixels, or a list of pixel choices. */
export type ShiftRange = number | number[];

/** Augmentation settings, already normalised (see ImageDataGenerator for the user-facing form). */
export interface AugmentSettings {
  rotationRange: number;
  widthShiftRange: ShiftRange;
  heightShiftRange: ShiftRange;
  shearRange: number;
  zoomRange: [number, number];
  horizontalFlip: boolean;
  verticalFlip: boolean;
  fillMode: FillMode;
  cval: number;
  interpolationOrder: 0 | 1;
  rescale: number | null;
  /** Keras's preprocessing_function: one HWC image in, one of the same size out; runs before rescale, on the main thread. */
  preprocess?: ((x: Float32Array) => Float32Array) | null;
}

/** Keras's transform_parameters: tx shifts rows (height), ty shifts columns (width). */
export interface TransformParams {
  theta: number;
  tx: number;
  ty: number;
  shear: number;
  zx: number;
  zy: number;
  flipHorizontal: boolean;
  flipVertical: boolean;
}

export const IDENTITY: TransformParams = { theta: 0, tx: 0, ty: 0, shear: 0, zx: 1, zy: 1, flipHorizontal: false, flipVertical: false };

function isIntegral(v: number): boolean {
  return Number.isInteger(v);
}

/**
 * One shift draw, as get_random_transform does it. A list, or an integer >= 1, is Keras's
 * "1-D array-like or int" branch: np.random.choice of a value, times a random sign. Any other
 * number is a uniform draw. The result is scaled by the image size when max(range) < 1.
 * (JS has no int/float distinction: an integral number counts as Python's int.)
 */
function drawShift(rng: NumpyRandom, range: ShiftRange, size: number): number {
  let v: number;
  let max: number;
  if (Array.isArray(range)) {
    v = range[rng.choiceIndex(range.length)];
    v *= [-1, 1][rng.choiceIndex(2)];
    max = Math.max(...range);
  } else if (isIntegral(range)) {
    v = rng.choiceIndex(range); // np.random.choice(int) picks from arange(range)
    v *= [-1, 1][rng.choiceIndex(2)];
    max = range;
  } else {
    v = rng.uniform(-range, range);
    max = range;
  }
  return max < 1 ? v * size : v;
}

function shiftEnabled(range: ShiftRange): boolean {
  return Array.isArray(range) ? range.length > 0 : range !== 0;
}

/**
 * get_random_transform (1.1.2): theta, tx (height shift), ty (width shift), shear, zx and zy,
 * then both flips. Each range draws only when set; the two flip draws always happen (a flip
 * that is off still consumes its number), as in Keras.
 */
export function randomTransform(rng: NumpyRandom, s: AugmentSettings, height: number, width: number): TransformParams {
  const theta = s.rotationRange ? rng.uniform(-s.rotationRange, s.rotationRange) : 0;
  const tx = shiftEnabled(s.heightShiftRange) ? drawShift(rng, s.heightShiftRange, height) : 0;
  const ty = shiftEnabled(s.widthShiftRange) ? drawShift(rng, s.widthShiftRange, width) : 0;
  const shear = s.shearRange ? rng.uniform(-s.shearRange, s.shearRange) : 0;
  let zx = 1;
  let zy = 1;
  if (!(s.zoomRange[0] === 1 && s.zoomRange[1] === 1)) {
    zx = rng.uniform(s.zoomRange[0], s.zoomRange[1]);
    zy = rng.uniform(s.zoomRange[0], s.zoomRange[1]);
  }
  const flipHorizontal = rng.random() < 0.5 && s.horizontalFlip;
  const flipVertical = rng.random() < 0.5 && s.verticalFlip;
  return { theta, tx, ty, shear, zx, zy, flipHorizontal, flipVertical };
}

/** A 3x3 matrix, row-major. */
export type Matrix3 = number[];

function matmul(a: Matrix3, b: Matrix3): Matrix3 {
  const out = new Array<number>(9);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      // np.dot accumulates left to right
      out[i * 3 + j] = a[i * 3] * b[j] + a[i * 3 + 1] * b[3 + j] + a[i * 3 + 2] * b[6 + j];
    }
  }
  return out;
}

/**
 * apply_affine_transform's matrix: R(theta) . T(tx, ty) . S(shear) . Z(zx, zy), each factor only
 * when it is not the identity, centred with offset o = (h/2 + 0.5, w/2 + 0.5) (1.1.2's centre).
 * It maps an output (row, col) to the input position it pulls from. Null when nothing moves.
 */
export function transformMatrix(p: TransformParams, height: number, width: number): Matrix3 | null {
  let m: Matrix3 | null = null;
  const then = (f: Matrix3) => (m = m ? matmul(m, f) : f);
  if (p.theta !== 0) {
    const t = p.theta * (Math.PI / 180); // np.deg2rad
    then([Math.cos(t), -Math.sin(t), 0, Math.sin(t), Math.cos(t), 0, 0, 0, 1]);
  }
  if (p.tx !== 0 || p.ty !== 0) then([1, 0, p.tx, 0, 1, p.ty, 0, 0, 1]);
  if (p.shear !== 0) {
    const s = p.shear * (Math.PI / 180);
    then([1, -Math.sin(s), 0, 0, Math.cos(s), 0, 0, 0, 1]);
  }
  if (p.zx !== 1 || p.zy !== 1) then([p.zx, 0, 0, 0, p.zy, 0, 0, 0, 1]);
  if (!m) return null;
  const ox = height / 2 + 0.5;
  const oy = width / 2 + 0.5;
  return matmul(matmul([1, 0, ox, 0, 1, oy, 0, 0, 1], m), [1, 0, -ox, 0, 1, -oy, 0, 0, 1]);
}

/**
 * scipy's map_coordinate: folds a coordinate outside [0, len-1] back in for the given mode;
 * -1 means "use cval" (mode 'constant'). 'wrap' has period len-1 (scipy's 'wrap', not
 * 'grid-wrap'); 'reflect' is half-sample symmetric.
 */
function mapCoordinate(x: number, len: number, mode: FillMode): number {
  if (x < 0) {
    switch (mode) {
      case 'reflect': {
        if (len <= 1) return 0;
        const sz2 = 2 * len;
        if (x < -sz2) x = sz2 * Math.trunc(-x / sz2) + x;
        return x < -len ? x + sz2 : (x > -1e-15 ? 1e-15 : -x) - 1;
      }
      case 'wrap': {
        if (len <= 1) return 0;
        const sz = len - 1;
        return x + sz * (Math.trunc(-x / sz) + 1);
      }
      case 'nearest':
        return 0;
      case 'constant':
        return -1;
    }
  } else if (x > len - 1) {
    switch (mode) {
      case 'reflect': {
        if (len <= 1) return 0;
        const sz2 = 2 * len;
        x -= sz2 * Math.trunc(x / sz2);
        return x >= len ? sz2 - x - 1 : x;
      }
      case 'wrap': {
        if (len <= 1) return 0;
        const sz = len - 1;
        return x - sz * Math.trunc(x / sz);
      }
      case 'nearest':
        return len - 1;
      case 'constant':
        return -1;
    }
  }
  return x;
}

/**
 * Index of a spline neighbour outside [0, len-1]: scipy extends 'nearest' by clamping,
 * 'reflect' half-sample symmetrically and 'constant'/'wrap' by whole-sample mirroring.
 * (For order <= 1 this only matters for 'reflect'; the others give such neighbours weight 0.)
 */
function edgeIndex(i: number, len: number, mode: FillMode): number {
  if (i >= 0 && i < len) return i;
  if (len <= 1) return 0;
  if (mode === 'nearest') return i < 0 ? 0 : len - 1;
  if (mode === 'reflect') return i < 0 ? -i - 1 : 2 * len - i - 1;
  const s2 = 2 * len - 2;
  if (i < 0) {
    i = s2 * Math.trunc(-i / s2) + i;
    return i <= 1 - len ? i + s2 : -i;
  }
  i -= s2 * Math.trunc(i / s2);
  return i >= len ? s2 - i : i;
}

/**
 * scipy.ndimage.affine_transform on each channel of an HWC image, with the 2x2 part of `m` as
 * matrix and its last column as offset: output (r, c) reads input m . (r, c, 1), interpolated
 * with a spline of order 0 (nearest) or 1 (linear). Arithmetic in float64 like scipy, stored
 * as float32 like scipy's float32 output.
 */
export function affineTransform(src: Float32Array, height: number, width: number, channels: number, m: Matrix3, fillMode: FillMode, cval: number, order: 0 | 1): Float32Array {
  const out = new Float32Array(height * width * channels);
  const idx = [0, 0];
  const wr = [1, 0];
  const wc = [1, 0];
  const ri = [0, 0];
  const ci = [0, 0];
  const taps = order + 1;
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      const o = (r * width + c) * channels;
      // scipy: icoor = sum(coord * matrix row) + shift, accumulated in this order
      const y = mapCoordinate(r * m[0] + c * m[1] + m[2], height, fillMode);
      const x = mapCoordinate(r * m[3] + c * m[4] + m[5], width, fillMode);
      if (y <= -1 || x <= -1) {
        for (let k = 0; k < channels; k++) out[o + k] = cval;
        continue;
      }
      if (order === 1) {
        idx[0] = Math.floor(y);
        idx[1] = Math.floor(x);
        const ty = y - idx[0];
        const tx = x - idx[1];
        if (idx[0] >= 0 && idx[0] + 1 < height && idx[1] >= 0 && idx[1] + 1 < width) {
          // interior fast path: the same sums, in the same order, without edge handling
          const r0 = 1 - ty;
          const r1 = 1 - r0;
          const c0 = 1 - tx;
          const c1 = 1 - c0;
          const p00 = (idx[0] * width + idx[1]) * channels;
          const p10 = p00 + width * channels;
          for (let k = 0; k < channels; k++) {
            let acc = 0;
            acc += src[p00 + k] * r0 * c0;
            acc += src[p00 + channels + k] * r0 * c1;
            acc += src[p10 + k] * r1 * c0;
            acc += src[p10 + channels + k] * r1 * c1;
            out[o + k] = acc;
          }
          continue;
        }
        // get_spline_interpolation_weights: w0 = 1 - t, w1 = 1 - w0
        wr[0] = 1 - ty;
        wr[1] = 1 - wr[0];
        wc[0] = 1 - tx;
        wc[1] = 1 - wc[0];
      } else {
        idx[0] = Math.floor(y + 0.5);
        idx[1] = Math.floor(x + 0.5);
      }
      for (let t = 0; t < taps; t++) {
        ri[t] = edgeIndex(idx[0] + t, height, fillMode);
        ci[t] = edgeIndex(idx[1] + t, width, fillMode);
      }
      for (let k = 0; k < channels; k++) {
        let acc = 0;
        for (let a = 0; a < taps; a++) {
          for (let b = 0; b < taps; b++) {
            let v = src[(ri[a] * width + ci[b]) * channels + k];
            if (order > 0) {
              v *= wr[a];
              v *= wc[b];
            }
            acc += v;
          }
        }
        out[o + k] = acc;
      }
    }
  }
  return out;
}

/** flip_axis on an HWC image: axis 1 mirrors columns (horizontal flip), axis 0 rows. */
export function flipAxis(src: Float32Array, height: number, width: number, channels: number, axis: 0 | 1): Float32Array {
  const out = new Float32Array(src.length);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      const sr = axis === 0 ? height - 1 - r : r;
      const sc = axis === 1 ? width - 1 - c : c;
      const from = (sr * width + sc) * channels;
      out.set(src.subarray(from, from + channels), (r * width + c) * channels);
    }
  }
  return out;
}

/** apply_transform: the affine pull map (when anything moves), then horizontal, then vertical flip. */
export function applyTransform(img: Float32Array, height: number, width: number, channels: number, p: TransformParams, s: Pick<AugmentSettings, 'fillMode' | 'cval' | 'interpolationOrder'>): Float32Array {
  let x = img;
  const m = transformMatrix(p, height, width);
  if (m) x = affineTransform(x, height, width, channels, m, s.fillMode, s.cval, s.interpolationOrder);
  if (p.flipHorizontal) x = flipAxis(x, height, width, channels, 1);
  if (p.flipVertical) x = flipAxis(x, height, width, channels, 0);
  return x;
}

/** standardize with rescale only: `x *= rescale` in float32, as numpy does on a float32 array. */
export function standardize(img: Float32Array, rescale: number | null): Float32Array {
  if (!rescale) return img;
  const f = Math.fround(rescale);
  for (let i = 0; i < img.length; i++) img[i] *= f;
  return img;
}
