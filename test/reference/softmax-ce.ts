/**
 * Softmax + categorical cross-entropy in float64, from the logits (tf.keras from_logits form).
 * z is [batch, classes] row-major; labels are [batch, classes] weights ('onehot') or [batch]
 * class indices ('sparse').
 */

export type LabelKind = 'onehot' | 'sparse';

/** First index of the largest element (numpy / TF argmax on ties). */
export function argmaxRef(v: ArrayLike<number>, start = 0, n = v.length - start): number {
  let best = 0;
  for (let k = 1; k < n; k++) if (v[start + k] > v[start + best]) best = k;
  return best;
}

/** One label row as class weights (a sparse label becomes its one-hot row). */
function labelRow(y: ArrayLike<number>, kind: LabelKind, i: number, classes: number): Float64Array {
  const row = new Float64Array(classes);
  if (kind === 'sparse') row[y[i]] = 1;
  else for (let k = 0; k < classes; k++) row[k] = y[i * classes + k];
  return row;
}

/** Softmax of one row, and log(sum_k exp(z_k)) computed stably. */
export function softmaxRowRef(z: ArrayLike<number>, start: number, classes: number): { p: Float64Array; lse: number } {
  let m = -Infinity;
  for (let k = 0; k < classes; k++) m = Math.max(m, z[start + k]);
  const e = new Float64Array(classes);
  let s = 0;
  for (let k = 0; k < classes; k++) {
    e[k] = Math.exp(z[start + k] - m);
    s += e[k];
  }
  return { p: e.map((v) => v / s), lse: m + Math.log(s) };
}

/** Softmax of every row of z [batch, classes]. */
export function softmaxRef(z: ArrayLike<number>, classes: number): Float64Array {
  const batch = z.length / classes;
  const out = new Float64Array(z.length);
  for (let i = 0; i < batch; i++) out.set(softmaxRowRef(z, i * classes, classes).p, i * classes);
  return out;
}

/**
 * One example's loss sum_k y_k (lse - z_k). lse - z_k is formed as (m - z_k) + log1p(sum of the
 * other exponentials) so the tiny loss of a confident, correct prediction keeps its digits.
 */
export function exampleLossRef(z: ArrayLike<number>, start: number, classes: number, y: ArrayLike<number>): number {
  const a = argmaxRef(z, start, classes);
  const m = z[start + a];
  let t = 0;
  for (let k = 0; k < classes; k++) if (k !== a) t += Math.exp(z[start + k] - m);
  const lp = Math.log1p(t);
  let loss = 0;
  for (let k = 0; k < classes; k++) if (y[k] !== 0) loss += y[k] * ((m - z[start + k]) + lp);
  return loss;
}

/**
 * Batch-mean loss, its gradient with respect to each logit, and categorical accuracy. With
 * per-example weights w (Keras 3 sample_weight, reduction 'sum_over_batch_size'): loss =
 * sum(w loss) / batch, dlogits rows times w, acc = sum(w correct) / sum(w) (0 when sum(w) = 0);
 * lossSum, correct and weightSum are the weighted sums; `losses` stay unweighted.
 */
export function softmaxCeRef(z: ArrayLike<number>, y: ArrayLike<number>, classes: number, kind: LabelKind, w?: ArrayLike<number>): {
  loss: number; dlogits: Float64Array; acc: number; lossSum: number; correct: number; losses: Float64Array; weightSum: number;
} {
  const batch = z.length / classes;
  const dlogits = new Float64Array(z.length);
  const losses = new Float64Array(batch);
  let correct = 0;
  let lossSum = 0;
  let weightSum = 0;
  for (let i = 0; i < batch; i++) {
    const start = i * classes;
    const wi = w ? w[i] : 1;
    const yr = labelRow(y, kind, i, classes);
    losses[i] = exampleLossRef(z, start, classes, yr);
    // d/dz_k sum_j y_j (lse - z_j) = sum(y) p_k - y_k. Where p_k > 1/2 (one k at most), 1 - p_k
    // is taken as the sum of the other probabilities so p_k - 1 keeps its digits when tiny.
    const { p } = softmaxRowRef(z, start, classes);
    const sumY = yr.reduce((s, v) => s + v, 0);
    for (let k = 0; k < classes; k++) {
      if (p[k] > 0.5) {
        let rest = 0;
        for (let j = 0; j < classes; j++) if (j !== k) rest += p[j];
        dlogits[start + k] = (wi * ((sumY - yr[k]) - sumY * rest)) / batch;
      } else {
        dlogits[start + k] = (wi * (sumY * p[k] - yr[k])) / batch;
      }
    }
    const predicted = argmaxRef(z, start, classes);
    const truth = kind === 'sparse' ? y[i] : argmaxRef(yr);
    if (predicted === truth) correct += wi;
    lossSum += wi * losses[i];
    weightSum += wi;
  }
  return { loss: lossSum / batch, dlogits, acc: weightSum > 0 ? correct / weightSum : 0, lossSum, correct, losses, weightSum };
}

/** Batch-mean (weighted: sum(w loss) / batch) loss only (for finite differences). */
export function meanSoftmaxCeRef(z: ArrayLike<number>, y: ArrayLike<number>, classes: number, kind: LabelKind, w?: ArrayLike<number>): number {
  const batch = z.length / classes;
  let s = 0;
  for (let i = 0; i < batch; i++) s += (w ? w[i] : 1) * exampleLossRef(z, i * classes, classes, labelRow(y, kind, i, classes));
  return s / batch;
}
