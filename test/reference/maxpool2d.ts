/** MaxPooling2D, padding 'valid', NHWC, in float64 with naive loops. */
export interface PoolDims {
  batch: number; height: number; width: number; channels: number;
  poolSize: [number, number]; strides: [number, number];
}

export function poolOutSize(d: PoolDims): [number, number] {
  return [Math.floor((d.height - d.poolSize[0]) / d.strides[0]) + 1, Math.floor((d.width - d.poolSize[1]) / d.strides[1]) + 1];
}

/** For each output element, the x index of its window's first maximum in row-major order. */
function argmaxes(x: ArrayLike<number>, d: PoolDims): Int32Array {
  const { batch: N, height: H, width: W, channels: C } = d;
  const [PH, PW] = d.poolSize;
  const [SH, SW] = d.strides;
  const [OH, OW] = poolOutSize(d);
  const at = new Int32Array(N * OH * OW * C);
  let o = 0;
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        for (let c = 0; c < C; c++) {
          let best = -1;
          for (let ph = 0; ph < PH; ph++) {
            for (let pw = 0; pw < PW; pw++) {
              const i = ((n * H + oh * SH + ph) * W + ow * SW + pw) * C + c;
              if (best < 0 || x[i] > x[best]) best = i;
            }
          }
          at[o++] = best;
        }
      }
    }
  }
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
