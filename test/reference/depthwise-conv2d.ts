/**
 * Keras DepthwiseConv2D in float64 with naive loops (NHWC, depthwise_kernel [kh, kw, C, M],
 * output channel c * M + m, TF 'same' / 'valid' padding), independent of the WGSL.
 */
export interface DepthwiseRefShape {
  batch: number; height: number; width: number; channels: number;
  kernelSize: [number, number]; strides: [number, number];
  padding: 'same' | 'valid';
  depthMultiplier: number;
  useBias: boolean;
  activation: 'linear' | 'relu' | 'relu6';
}

/** TF: 'same' out = ceil(in / s), total pad max((out - 1) * s + k - in, 0), the smaller half first. */
export function depthwiseGeometry(s: DepthwiseRefShape): { outH: number; outW: number; padTop: number; padLeft: number } {
  const dim = (n: number, k: number, st: number): [number, number] => {
    if (s.padding === 'valid') return [Math.floor((n - k) / st) + 1, 0];
    const out = Math.ceil(n / st);
    return [out, Math.floor(Math.max((out - 1) * st + k - n, 0) / 2)];
  };
  const [outH, padTop] = dim(s.height, s.kernelSize[0], s.strides[0]);
  const [outW, padLeft] = dim(s.width, s.kernelSize[1], s.strides[1]);
  return { outH, outW, padTop, padLeft };
}

/**
 * Calls f(xIndex, wIndex, yIndex) for every product x * w contributing to an output: the one
 * loop nest forward and backward share, so they cannot disagree on the geometry.
 */
function eachProduct(s: DepthwiseRefShape, f: (xi: number, wi: number, yi: number) => void): void {
  const { outH, outW, padTop, padLeft } = depthwiseGeometry(s);
  const { batch: N, height: H, width: W, channels: C, depthMultiplier: M } = s;
  const [KH, KW] = s.kernelSize;
  const [SH, SW] = s.strides;
  const CO = C * M;
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < outH; oh++) {
      for (let ow = 0; ow < outW; ow++) {
        for (let ky = 0; ky < KH; ky++) {
          const ih = oh * SH + ky - padTop;
          if (ih < 0 || ih >= H) continue;
          for (let kx = 0; kx < KW; kx++) {
            const iw = ow * SW + kx - padLeft;
            if (iw < 0 || iw >= W) continue;
            for (let c = 0; c < C; c++) {
              for (let m = 0; m < M; m++) {
                const co = c * M + m;
                f(((n * H + ih) * W + iw) * C + c, ((ky * KW + kx) * C + c) * M + m, ((n * outH + oh) * outW + ow) * CO + co);
              }
            }
          }
        }
      }
    }
  }
}

export function depthwiseOutputSize(s: DepthwiseRefShape): number {
  const { outH, outW } = depthwiseGeometry(s);
  return s.batch * outH * outW * s.channels * s.depthMultiplier;
}

/** y = act(depthwise(x, w) + b); b is ignored without useBias. */
export function depthwiseConv2dRef(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | undefined, s: DepthwiseRefShape): Float64Array {
  const CO = s.channels * s.depthMultiplier;
  const z = new Float64Array(depthwiseOutputSize(s));
  if (s.useBias) for (let i = 0; i < z.length; i++) z[i] = (b as ArrayLike<number>)[i % CO];
  eachProduct(s, (xi, wi, yi) => { z[yi] += x[xi] * w[wi]; });
  if (s.activation === 'relu') for (let i = 0; i < z.length; i++) z[i] = Math.max(0, z[i]);
  if (s.activation === 'relu6') for (let i = 0; i < z.length; i++) z[i] = Math.min(Math.max(0, z[i]), 6);
  return z;
}

/**
 * Gradients given dy = dL/dy and the forward output y (Keras: relu passes dy where y > 0,
 * relu6 where 0 < y < 6). db is all zeros without useBias.
 */
export function depthwiseConv2dBackwardRef(
  x: ArrayLike<number>, w: ArrayLike<number>, dy: ArrayLike<number>, y: ArrayLike<number> | undefined, s: DepthwiseRefShape,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const CO = s.channels * s.depthMultiplier;
  const dz = Float64Array.from(dy, (g, i) => {
    if (s.activation === 'linear') return g;
    const v = (y as ArrayLike<number>)[i];
    return (s.activation === 'relu' ? v > 0 : v > 0 && v < 6) ? g : 0;
  });
  const dx = new Float64Array(s.batch * s.height * s.width * s.channels);
  const dw = new Float64Array(s.kernelSize[0] * s.kernelSize[1] * CO);
  const db = new Float64Array(CO);
  if (s.useBias) for (let i = 0; i < dz.length; i++) db[i % CO] += dz[i];
  eachProduct(s, (xi, wi, yi) => {
    dx[xi] += dz[yi] * w[wi];
    dw[wi] += x[xi] * dz[yi];
  });
  return { dx, dw, db };
}
