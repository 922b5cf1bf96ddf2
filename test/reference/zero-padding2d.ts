/** ZeroPadding2D, NHWC, in float64 with naive loops. */
export interface PadDims {
  batch: number; height: number; width: number; channels: number;
  padding: [[number, number], [number, number]];
}

export function padOutSize(d: PadDims): [number, number] {
  const [[top, bottom], [left, right]] = d.padding;
  return [d.height + top + bottom, d.width + left + right];
}

export function zeroPadForwardRef(x: ArrayLike<number>, d: PadDims): Float64Array {
  const { batch: N, height: H, width: W, channels: C } = d;
  const [[top], [left]] = d.padding;
  const [OH, OW] = padOutSize(d);
  const y = new Float64Array(N * OH * OW * C);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const h = oh - top;
        const w = ow - left;
        if (h < 0 || h >= H || w < 0 || w >= W) continue;
        for (let c = 0; c < C; c++) y[((n * OH + oh) * OW + ow) * C + c] = x[((n * H + h) * W + w) * C + c];
      }
    }
  }
  return y;
}

/** dx = dy without the border. */
export function zeroPadBackwardRef(dy: ArrayLike<number>, d: PadDims): Float64Array {
  const { batch: N, height: H, width: W, channels: C } = d;
  const [[top], [left]] = d.padding;
  const [OH, OW] = padOutSize(d);
  const dx = new Float64Array(N * H * W * C);
  for (let n = 0; n < N; n++) {
    for (let h = 0; h < H; h++) {
      for (let w = 0; w < W; w++) {
        for (let c = 0; c < C; c++) dx[((n * H + h) * W + w) * C + c] = dy[((n * OH + h + top) * OW + w + left) * C + c];
      }
    }
  }
  return dx;
}
