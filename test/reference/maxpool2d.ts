/** MaxPooling2D, padding 'valid' or 'same' (as TF), NHWC, in float64 with naive loops. */
export interface PoolDims {
  batch: number; height: number; width: number; channels: number;
  poolSize: [number, number]; strides: [number, number];
  /** default 'valid' */
  padding?: 'valid' | 'same';
}

/** [out, padBefore] along one axis, as TF: 'same' pads max((out-1)*s + p - n, 0), half before. */
function axis(n: number, p: number, s: number, padding: 'valid' | 'same'): [number, number] {
  if (padding === 'valid') return [Math.floor((n - p) / s) + 1, 0];
  const out = Math.ceil(n / s);
  return [out, Math.floor(Math.max((out - 1) * s + p - n, 0) / 2)];
}

export function poolOutSize(d: PoolDims): [number, number] {
  return [axis(d.height, d.poolSize[0], d.strides[0], d.padding ?? 'valid')[0], axis(d.width, d.poolSize[1], d.strides[1], d.padding ?? 'valid')[0]];
}

/** [top, left] padding. */
export function poolPads(d: PoolDims): [number, number] {
  return [axis(d.height, d.poolSize[0], d.strides[0], d.padding ?? 'valid')[1], axis(d.width, d.poolSize[1], d.strides[1], d.padding ?? 'valid')[1]];
}

/**
 * Calls visit(o, window) for each output element o (NHWC order), with the x indices of its
 * window's real (unpadded) elements in row-major window order.
 */
export function forEachWindow(d: PoolDims, visit: (o: number, window: number[]) => void): void {
  const { batch: N, height: H, width: W, channels: C } = d;
  const [PH, PW] = d.poolSize;
  const [SH, SW] = d.strides;
  const [OH, OW] = poolOutSize(d);
  const [PT, PL] = poolPads(d);
  let o = 0;
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        for (let c = 0; c < C; c++) {
          const window: number[] = [];
          for (let ph = 0; ph < PH; ph++) {
            for (let pw = 0; pw < PW; pw++) {
              const h = oh * SH - PT + ph;
              const w = ow * SW - PL + pw;
              if (h >= 0 && h < H && w >= 0 && w < W) window.push(((n * H + h) * W + w) * C + c);
            }
          }
          visit(o++, window);
        }
      }
    }
  }
}

/** For each output element, the x index of its window's first maximum in row-major order. */
function argmaxes(x: ArrayLike<number>, d: PoolDims): Int32Array {
  const [OH, OW] = poolOutSize(d);
  const at = new Int32Array(d.batch * OH * OW * d.channels);
  forEachWindow(d, (o, window) => {
    let best = -1; // padded positions are not in `window`: they never win (as -inf)
    for (const i of window) if (best < 0 || x[i] > x[best]) best = i;
    at[o] = best;
  });
  return at;
}

export function maxPoolForwardRef(x: ArrayLike<number>, d: PoolDims): Float64Array {
  const at = argmaxes(x, d);
  return Float64Array.from(at, (i) => x[i]);
}

/** dx: each dy element added to its window's first maximum; 0 elsewhere. */
export function maxPoolBackwardRef(x: ArrayLike<number>, dy: ArrayLike<number>, d: PoolDims): Float64Array {
  const at = argmaxes(x, d);
  const dx = new Float64Array(d.batch * d.height * d.width * d.channels);
  for (let o = 0; o < at.length; o++) dx[at[o]] += dy[o];
  return dx;
}
