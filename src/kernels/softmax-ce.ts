import type { Gpu, GpuOp, Pipeline } from '../gpu/index.ts';

export interface SoftmaxCeShape {
  batch: number;
  classes: number;
  /**
   * 'onehot': labels are [batch, classes] floats, one row of class weights per example (one-hot
   * or soft; Keras categorical_crossentropy). 'sparse': labels are [batch] floats holding class
   * indices 0..classes-1 (Keras sparse_categorical_crossentropy).
   */
  labels: 'onehot' | 'sparse';
  label?: string;
  /** Also build the weighted pipelines now (else: await enableWeights() before passing weights). */
  weighted?: boolean;
}

const MAX_WG = 256;
// Class indices and counts are carried in f32 on the GPU, exact below 2^24.
const MAX_EXACT = 1 << 24;
// The bits of a quiet NaN, handed to the shader (WGSL has no NaN literal).
const NAN_BITS = 0x7fc00000;

interface Pipelines {
  train: Pipeline;
  evaluate: Pipeline;
  reduce: Pipeline;
  accumulate: Pipeline;
  probabilities: Pipeline;
}

/** Built on request: the weighted passes reuse `evaluate` (rows_loss) for the per-example pass. */
interface WeightedPipelines {
  train: Pipeline;
  reduce: Pipeline;
  accumulate: Pipeline;
}

/**
 * Fused softmax + categorical cross-entropy on logits z[batch, classes] (row-major), with
 * categorical accuracy; see shaders/softmax_ce.wgsl for the formulas. The loss is computed from
 * the logits (tf.keras from_logits=True form, stable log-softmax), not from clipped
 * probabilities as Keras does when the model ends in a softmax layer: no 1e-7 clipping.
 * A sparse label that is not an integer in [0, classes) makes the batch loss NaN (and that
 * example's dlogits row NaN), so the model's NaN guard stops training.
 *
 * Buffers: logits and dlogits hold batch * classes floats, labels batch * classes ('onehot') or
 * batch ('sparse'); stats holds 2 floats [mean loss, accuracy]; totals holds 3 floats
 * [loss sum, correct count, count] (the SigmoidBceKernel layout) and is never cleared by the
 * kernel (zero it at the start of an epoch).
 *
 * Optional `weights` (`batch` floats, Keras sample weights such as class weights; finite and
 * >= 0, which the kernel does not check) switch a pass to Keras 3's weighted form: loss =
 * sum(w loss) / batch (not / sum(w)), dlogits rows times w / batch, accuracy = sum(w correct) /
 * sum(w) (0 when every weight is 0). The weighted passes keep that batch's [sum w loss, sum w
 * correct, sum w] in the kernel, and accumulate({ weighted: true }) adds those to totals.
 * Without weights the pipelines and results are the unweighted ones; the weighted pipelines
 * are only built on request (shape.weighted or enableWeights()), so a model without class
 * weights compiles nothing more.
 */
export class SoftmaxCeKernel {
  readonly batch: number;
  readonly classes: number;
  readonly labels: 'onehot' | 'sparse';
  readonly label: string;
  private readonly shape: GPUBuffer;
  /** Per-example (loss, correct, bad label, 0), summed by reduce_stats. */
  private readonly rows: GPUBuffer;
  /**
   * Built by enableWeights(): the weighted pipelines and the last weighted pass's [sum w loss,
   * sum w correct, sum w, 0] (sums), read by the weighted accumulate.
   */
  private weighted: { pipelines: WeightedPipelines; sums: GPUBuffer } | null = null;

  private constructor(
    private readonly gpu: Gpu,
    private readonly pipelines: Pipelines,
    private readonly wg: { rows: number; reduce: number },
    shape: Required<Omit<SoftmaxCeShape, 'weighted'>>,
  ) {
    this.batch = shape.batch;
    this.classes = shape.classes;
    this.labels = shape.labels;
    this.label = shape.label;
    this.shape = gpu.uniform(`${this.label} softmax_ce.shape`, new Uint32Array([shape.batch, shape.classes, NAN_BITS, 0]));
    this.rows = gpu.createBuffer(`${this.label} softmax_ce.rows`, shape.batch * 16);
  }

  static async create(gpu: Gpu, shape: SoftmaxCeShape): Promise<SoftmaxCeKernel> {
    const label = shape.label ?? 'softmax_ce';
    const { batch, classes, labels } = shape;
    if (!Number.isInteger(batch) || batch <= 0 || batch > MAX_EXACT) {
      throw new Error(`${label}: softmax + categorical cross-entropy needs a batch that is an integer in [1, 2^24], got ${batch}`);
    }
    if (!Number.isInteger(classes) || classes < 2 || classes > MAX_EXACT) {
      throw new Error(`${label}: softmax + categorical cross-entropy needs classes that is an integer in [2, 2^24], got ${classes} (one output unit: use sigmoid + binary cross-entropy)`);
    }
    if (labels !== 'onehot' && labels !== 'sparse') {
      throw new Error(`${label}: softmax + categorical cross-entropy labels must be 'onehot' or 'sparse', got ${String(labels)}`);
    }
    const bytes = batch * classes * 4;
    if (bytes > gpu.limits.maxStorageBufferBindingSize) {
      throw new Error(`${label}: logits of ${batch}x${classes} floats (${bytes} bytes) exceed this adapter's maxStorageBufferBindingSize of ${gpu.limits.maxStorageBufferBindingSize} bytes; use a smaller batch`);
    }
    const max = Math.min(MAX_WG, gpu.limits.maxComputeInvocationsPerWorkgroup, gpu.limits.maxComputeWorkgroupSizeX);
    const wg = 2 ** Math.floor(Math.log2(max)); // the tree reductions need a power of two
    // One workgroup per example: about one invocation per class, up to wg.
    const rowWg = Math.min(wg, 2 ** Math.ceil(Math.log2(classes)));
    const sparse = labels === 'sparse' ? 1 : 0;
    const [train, evaluate, reduce, accumulate, probabilities] = await Promise.all([
      gpu.pipeline('softmax_ce', { entryPoint: 'rows_loss_and_gradient', constants: { WG: rowWg, SPARSE: sparse } }),
      gpu.pipeline('softmax_ce', { entryPoint: 'rows_loss', constants: { WG: rowWg, SPARSE: sparse } }),
      gpu.pipeline('softmax_ce', { entryPoint: 'reduce_stats', constants: { WG: wg } }),
      gpu.pipeline('softmax_ce', { entryPoint: 'accumulate' }),
      gpu.pipeline('softmax_ce', { entryPoint: 'probabilities', constants: { WG: rowWg } }),
    ]);
    const k = new SoftmaxCeKernel(gpu, { train, evaluate, reduce, accumulate, probabilities }, { rows: rowWg, reduce: wg }, { batch, classes, labels, label });
    if (shape.weighted) await k.enableWeights();
    return k;
  }

  /** Builds the weighted pipelines (once; cached per device), so passes may take weights. */
  async enableWeights(): Promise<void> {
    if (this.weighted) return;
    const gpu = this.gpu;
    const [train, reduce, accumulate] = await Promise.all([
      gpu.pipeline('softmax_ce', { entryPoint: 'rows_loss_and_gradient_weighted', constants: { WG: this.wg.rows, SPARSE: this.labels === 'sparse' ? 1 : 0 } }),
      gpu.pipeline('softmax_ce', { entryPoint: 'reduce_stats_weighted', constants: { WG: this.wg.reduce } }),
      gpu.pipeline('softmax_ce', { entryPoint: 'accumulate_weighted' }),
    ]);
    this.weighted ??= { pipelines: { train, reduce, accumulate }, sums: gpu.createBuffer(`${this.label} softmax_ce.sums`, 16) };
  }

  /**
   * dlogits = (softmax(z) - y) / batch (overwritten; sparse: y = one-hot of the label);
   * stats = [mean loss, categorical accuracy]. With weights: each dlogits row times w_i, stats
   * = [sum(w loss) / batch, sum(w correct) / sum(w)].
   */
  lossAndGradient(b: { logits: GPUBuffer; labels: GPUBuffer; dlogits: GPUBuffer; stats: GPUBuffer; weights?: GPUBuffer }): GpuOp {
    const weights = b.weights === undefined ? undefined : this.small('weights', b.weights, this.batch);
    const p = weights ? this.weightedPass('lossAndGradient').pipelines.train : this.pipelines.train;
    const what = `lossAndGradient${weights ? ' weighted' : ''}`;
    const group = this.gpu.bindGroup(p, {
      shape: this.shape,
      logits: this.matrix('logits', b.logits),
      labels: this.labelBinding(b.labels),
      dlogits: this.matrix('dlogits', b.dlogits),
      rows: this.rows,
      ...(weights ? { weights } : {}),
    }, `${this.label} softmax_ce.${what}`);
    return this.withStats(what, this.gpu.dispatch(`${this.label} softmax_ce.${what} ${this.dims()}`, p, group, this.gpu.grid(this.batch)), b.stats, weights);
  }

  /** Evaluation: stats = [mean loss, categorical accuracy] (weighted as in lossAndGradient), no gradient. */
  loss(b: { logits: GPUBuffer; labels: GPUBuffer; stats: GPUBuffer; weights?: GPUBuffer }): GpuOp {
    const weights = b.weights === undefined ? undefined : this.small('weights', b.weights, this.batch);
    if (weights) this.weightedPass('loss');
    const p = this.pipelines.evaluate; // the per-example pass is the same; weights enter the reduction
    const what = `loss${weights ? ' weighted' : ''}`;
    const group = this.gpu.bindGroup(p, {
      shape: this.shape,
      logits: this.matrix('logits', b.logits),
      labels: this.labelBinding(b.labels),
      rows: this.rows,
    }, `${this.label} softmax_ce.${what}`);
    return this.withStats(what, this.gpu.dispatch(`${this.label} softmax_ce.${what} ${this.dims()}`, p, group, this.gpu.grid(this.batch)), b.stats, weights);
  }

  /**
   * totals += [batch * mean loss, correct count, batch], on the GPU. `weighted: true` (after a
   * pass given weights, whose sums it reads): totals += [sum w loss, sum w correct, sum w], and
   * totals[3] += batch when totals holds 4 floats. Keras's epoch loss is then totals[0] /
   * (examples seen = totals[3]), not totals[0] / totals[2]; its accuracy is totals[1] / totals[2].
   */
  accumulate(b: { stats: GPUBuffer; totals: GPUBuffer; weighted?: boolean }): GpuOp {
    if (b.stats === b.totals) throw new Error(`${this.label}: softmax_ce.accumulate needs distinct stats and totals buffers`);
    if (b.weighted) {
      const w = this.weightedPass('accumulate');
      const p = w.pipelines.accumulate;
      const floats = b.totals.size >= 16 ? 4 : 3;
      const group = this.gpu.bindGroup(p, { shape: this.shape, weighted_sums: w.sums, totals: this.small('totals', b.totals, floats) }, `${this.label} softmax_ce.accumulate weighted`);
      return this.gpu.dispatch(`${this.label} softmax_ce.accumulate weighted batch=${this.batch}`, p, group, [1]);
    }
    const p = this.pipelines.accumulate;
    const group = this.gpu.bindGroup(p, {
      shape: this.shape,
      batch_stats: this.small('stats', b.stats, 2),
      totals: this.small('totals', b.totals, 3),
    }, `${this.label} softmax_ce.accumulate`);
    return this.gpu.dispatch(`${this.label} softmax_ce.accumulate batch=${this.batch}`, p, group, [1]);
  }

  /** probs = softmax of each logits row (for predict()). */
  probabilities(b: { logits: GPUBuffer; probs: GPUBuffer }): GpuOp {
    if (b.logits === b.probs) throw new Error(`${this.label}: softmax_ce.probabilities needs distinct logits and probs buffers`);
    const p = this.pipelines.probabilities;
    const group = this.gpu.bindGroup(p, {
      shape: this.shape,
      logits: this.matrix('logits', b.logits),
      probs: this.matrix('probs', b.probs),
    }, `${this.label} softmax_ce.probabilities`);
    return this.gpu.dispatch(`${this.label} softmax_ce.probabilities ${this.dims()}`, p, group, this.gpu.grid(this.batch));
  }

  destroy(): void {
    this.gpu.destroyBuffer(this.shape);
    this.gpu.destroyBuffer(this.rows);
    if (this.weighted) this.gpu.destroyBuffer(this.weighted.sums);
    this.weighted = null;
  }

  private dims(): string {
    return `batch=${this.batch} classes=${this.classes} labels=${this.labels}`;
  }

  /** The per-example pass followed by the fixed-order batch reduction into stats (weighted: and sums). */
  private withStats(what: string, rowsOp: GpuOp, stats: GPUBuffer, weights?: { buffer: GPUBuffer; size: number }): GpuOp {
    const w = weights ? this.weightedPass(what) : null;
    const p = w ? w.pipelines.reduce : this.pipelines.reduce;
    const group = this.gpu.bindGroup(p, {
      shape: this.shape,
      row_stats: this.rows,
      stats: this.small('stats', stats, 2),
      ...(weights && w ? { weights, weighted_sums: w.sums } : {}),
    }, `${this.label} softmax_ce.${what} stats`);
    const reduceOp = this.gpu.dispatch(`${this.label} softmax_ce.${what} stats batch=${this.batch}`, p, group, [1]);
    return { label: rowsOp.label, encode: (encoder) => { rowsOp.encode(encoder); reduceOp.encode(encoder); } };
  }

  private weightedPass(what: string): { pipelines: WeightedPipelines; sums: GPUBuffer } {
    if (!this.weighted) {
      throw new Error(`${this.label}: softmax_ce.${what} with weights needs the weighted pipelines: create the kernel with { weighted: true } or await enableWeights() first`);
    }
    return this.weighted;
  }

  private matrix(name: string, buffer: GPUBuffer): { buffer: GPUBuffer; size: number } {
    return this.small(name, buffer, this.batch * this.classes);
  }

  private labelBinding(buffer: GPUBuffer): { buffer: GPUBuffer; size: number } {
    return this.small('labels', buffer, this.labels === 'sparse' ? this.batch : this.batch * this.classes);
  }

  private small(name: string, buffer: GPUBuffer, floats: number): { buffer: GPUBuffer; size: number } {
    if (buffer.size < floats * 4) {
      throw new Error(`${this.label}: softmax_ce needs ${name} of at least ${floats} floats (${floats * 4} bytes) for batch ${this.batch}, classes ${this.classes}, ${this.labels} labels; got a ${buffer.size}-byte buffer '${buffer.label}'`);
    }
    return { buffer, size: floats * 4 };
  }
}
