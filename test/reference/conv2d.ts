/**
 * Plain float64 conv2d (NHWC, HWIO weights, strides, TF 'same' / 'valid'), independent of the
 * WGSL and of src/kernels.
 */
export interface ConvRefShape {
  batch: number;
  height: number;
  width: number;
  inChannels: number;
  outChannels: number;
  kernelSize: [number, number];
  strides?: [number, number];
  padding: 'same' | 'valid';
  activation: 'relu' | 'relu6' | 'linear';
  useBias?: boolean;
}

/** TF's rules, per axis: 'same' out = ceil(in / s), total pad max((out - 1) * s + k - in, 0), the smaller half first. */
export function convGeometry(s: ConvRefShape): { outH: number; outW: number; padTop: number; padLeft: number } {
  const [kh, kw] = s.kernelSize;
  const [sh, sw] = s.strides ?? [1, 1];
  if (s.padding === 'same') {
    const outH = Math.ceil(s.height / sh);
    const outW = Math.ceil(s.width / sw);
    const padH = Math.max((outH - 1) * sh + kh - s.height, 0);
    const padW = Math.max((outW - 1) * sw + kw - s.width, 0);
    return { outH, outW, padTop: Math.floor(padH / 2), padLeft: Math.floor(padW / 2) };
  }
  return { outH: Math.floor((s.height - kh) / sh) + 1, outW: Math.floor((s.width - kw) / sw) + 1, padTop: 0, padLeft: 0 };
}

/** Pre-activation z = conv(x, w) + b (b ignored when useBias is false), [N, outH, outW, Cout]. */
export function conv2dPreactivationRef(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | undefined, s: ConvRefShape): Float64Array {
  const { outH, outW, padTop, padLeft } = convGeometry(s);
  const [kh, kw] = s.kernelSize;
  const [sh, sw] = s.strides ?? [1, 1];
  const { batch: N, height: H, width: W, inChannels: C, outChannels: F } = s;
  const z = new Float64Array(N * outH * outW * F);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < outH; oh++) {
      for (let ow = 0; ow < outW; ow++) {
        const o = ((n * outH + oh) * outW + ow) * F;
        for (let f = 0; f < F; f++) z[o + f] = s.useBias === false || !b ? 0 : b[f];
        for (let ky = 0; ky < kh; ky++) {
          const ih = oh * sh + ky - padTop;
          if (ih < 0 || ih >= H) continue;
          for (let kx = 0; kx < kw; kx++) {
            const iw = ow * sw + kx - padLeft;
            if (iw < 0 || iw >= W) continue;
            for (let c = 0; c < C; c++) {
              const xv = x[((n * H + ih) * W + iw) * C + c];
              const wo = ((ky * kw + kx) * C + c) * F;
              for (let f = 0; f < F; f++) z[o + f] += xv * w[wo + f];
            }
          }
        }
      }
    }
  }
  return z;
}

/** y = act(conv(x, w) + b). */
export function conv2dRef(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | undefined, s: ConvRefShape): Float64Array {
  const z = conv2dPreactivationRef(x, w, b, s);
  if (s.activation === 'relu') for (let i = 0; i < z.length; i++) z[i] = Math.max(0, z[i]);
  if (s.activation === 'relu6') for (let i = 0; i < z.length; i++) z[i] = Math.min(Math.max(0, z[i]), 6);
  return z;
}

/**
 * Gradients of a loss L given dy = dL/dy, where y is the forward output: Keras's ReLU gradient
 * passes dy where y > 0, ReLU6's (TF's Relu6Grad) where 0 < y < 6. db is the plain sum of dz
 * (meaningless without a bias). Input pixels no window covers get dx = 0.
 */
export function conv2dBackwardRef(
  x: ArrayLike<number>, w: ArrayLike<number>, dy: ArrayLike<number>, y: ArrayLike<number> | undefined, s: ConvRefShape,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const { outH, outW, padTop, padLeft } = convGeometry(s);
  const [kh, kw] = s.kernelSize;
  const [sh, sw] = s.strides ?? [1, 1];
  const { batch: N, height: H, width: W, inChannels: C, outChannels: F } = s;
  const dx = new Float64Array(N * H * W * C);
  const dw = new Float64Array(kh * kw * C * F);
  const db = new Float64Array(F);
  const dz = new Float64Array(N * outH * outW * F);
  for (let i = 0; i < dz.length; i++) {
    const yi = s.activation === 'linear' ? 0 : (y as ArrayLike<number>)[i];
    const pass = s.activation === 'linear' || (yi > 0 && (s.activation === 'relu' || yi < 6));
    dz[i] = pass ? dy[i] : 0;
  }
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < outH; oh++) {
      for (let ow = 0; ow < outW; ow++) {
        const o = ((n * outH + oh) * outW + ow) * F;
        for (let f = 0; f < F; f++) db[f] += dz[o + f];
        for (let ky = 0; ky < kh; ky++) {
          const ih = oh * sh + ky - padTop;
          if (ih < 0 || ih >= H) continue;
          for (let kx = 0; kx < kw; kx++) {
            const iw = ow * sw + kx - padLeft;
            if (iw < 0 || iw >= W) continue;
            for (let c = 0; c < C; c++) {
              const xi = ((n * H + ih) * W + iw) * C + c;
              const wo = ((ky * kw + kx) * C + c) * F;
              let g = 0;
              for (let f = 0; f < F; f++) {
                g += dz[o + f] * w[wo + f];
                dw[wo + f] += x[xi] * dz[o + f];
              }
              dx[xi] += g;
            }
          }
        }
      }
    }
  }
  return { dx, dw, db };
}
