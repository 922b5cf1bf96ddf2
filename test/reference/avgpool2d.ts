/**
 * AveragePooling2D, padding 'valid' or 'same', NHWC, in float64 with naive loops. 'same'
 * divides each window by its count of real (unpadded) elements, as TF/Keras.
 */
import { forEachWindow, poolOutSize, type PoolDims } from './maxpool2d.ts';

export function avgPoolForwardRef(x: ArrayLike<number>, d: PoolDims): Float64Array {
  const [OH, OW] = poolOutSize(d);
  const y = new Float64Array(d.batch * OH * OW * d.channels);
  forEachWindow(d, (o, window) => {
    let sum = 0;
    for (const i of window) sum += x[i];
    y[o] = sum / window.length;
  });
  return y;
}

/** dx: each dy element spread evenly over its window's real elements; 0 where none arrives. */
export function avgPoolBackwardRef(dy: ArrayLike<number>, d: PoolDims): Float64Array {
  const dx = new Float64Array(d.batch * d.height * d.width * d.channels);
  forEachWindow(d, (o, window) => {
    for (const i of window) dx[i] += dy[o] / window.length;
  });
  return dx;
}
