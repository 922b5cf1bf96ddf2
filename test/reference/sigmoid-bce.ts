/** Binary cross-entropy of one logit z against label y, in float64 (Keras's from-logits form). */
export function bceRef(z: number, y: number): number {
  return Math.max(z, 0) - z * y + Math.log1p(Math.exp(-Math.abs(z)));
}

/** sigmoid(z) in float64, without overflow for large |z|. */
export function sigmoidRef(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/**
 * sigmoid(z) - y in float64, without the cancellation of 1 / (1 + e^-z) - 1 when z is large
 * and y = 1, so tiny gradients can be checked with a relative tolerance.
 */
export function sigmoidMinusLabelRef(z: number, y: number): number {
  const t = Math.exp(-Math.abs(z));
  const q = t / (1 + t); // sigmoid(-|z|)
  return z >= 0 ? (1 - y) - q : q - y;
}

/**
 * Batch-mean loss, gradient of it with respect to each logit, and binary accuracy. With
 * per-example weights w (Keras 3 sample_weight, reduction 'sum_over_batch_size'): loss =
 * sum(w loss) / n, dlogits = w (sigmoid(z) - y) / n, acc = sum(w correct) / sum(w) (0 when
 * sum(w) = 0); lossSum, correct and weightSum are the weighted sums (w = 1 without weights).
 */
export function sigmoidBceRef(z: ArrayLike<number>, y: ArrayLike<number>, w?: ArrayLike<number>): {
  loss: number; dlogits: Float64Array; acc: number; lossSum: number; correct: number; weightSum: number;
} {
  const n = z.length;
  let lossSum = 0;
  let correct = 0;
  let weightSum = 0;
  const dlogits = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const wi = w ? w[i] : 1;
    lossSum += wi * bceRef(z[i], y[i]);
    dlogits[i] = (wi * sigmoidMinusLabelRef(z[i], y[i])) / n;
    if (y[i] === (sigmoidRef(z[i]) > 0.5 ? 1 : 0)) correct += wi;
    weightSum += wi;
  }
  return { loss: lossSum / n, dlogits, acc: weightSum > 0 ? correct / weightSum : 0, lossSum, correct, weightSum };
}

/** Batch-mean (weighted: sum(w loss) / n) loss only (for finite differences). */
export function meanBceRef(z: ArrayLike<number>, y: ArrayLike<number>, w?: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < z.length; i++) s += (w ? w[i] : 1) * bceRef(z[i], y[i]);
  return s / z.length;
}
