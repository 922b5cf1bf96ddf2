/** Keras Add and gradient accumulation in float64. */
export function addRef(xs: ArrayLike<number>[]): Float64Array {
  const y = new Float64Array(xs[0].length);
  for (const x of xs) for (let i = 0; i < y.length; i++) y[i] += x[i];
  return y;
}

/** y + x (what accumulate() leaves in y). */
export function accumulateRef(y: ArrayLike<number>, x: ArrayLike<number>): Float64Array {
  return Float64Array.from(y, (v, i) => v + x[i]);
}
