/**
 * Pillow's Image.resize on 8-bit RGB, which Keras's load_img calls when the file's size differs
 * from target_size: NEAREST (Keras's default) and BILINEAR (Pillow's two-pass convolution with a
 * triangle filter widened when shrinking, in 22-bit fixed point with 8-bit rounding after each
 * pass). Both match Pillow 9 byte for byte (test/fixtures/augment/golden.json).
 */

export type Interpolation = 'nearest' | 'bilinear';

/** Pillow's ImagingScaleAffine: source index = int(scale/2 + x*scale), accumulated like Pillow. */
function nearestTable(inSize: number, outSize: number): Int32Array {
  const t = new Int32Array(outSize);
  const scale = inSize / outSize;
  let p = scale * 0.5;
  for (let i = 0; i < outSize; i++) {
    t[i] = Math.min(inSize - 1, Math.max(0, Math.trunc(p)));
    p += scale;
  }
  return t;
}

export function resizeNearest(src: Uint8Array, height: number, width: number, channels: number, outH: number, outW: number): Uint8Array {
  const out = new Uint8Array(outH * outW * channels);
  const rows = nearestTable(height, outH);
  const cols = nearestTable(width, outW);
  for (let y = 0; y < outH; y++) {
    const rowBase = rows[y] * width;
    for (let x = 0; x < outW; x++) {
      const s = (rowBase + cols[x]) * channels;
      const d = (y * outW + x) * channels;
      for (let k = 0; k < channels; k++) out[d + k] = src[s + k];
    }
  }
  return out;
}

const PRECISION_BITS = 32 - 8 - 2;

interface Coeffs {
  ksize: number;
  bounds: Int32Array; // [xmin, count] per output pixel
  k: Int32Array; // fixed-point weights, ksize per output pixel
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear (triangle) filter. */
function bilinearCoeffs(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 1 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const k = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const d = Math.abs((x + xmin - center + 0.5) * ss);
      w[x] = d < 1 ? 1 - d : 0;
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x] / ww : w[x];
      k[xx * ksize + x] = Math.trunc(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, k };
}

function clip8(v: number): number {
  if (v >= 1 << PRECISION_BITS << 8) return 255;
  if (v <= 0) return 0;
  return v >> PRECISION_BITS;
}

/**
 * One pass along rows (horizontal) or columns (vertical). Sums stay below 2^31: 8-bit values
 * times weights that add up to 2^22. JS numbers are exact there, and `>>` is Pillow's shift.
 */
function pass(src: Uint8Array, h: number, w: number, c: number, co: Coeffs, horizontal: boolean, outLen: number, rowOffset: number, outRows: number): Uint8Array {
  const outW = horizontal ? outLen : w;
  const out = new Uint8Array(outRows * outW * c);
  const sums = new Array<number>(c);
  for (let y = 0; y < outRows; y++) {
    for (let x = 0; x < outW; x++) {
      const i = horizontal ? x : y;
      const min = co.bounds[i * 2];
      const n = co.bounds[i * 2 + 1];
      const kb = i * co.ksize;
      sums.fill(1 << (PRECISION_BITS - 1));
      for (let t = 0; t < n; t++) {
        const s = horizontal ? ((y + rowOffset) * w + min + t) * c : ((min + t) * w + x) * c;
        const wt = co.k[kb + t];
        for (let ch = 0; ch < c; ch++) sums[ch] += src[s + ch] * wt;
      }
      const d = (y * outW + x) * c;
      for (let ch = 0; ch < c; ch++) out[d + ch] = clip8(sums[ch]);
    }
  }
  return out;
}

export function resizeBilinear(src: Uint8Array, height: number, width: number, channels: number, outH: number, outW: number): Uint8Array {
  const horiz = bilinearCoeffs(width, outW);
  const vert = bilinearCoeffs(height, outH);
  let img = src;
  let h = height;
  let w = width;
  if (outW !== width) {
    // Pillow runs the horizontal pass only over the source rows the vertical pass will read.
    const first = vert.bounds[0];
    const last = vert.bounds[outH * 2 - 2] + vert.bounds[outH * 2 - 1];
    img = pass(img, h, w, channels, horiz, true, outW, first, last - first);
    for (let i = 0; i < outH; i++) vert.bounds[i * 2] -= first;
    h = last - first;
    w = outW;
  }
  if (outH !== height) img = pass(img, h, w, channels, vert, false, outH, 0, outH);
  return img;
}

/** Resizes (when the size differs) like load_img: nearest unless 'bilinear' is asked for. */
export function resizeRgb(src: Uint8Array, height: number, width: number, outH: number, outW: number, interpolation: Interpolation): Uint8Array {
  if (height === outH && width === outW) return src;
  return interpolation === 'bilinear' ? resizeBilinear(src, height, width, 3, outH, outW) : resizeNearest(src, height, width, 3, outH, outW);
}
