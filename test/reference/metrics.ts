/**
 * Keras 3's Precision / Recall / AUC / top-k accuracy in float64, straight from probabilities and
 * labels (keras/src/metrics/metrics_utils.py, confusion_metrics.py, accuracy_metrics.py), with
 * no code shared with the kernels.
 */

/**
 * How a prediction is called positive at threshold j: 'compare' is p > t_j; 'buckets' is
 * Keras's evenly spaced path, bucket(p) = ceil(p (T - 1)) - 1 (made >= 0 with epsilon ends),
 * positive where bucket(p) >= j.
 */
export type ThresholdRule = { kind: 'compare'; thresholds: readonly number[] } | { kind: 'buckets'; count: number; epsilon: boolean };

function positive(p: number, j: number, rule: ThresholdRule): boolean {
  if (rule.kind === 'compare') return p > rule.thresholds[j];
  const clipped = Math.min(1, Math.max(0, p));
  let bucket = Math.ceil(clipped * (rule.count - 1)) - 1;
  if (rule.epsilon) bucket = Math.max(bucket, 0);
  return bucket >= j;
}

function ruleSize(rule: ThresholdRule): number {
  return rule.kind === 'compare' ? rule.thresholds.length : rule.count;
}

/**
 * Weighted [tp, fp, tn, fn] per threshold (threshold-major, 4 T values) over examples with
 * probabilities p, labels y (positive iff y != 0) and weights w (null: 1).
 */
export function confusionRef(p: ArrayLike<number>, y: ArrayLike<number>, w: ArrayLike<number> | null, rule: ThresholdRule): Float64Array {
  const t = ruleSize(rule);
  const out = new Float64Array(4 * t);
  for (let j = 0; j < t; j++) {
    for (let i = 0; i < p.length; i++) {
      const wi = w ? w[i] : 1;
      const pos = positive(p[i], j, rule);
      const lab = y[i] !== 0;
      const slot = lab ? (pos ? 0 : 3) : (pos ? 1 : 2);
      out[4 * j + slot] += wi;
    }
  }
  return out;
}

const noNan = (x: number, y: number) => (y === 0 ? 0 : x / y);

/** ROC AUC by Keras's interpolation (trapezoids over the thresholds), in float64. */
export function aucFromCountsRef(c: ArrayLike<number>): number {
  const t = c.length / 4;
  const tpr: number[] = [];
  const fpr: number[] = [];
  for (let j = 0; j < t; j++) {
    const [tp, fp, tn, fn] = [c[4 * j], c[4 * j + 1], c[4 * j + 2], c[4 * j + 3]];
    tpr.push(noNan(tp, tp + fn));
    fpr.push(noNan(fp, fp + tn));
  }
  let area = 0;
  for (let j = 1; j < t; j++) area += (fpr[j - 1] - fpr[j]) * (tpr[j - 1] + tpr[j]) * 0.5;
  return area;
}

/** The exact (weighted) ROC AUC: P(p_pos > p_neg) + P(tie) / 2 over positive-negative pairs. */
export function mannWhitneyAuc(p: ArrayLike<number>, y: ArrayLike<number>, w: ArrayLike<number> | null = null): number {
  let num = 0;
  let pos = 0;
  let neg = 0;
  for (let i = 0; i < p.length; i++) {
    const wi = w ? w[i] : 1;
    if (y[i] !== 0) pos += wi;
    else neg += wi;
  }
  for (let i = 0; i < p.length; i++) {
    if (y[i] === 0) continue;
    for (let k = 0; k < p.length; k++) {
      if (y[k] !== 0) continue;
      const ww = (w ? w[i] * w[k] : 1);
      if (p[i] > p[k]) num += ww;
      else if (p[i] === p[k]) num += ww / 2;
    }
  }
  return noNan(num, pos * neg);
}

/** Keras's AUC thresholds count and its precision / recall from counts at threshold 0. */
export function precisionRef(c: ArrayLike<number>): number {
  return noNan(c[0], c[0] + c[1]);
}
export function recallRef(c: ArrayLike<number>): number {
  return noNan(c[0], c[0] + c[3]);
}

/**
 * Softmax probabilities of one row as float32 values (what a Keras model ending in softmax
 * outputs): ties among them, e.g. underflow to 0, are what in_top_k sees.
 */
export function softmaxF32Ref(z: ArrayLike<number>): number[] {
  let m = -Infinity;
  for (let k = 0; k < z.length; k++) m = Math.max(m, z[k]);
  let s = 0;
  for (let k = 0; k < z.length; k++) s += Math.exp(z[k] - m);
  return Array.from(z, (v) => Math.fround(Math.exp(v - m) / s));
}

/**
 * [sum w_i hit_i, sum w_i] of TF's in_top_k over rows: hit iff all probabilities are finite, the
 * target is a valid class and fewer than k classes have a strictly larger probability.
 * targets: class indices (already argmax'ed for one-hot labels).
 */
export function topKRef(z: ArrayLike<number>, classes: number, targets: ArrayLike<number>, k: number, w: ArrayLike<number> | null): [number, number] {
  let hits = 0;
  let total = 0;
  const rows = targets.length;
  for (let r = 0; r < rows; r++) {
    const wi = w ? w[r] : 1;
    total += wi;
    const p = softmaxF32Ref(Array.from({ length: classes }, (_, c) => z[r * classes + c]));
    const t = Math.trunc(targets[r]);
    if (!(t >= 0 && t < classes) || p.some((v) => !Number.isFinite(v))) continue;
    const greater = p.filter((v) => v > p[t]).length;
    if (greater < k) hits += wi;
  }
  return [hits, total];
}

/** First index of the row maximum (numpy / TF argmax). */
export function argmaxRows(y: ArrayLike<number>, classes: number): number[] {
  const out: number[] = [];
  for (let r = 0; r * classes < y.length; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (y[r * classes + c] > y[r * classes + best]) best = c;
    out.push(best);
  }
  return out;
}
