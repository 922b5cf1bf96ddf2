/** Keras SGD in float64: returns the updated parameters and velocities. */
export function sgdRef(
  param: ArrayLike<number>, grad: ArrayLike<number>, velocity: ArrayLike<number>,
  o: { lr: number; momentum: number; nesterov: boolean },
): { param: Float64Array; velocity: Float64Array } {
  const p = Float64Array.from(param);
  const v = Float64Array.from(velocity);
  for (let i = 0; i < p.length; i++) {
    const g = grad[i];
    if (o.momentum === 0) {
      p[i] -= o.lr * g;
      continue;
    }
    v[i] = o.momentum * v[i] - o.lr * g;
    p[i] += o.nesterov ? o.momentum * v[i] - o.lr * g : v[i];
  }
  return { param: p, velocity: v };
}
