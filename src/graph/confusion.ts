/**
 * The confusion matrix of a trained model on a flow (the validation images): model.predict on
 * each of one epoch's batches, the predicted class by argmax for a softmax head and by p > 0.5 for
 * a sigmoid head, and each class's precision and recall. Platform-free.
 */
import type { Model } from './model.ts';

/** What confusionMatrix reads of a flow (a DirectoryIterator, unshuffled or not): batches with their sample indices, and each sample's class. */
export interface LabelledFlow {
  [Symbol.asyncIterator](): AsyncIterator<{ x: Float32Array; indices: ArrayLike<number> }>;
  readonly classes: ArrayLike<number>;
  readonly samples: number;
}

export interface ConfusionMatrix {
  classes: string[];
  /** counts[true class][predicted class] */
  counts: number[][];
  /** per class: of the images predicted as it, the share that are it (NaN when none was predicted) */
  precision: number[];
  /** per class: of its images, the share predicted as it (NaN when it has none) */
  recall: number[];
  /** images counted (the flow's samples) */
  total: number;
  accuracy: number;
}

/** Predicted class of each image from predict()'s probabilities: k = 1 is a sigmoid head. */
export function predictedClasses(probs: Float32Array, k: number): Int32Array {
  const n = probs.length / Math.max(k, 1);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (k === 1) {
      out[i] = probs[i] > 0.5 ? 1 : 0;
      continue;
    }
    let best = 0;
    for (let j = 1; j < k; j++) if (probs[i * k + j] > probs[i * k + best]) best = j;
    out[i] = best;
  }
  return out;
}

/** Tallies true against predicted classes; precision and recall per class. */
export function confusionFrom(truth: ArrayLike<number>, predicted: ArrayLike<number>, classes: string[]): ConfusionMatrix {
  if (truth.length !== predicted.length) throw new Error(`confusion matrix: ${truth.length} labels but ${predicted.length} predictions`);
  const c = classes.length;
  const counts = Array.from({ length: c }, () => new Array<number>(c).fill(0));
  for (let i = 0; i < truth.length; i++) {
    const t = truth[i];
    const p = predicted[i];
    if (!(t >= 0 && t < c && p >= 0 && p < c)) throw new Error(`confusion matrix: image ${i} has class ${t} and prediction ${p}; there are ${c} classes`);
    counts[t][p]++;
  }
  const precision = classes.map((_, j) => {
    const predictedAs = counts.reduce((a, row) => a + row[j], 0);
    return predictedAs ? counts[j][j] / predictedAs : NaN;
  });
  const recall = classes.map((_, i) => {
    const of = counts[i].reduce((a, v) => a + v, 0);
    return of ? counts[i][i] / of : NaN;
  });
  const correct = classes.reduce((a, _, i) => a + counts[i][i], 0);
  return { classes, counts, precision, recall, total: truth.length, accuracy: truth.length ? correct / truth.length : NaN };
}

/**
 * Runs the model over one epoch of `flow` (every image once: an epoch is a permutation) and tallies
 * the predictions against the flow's labels. For binary and categorical flows.
 */
export async function confusionMatrix(model: Model, flow: LabelledFlow, classes: string[]): Promise<ConfusionMatrix> {
  const k = model.outputs.shape.reduce((a, d) => a * d, 1); // the shape leaves the batch out
  const truth: number[] = [];
  const predicted: number[] = [];
  for await (const batch of flow) {
    const probs = await model.predict(batch.x, { batchSize: batch.indices.length });
    predicted.push(...predictedClasses(probs, k));
    for (const idx of Array.from(batch.indices)) truth.push(flow.classes[idx]);
  }
  if (truth.length !== flow.samples) throw new Error(`confusion matrix: the flow gave ${truth.length} images in one epoch, expected ${flow.samples}`);
  return confusionFrom(truth, predicted, classes);
}
