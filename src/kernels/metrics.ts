import type { Gpu, GpuOp, Pipeline } from '../gpu/index.ts';

/** The buffers one accumulate() reads and the accumulator it adds into. */
export interface MetricBuffers {
  /** The head's logits: batch floats (binary) or batch * classes (softmax, row-major). */
  logits: GPUBuffer;
  /** binary: batch floats 0/1; onehot: batch * classes floats; sparse: batch floats (class index). */
  labels: GPUBuffer;
  /** batch floats, each example's weight (class weights); null: every weight is 1. */
  weights: GPUBuffer | null;
  /** The accumulator; the kernel adds into it and never clears it (zero it per epoch). */
  counts: GPUBuffer;
}

const MAX_WG = 256;
// Counts are kept in f32 and stay exact below 2^24.
const MAX_EXACT = 1 << 24;
// Keras's backend.epsilon(): np.allclose's atol in is_evenly_distributed_thresholds.
const KERAS_EPSILON = 1e-7;

/** Workgroup size: a power of two (the tree reductions need one), no larger than `items` needs. */
function workgroupSize(gpu: Gpu, items: number): number {
  const max = Math.min(MAX_WG, gpu.limits.maxComputeInvocationsPerWorkgroup, gpu.limits.maxComputeWorkgroupSizeX);
  const cap = 2 ** Math.floor(Math.log2(max));
  return Math.min(cap, 2 ** Math.ceil(Math.log2(Math.max(1, items))));
}

function checkBatch(label: string, what: string, batch: number): void {
  if (!Number.isInteger(batch) || batch <= 0 || batch > MAX_EXACT) {
    throw new Error(`${label}: ${what} needs a batch that is an integer in [1, 2^24], got ${batch}`);
  }
}

/**
 * Keras's is_evenly_distributed_thresholds: at least 3 thresholds, each within
 * np.allclose(atol = 1e-7, rtol = 1e-5) of i / (T - 1). Keras then takes its bucketed
 * ("optimized") path, which decides by ceil(p * (T - 1)) rather than by p > threshold.
 */
export function isEvenlyDistributed(thresholds: readonly number[]): boolean {
  const n = thresholds.length;
  if (n < 3) return false;
  return thresholds.every((t, i) => {
    const even = Math.fround(i / (n - 1)); // np.arange(n, dtype=float32) / (n - 1), in float32
    return Math.abs(t - even) <= KERAS_EPSILON + 1e-5 * Math.abs(even);
  });
}

export interface BinaryConfusionShape {
  batch: number;
  /**
   * Thresholds on sigmoid(logit), e.g. [0.5] (Precision, Recall) or AUC's
   * [-1e-7, 1/199, ..., 198/199, 1 + 1e-7]. Evenly spaced ones (isEvenlyDistributed) are
   * applied with Keras's bucket rule, the others as p > threshold (in float32).
   */
  thresholds: readonly number[];
  label?: string;
}

/**
 * Weighted confusion counts of a single sigmoid unit at each threshold, as Keras's
 * update_confusion_matrix_variables adds them (formulas in shaders/metrics.wgsl).
 * counts holds 4 * T floats, threshold-major: counts[4 j + 0..3] = [tp, fp, tn, fn] at
 * thresholds[j]. One workgroup per threshold, each walking the batch.
 */
export class BinaryConfusionKernel {
  readonly batch: number;
  readonly thresholds: readonly number[];
  readonly label: string;
  /** True when Keras's bucket rule applies (evenly spaced thresholds). */
  readonly evenly: boolean;
  private readonly shape: GPUBuffer;
  private readonly thresholdBuffer: GPUBuffer;

  private constructor(
    private readonly gpu: Gpu,
    private readonly pipelines: { plain: Pipeline; weighted: Pipeline },
    shape: BinaryConfusionShape & { label: string },
  ) {
    const t = shape.thresholds;
    this.batch = shape.batch;
    this.thresholds = [...t];
    this.label = shape.label;
    this.evenly = isEvenlyDistributed(t);
    const eps = this.evenly && (t[0] < 0 || t[t.length - 1] > 1) ? 1 : 0;
    this.shape = gpu.uniform(`${this.label} metrics.confusion.shape`, new Uint32Array([shape.batch, t.length, this.evenly ? 1 : 0, eps]));
    this.thresholdBuffer = gpu.upload(`${this.label} metrics.thresholds`, Float32Array.from(t));
  }

  static async create(gpu: Gpu, shape: BinaryConfusionShape): Promise<BinaryConfusionKernel> {
    const label = shape.label ?? 'confusion';
    checkBatch(label, 'confusion counts', shape.batch);
    const t = shape.thresholds;
    const max = gpu.limits.maxComputeWorkgroupsPerDimension;
    if (!Array.isArray(t) || t.length === 0 || t.length > max) {
      throw new Error(`${label}: confusion counts need between 1 and ${max} thresholds, got ${Array.isArray(t) ? t.length : String(t)}`);
    }
    const bad = t.findIndex((x) => typeof x !== 'number' || !Number.isFinite(x));
    if (bad >= 0) throw new Error(`${label}: threshold ${bad} is ${String(t[bad])}; thresholds must be finite numbers (Keras takes them in [0, 1])`);
    const wg = workgroupSize(gpu, shape.batch);
    const [plain, weighted] = await Promise.all([
      gpu.pipeline('metrics', { entryPoint: 'confusion', constants: { WG: wg } }),
      gpu.pipeline('metrics', { entryPoint: 'confusion_weighted', constants: { WG: wg } }),
    ]);
    return new BinaryConfusionKernel(gpu, { plain, weighted }, { ...shape, label });
  }

  /** Floats the accumulator needs: 4 per threshold. */
  get floats(): number {
    return 4 * this.thresholds.length;
  }

  /** counts[4 j + 0..3] += this batch's weighted [tp, fp, tn, fn] at thresholds[j]. */
  accumulate(b: MetricBuffers): GpuOp {
    const p = b.weights ? this.pipelines.weighted : this.pipelines.plain;
    const resources: Record<string, { buffer: GPUBuffer; size: number } | GPUBuffer> = {
      shape: this.shape,
      logits: this.small('logits', b.logits, this.batch),
      labels: this.small('labels', b.labels, this.batch),
      thresholds: this.thresholdBuffer,
      counts: this.small('counts', b.counts, this.floats),
    };
    if (b.weights) resources.weights = this.small('weights', b.weights, this.batch);
    const group = this.gpu.bindGroup(p, resources, `${this.label} metrics.confusion`);
    return this.gpu.dispatch(`${this.label} metrics.confusion batch=${this.batch} thresholds=${this.thresholds.length}`, p, group, [this.thresholds.length]);
  }

  destroy(): void {
    this.gpu.destroyBuffer(this.shape);
    this.gpu.destroyBuffer(this.thresholdBuffer);
  }

  private small(name: string, buffer: GPUBuffer, floats: number): { buffer: GPUBuffer; size: number } {
    if (buffer.size < floats * 4) {
      throw new Error(`${this.label}: confusion counts need ${name} of at least ${floats} floats (${floats * 4} bytes) for batch ${this.batch} and ${this.thresholds.length} thresholds; got a ${buffer.size}-byte buffer '${buffer.label}'`);
    }
    return { buffer, size: floats * 4 };
  }
}

export interface TopKShape {
  batch: number;
  classes: number;
  k: number;
  /** 'onehot': labels are batch * classes floats; 'sparse': batch floats holding the class index. */
  labels: 'onehot' | 'sparse';
  label?: string;
}

/**
 * Keras's (sparse_)top_k_categorical_accuracy accumulated as a weighted mean: counts holds
 * 2 floats [sum of w_i * hit_i, sum of w_i]. Ranks the softmax probabilities (what a Keras
 * model ending in softmax outputs), so classes whose probabilities tie with the target's,
 * e.g. all underflowed to 0, count as in the top k, as TF's in_top_k counts them.
 */
export class TopKKernel {
  readonly batch: number;
  readonly classes: number;
  readonly k: number;
  readonly labels: 'onehot' | 'sparse';
  readonly label: string;
  readonly floats = 2;
  private readonly shape: GPUBuffer;

  private constructor(
    private readonly gpu: Gpu,
    private readonly pipelines: { plain: Pipeline; weighted: Pipeline },
    shape: Required<TopKShape>,
  ) {
    this.batch = shape.batch;
    this.classes = shape.classes;
    this.k = shape.k;
    this.labels = shape.labels;
    this.label = shape.label;
    this.shape = gpu.uniform(`${this.label} metrics.topk.shape`, new Uint32Array([shape.batch, shape.classes, shape.k, 0]));
  }

  static async create(gpu: Gpu, shape: TopKShape): Promise<TopKKernel> {
    const label = shape.label ?? 'top_k';
    const { batch, classes, k, labels } = shape;
    checkBatch(label, 'top-k accuracy', batch);
    if (!Number.isInteger(classes) || classes < 1 || classes > MAX_EXACT) {
      throw new Error(`${label}: top-k accuracy needs classes that is an integer in [1, 2^24], got ${classes}`);
    }
    if (!Number.isInteger(k) || k < 1 || k > 0xffffffff) throw new Error(`${label}: top-k accuracy needs k that is an integer >= 1, got ${k}`);
    if (labels !== 'onehot' && labels !== 'sparse') throw new Error(`${label}: top-k accuracy labels must be 'onehot' or 'sparse', got ${String(labels)}`);
    const bytes = batch * classes * 4;
    if (bytes > gpu.limits.maxStorageBufferBindingSize) {
      throw new Error(`${label}: logits of ${batch}x${classes} floats (${bytes} bytes) exceed this adapter's maxStorageBufferBindingSize of ${gpu.limits.maxStorageBufferBindingSize} bytes; use a smaller batch`);
    }
    const wg = workgroupSize(gpu, batch);
    const constants = { WG: wg, SPARSE: labels === 'sparse' ? 1 : 0 };
    const [plain, weighted] = await Promise.all([
      gpu.pipeline('metrics', { entryPoint: 'topk', constants }),
      gpu.pipeline('metrics', { entryPoint: 'topk_weighted', constants }),
    ]);
    return new TopKKernel(gpu, { plain, weighted }, { batch, classes, k, labels, label });
  }

  /** counts += [sum of w_i * (target_i in the top k), sum of w_i] over this batch. */
  accumulate(b: MetricBuffers): GpuOp {
    const p = b.weights ? this.pipelines.weighted : this.pipelines.plain;
    const resources: Record<string, { buffer: GPUBuffer; size: number } | GPUBuffer> = {
      shape: this.shape,
      logits: this.small('logits', b.logits, this.batch * this.classes),
      labels: this.small('labels', b.labels, this.labels === 'sparse' ? this.batch : this.batch * this.classes),
      counts: this.small('counts', b.counts, this.floats),
    };
    if (b.weights) resources.weights = this.small('weights', b.weights, this.batch);
    const group = this.gpu.bindGroup(p, resources, `${this.label} metrics.topk`);
    return this.gpu.dispatch(`${this.label} metrics.topk batch=${this.batch} classes=${this.classes} k=${this.k} labels=${this.labels}`, p, group, [1]);
  }

  destroy(): void {
    this.gpu.destroyBuffer(this.shape);
  }

  private small(name: string, buffer: GPUBuffer, floats: number): { buffer: GPUBuffer; size: number } {
    if (buffer.size < floats * 4) {
      throw new Error(`${this.label}: top-k accuracy needs ${name} of at least ${floats} floats (${floats * 4} bytes) for batch ${this.batch}, classes ${this.classes}, ${this.labels} labels; got a ${buffer.size}-byte buffer '${buffer.label}'`);
    }
    return { buffer, size: floats * 4 };
  }
}
