import type { Gpu, GpuOp } from '../gpu/index.ts';
import { BinaryConfusionKernel, TopKKernel, type MetricBuffers } from '../kernels/metrics.ts';
import type { LossName } from './plan.ts';

/**
 * compile()'s stateful metrics beyond accuracy (Keras 3 semantics), accumulated on the GPU
 * from the head's logits. Accuracy ('acc', 'accuracy', 'binary_accuracy', ...) comes from the
 * loss kernels and is not handled here.
 */

/** One metric's GPU kernel, built for a plan's batch size. */
export interface MetricKernel {
  /** Adds this batch into b.counts (never cleared by the kernel: zero it per epoch). */
  accumulate(b: MetricBuffers): GpuOp;
  destroy(): void;
}

export interface MetricSpec {
  /** The Keras log key ('auc', 'precision', 'recall', 'top_k_categorical_accuracy', ...). */
  name: string;
  /** Floats of the accumulator buffer the model owns for this metric. */
  floats: number;
  createKernel(gpu: Gpu, batch: number, label: string): Promise<MetricKernel>;
  /** The metric's value from the accumulator read back (Keras's result()). */
  result(counts: Float32Array): number;
}

/** Keras's AUC() default: 200 thresholds. */
export const AUC_NUM_THRESHOLDS = 200;
/** Keras's Precision() / Recall() default threshold. */
export const DEFAULT_THRESHOLD = 0.5;
/** TopKCategoricalAccuracy() / SparseTopKCategoricalAccuracy() default k. */
export const DEFAULT_TOP_K = 5;

/**
 * Keras's AUC thresholds: (num_thresholds - 2) evenly spaced in (0, 1), plus -epsilon and
 * 1 + epsilon at the ends so predictions of exactly 0 and 1 fall inside.
 */
export function aucThresholds(numThresholds = AUC_NUM_THRESHOLDS): number[] {
  if (!Number.isInteger(numThresholds) || numThresholds <= 1) {
    throw new Error(`AUC: num_thresholds must be an integer > 1, got ${numThresholds}`);
  }
  const inner = Array.from({ length: numThresholds - 2 }, (_, i) => ((i + 1) * 1.0) / (numThresholds - 1));
  return [0 - 1e-7, ...inner, 1 + 1e-7];
}

/** tf / keras ops.divide_no_nan: 0 where the denominator is 0. */
export function divideNoNan(x: number, y: number): number {
  return y === 0 ? 0 : x / y;
}

/** Precision tp / (tp + fp) at the first threshold of a confusion accumulator. */
export function precisionResult(counts: Float32Array): number {
  return divideNoNan(counts[0], counts[0] + counts[1]);
}

/** Recall tp / (tp + fn) at the first threshold of a confusion accumulator. */
export function recallResult(counts: Float32Array): number {
  return divideNoNan(counts[0], counts[0] + counts[3]);
}

/**
 * Keras's AUC.result() for curve 'ROC', summation 'interpolation': with recall_j =
 * tp / (tp + fn) and fpr_j = fp / (fp + tn) (0 where undefined), the trapezoids
 * sum_j (fpr_j - fpr_{j+1}) * (recall_j + recall_{j+1}) / 2. In float64 (Keras: float32).
 */
export function aucResult(counts: Float32Array): number {
  const t = counts.length / 4;
  const recall = (j: number) => divideNoNan(counts[4 * j], counts[4 * j] + counts[4 * j + 3]);
  const fpr = (j: number) => divideNoNan(counts[4 * j + 1], counts[4 * j + 1] + counts[4 * j + 2]);
  let sum = 0;
  for (let j = 0; j + 1 < t; j++) sum += (fpr(j) - fpr(j + 1)) * ((recall(j) + recall(j + 1)) / 2);
  return sum;
}

/** A MeanMetricWrapper's result: weighted hits / weight sum, 0 when no weight was seen. */
export function meanResult(counts: Float32Array): number {
  return divideNoNan(counts[0], counts[1]);
}

type Loss = LossName;

interface Entry {
  /** The log key. */
  name: string;
  /** Names compile() accepts for it: Keras's function / snake-case and class names. */
  aliases: string[];
  losses: Loss[];
  spec(classes: number): MetricSpec;
}

function confusion(name: string, thresholds: number[], result: (c: Float32Array) => number): MetricSpec {
  return {
    name,
    floats: 4 * thresholds.length,
    createKernel: (gpu, batch, label) => BinaryConfusionKernel.create(gpu, { batch, thresholds, label: `${label} ${name}` }),
    result,
  };
}

function topK(name: string, classes: number, labels: 'onehot' | 'sparse'): MetricSpec {
  return {
    name,
    floats: 2,
    createKernel: (gpu, batch, label) => TopKKernel.create(gpu, { batch, classes, k: DEFAULT_TOP_K, labels, label: `${label} ${name}` }),
    result: meanResult,
  };
}

const ENTRIES: Entry[] = [
  { name: 'auc', aliases: ['auc', 'AUC'], losses: ['binary_crossentropy'], spec: () => confusion('auc', aucThresholds(), aucResult) },
  { name: 'precision', aliases: ['precision', 'Precision'], losses: ['binary_crossentropy'], spec: () => confusion('precision', [DEFAULT_THRESHOLD], precisionResult) },
  { name: 'recall', aliases: ['recall', 'Recall'], losses: ['binary_crossentropy'], spec: () => confusion('recall', [DEFAULT_THRESHOLD], recallResult) },
  {
    name: 'top_k_categorical_accuracy',
    aliases: ['top_k_categorical_accuracy', 'TopKCategoricalAccuracy'],
    losses: ['categorical_crossentropy'],
    spec: (classes) => topK('top_k_categorical_accuracy', classes, 'onehot'),
  },
  {
    name: 'sparse_top_k_categorical_accuracy',
    aliases: ['sparse_top_k_categorical_accuracy', 'SparseTopKCategoricalAccuracy'],
    losses: ['sparse_categorical_crossentropy'],
    spec: (classes) => topK('sparse_top_k_categorical_accuracy', classes, 'sparse'),
  },
];

const LOSSES: Loss[] = ['binary_crossentropy', 'categorical_crossentropy', 'sparse_categorical_crossentropy'];

/** The accuracy names the loss kernels compute for `loss` ('acc' resolves by the loss, as in Keras). */
export function accuracyNames(loss: Loss): string[] {
  const own = loss === 'binary_crossentropy' ? ['binary_accuracy', 'BinaryAccuracy']
    : loss === 'categorical_crossentropy' ? ['categorical_accuracy', 'CategoricalAccuracy']
    : ['sparse_categorical_accuracy', 'SparseCategoricalAccuracy'];
  return ['acc', 'accuracy', ...own];
}

/** Every metric name compile() accepts with `loss`. */
export function metricNames(loss: Loss): string[] {
  return [...accuracyNames(loss), ...ENTRIES.filter((e) => e.losses.includes(loss)).flatMap((e) => e.aliases)];
}

/**
 * The GPU metrics for compile()'s `metrics` list, in its order. Accuracy names are skipped (the
 * loss kernels report them); names that do not fit the loss / head, or that are unknown, are
 * an error that lists the valid names. `classes`: the head's units (softmax heads).
 */
export function resolveMetrics(names: readonly string[], loss: Loss, classes: number): MetricSpec[] {
  if (!LOSSES.includes(loss)) throw new Error(`metrics: loss '${String(loss)}' is not supported (use one of ${LOSSES.join(', ')})`);
  if (!Array.isArray(names)) throw new Error(`compile: metrics must be an array of names, e.g. ['acc', 'auc'], got ${String(names)}`);
  const valid = metricNames(loss);
  const accuracies = accuracyNames(loss);
  const specs: MetricSpec[] = [];
  const seen = new Map<string, string>();
  for (const n of names) {
    if (typeof n === 'string' && accuracies.includes(n)) continue;
    const entry = typeof n === 'string' ? ENTRIES.find((e) => e.aliases.includes(n)) : undefined;
    if (!entry) {
      throw new Error(`compile: metric ${JSON.stringify(n)} is not supported; with ${loss} use ${valid.map((v) => `'${v}'`).join(', ')}`);
    }
    if (!entry.losses.includes(loss)) {
      const fits = entry.losses.join(' or ');
      throw new Error(`compile: metric '${n}' needs loss ${fits} (its head and labels), but the model is compiled with ${loss}; with ${loss} use ${valid.map((v) => `'${v}'`).join(', ')}`);
    }
    const earlier = seen.get(entry.name);
    if (earlier !== undefined) throw new Error(`compile: metrics list '${entry.name}' twice ('${earlier}' and '${n}'); each log key must be unique, remove one`);
    seen.set(entry.name, n);
    if (entry.name.includes('top_k') && (!Number.isInteger(classes) || classes < 1)) {
      throw new Error(`compile: metric '${n}' needs the head's number of classes, an integer >= 1, got ${classes}`);
    }
    specs.push(entry.spec(classes));
  }
  return specs;
}
