/** Plain float64 conv2d (stride 1, NHWC, HWIO weights, TF 'same' / 'valid'), independent of the WGSL. */
export interface ConvRefShape {
  batch: number;
  height: number;
  width: number;
  inChannels: number;
  outChannels: number;
  kernelSize: [number, number];
  padding: 'same' | 'valid';
  activation: 'relu' | 'linear';
}

export function convGeometry(s: ConvRefShape): { outH: number; outW: number; padTop: number; padLeft: number } {
  const [kh, kw] = s.kernelSize;
  if (s.padding === 'same') {
    // TF: total padding k - 1, the smaller half on top / left.
    return { outH: s.height, outW: s.width, padTop: Math.floor((kh - 1) / 2), padLeft: Math.floor((kw - 1) / 2) };
  }
  return { outH: s.height - kh + 1, outW: s.width - kw + 1, padTop: 0, padLeft: 0 };
}

/** Pre-activation z = conv(x, w) + b, [N, outH, outW, Cout]. */
export function conv2dPreactivationRef(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number>, s: ConvRefShape): Float64Array {
  const { outH, outW, padTop, padLeft } = convGeometry(s);
  const [kh, kw] = s.kernelSize;
  const { batch: N, height: H, width: W, inChannels: C, outChannels: F } = s;
  const z = new Float64Array(N * outH * outW * F);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < outH; oh++) {
      for (let ow = 0; ow < outW; ow++) {
        const o = ((n * outH + oh) * outW + ow) * F;
        for (let f = 0; f < F; f++) z[o + f] = b[f];
        for (let ky = 0; ky < kh; ky++) {
          const ih = oh + ky - padTop;
          if (ih < 0 || ih >= H) continue;
          for (let kx = 0; kx < kw; kx++) {
            const iw = ow + kx - padLeft;
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
export function conv2dRef(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number>, s: ConvRefShape): Float64Array {
  const z = conv2dPreactivationRef(x, w, b, s);
  if (s.activation === 'relu') for (let i = 0; i < z.length; i++) z[i] = Math.max(0, z[i]);
  return z;
}

/**
 * Gradients of a loss L given dy = dL/dy, where y is the forward output: Keras's ReLU gradient
 * passes dy where y > 0.
 */
export function conv2dBackwardRef(
  x: ArrayLike<number>, w: ArrayLike<number>, dy: ArrayLike<number>, y: ArrayLike<number> | undefined, s: ConvRefShape,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const { outH, outW, padTop, padLeft } = convGeometry(s);
  const [kh, kw] = s.kernelSize;
  const { batch: N, height: H, width: W, inChannels: C, outChannels: F } = s;
  const dx = new Float64Array(N * H * W * C);
  const dw = new Float64Array(kh * kw * C * F);
  const db = new Float64Array(F);
  const dz = new Float64Array(N * outH * outW * F);
  for (let i = 0; i < dz.length; i++) {
    dz[i] = s.activation === 'relu' ? ((y as ArrayLike<number>)[i] > 0 ? dy[i] : 0) : dy[i];
  }
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < outH; oh++) {
      for (let ow = 0; ow < outW; ow++) {
        const o = ((n * outH + oh) * outW + ow) * F;
        for (let f = 0; f < F; f++) db[f] += dz[o + f];
        for (let ky = 0; ky < kh; ky++) {
          const ih = oh + ky - padTop;
          if (ih < 0 || ih >= H) continue;
          for (let kx = 0; kx < kw; kx++) {
            const iw = ow + kx - padLeft;
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
