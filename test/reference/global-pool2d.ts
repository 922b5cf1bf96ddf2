/** GlobalAveragePooling2D / GlobalMaxPooling2D, NHWC -> [N, C], in float64 with naive loops. */
export interface GlobalPoolDims { batch: number; height: number; width: number; channels: number; mode: 'avg' | 'max' }

/** For each (n, c), the x index of the first maximum over positions in row-major order. */
function argmaxes(x: ArrayLike<number>, d: GlobalPoolDims): Int32Array {
  const { batch: N, channels: C } = d;
  const HW = d.height * d.width;
  const at = new Int32Array(N * C);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      let best = n * HW * C + c;
      for (let p = 0; p < HW; p++) {
        const i = (n * HW + p) * C + c;
        if (x[i] > x[best]) best = i;
      }
      at[n * C + c] = best;
    }
  }
  return at;
}

export function globalPoolForwardRef(x: ArrayLike<number>, d: GlobalPoolDims): Float64Array {
  const { batch: N, channels: C } = d;
  const HW = d.height * d.width;
  if (d.mode === 'max') return Float64Array.from(argmaxes(x, d), (i) => x[i]);
  const y = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    for (let p = 0; p < HW; p++) for (let c = 0; c < C; c++) y[n * C + c] += x[(n * HW + p) * C + c];
  }
  return y.map((v) => v / HW);
}

/** avg: dy / (H*W) at every position; max: dy at the first maximum, 0 elsewhere. */
export function globalPoolBackwardRef(x: ArrayLike<number>, dy: ArrayLike<number>, d: GlobalPoolDims): Float64Array {
  const { batch: N, channels: C } = d;
  const HW = d.height * d.width;
  const dx = new Float64Array(N * HW * C);
  if (d.mode === 'max') {
    const at = argmaxes(x, d);
    for (let o = 0; o < at.length; o++) dx[at[o]] = dy[o];
    return dx;
  }
  for (let n = 0; n < N; n++) {
    for (let p = 0; p < HW; p++) for (let c = 0; c < C; c++) dx[(n * HW + p) * C + c] = dy[n * C + c] / HW;
  }
  return dx;
}
