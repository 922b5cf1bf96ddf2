import type { Gpu, GpuOp, Pipeline } from '../gpu/index.ts';

export interface SigmoidBceShape {
  batch: number;
  label?: string;
  /** Also build the weighted pipelines now (else: await enableWeights() before passing weights). */
  weighted?: boolean;
}

const MAX_WG = 256;

interface Pipelines {
  train: Pipeline;
  evaluate: Pipeline;
  accumulate: Pipeline;
}

/**
 * Fused sigmoid + binary cross-entropy on logits z[batch] of a single sigmoid unit, labels
 * y[batch] in [0, 1] (Keras's binary_crossentropy computed from the logit, and its 'acc').
 * Buffers: logits, labels, dlogits hold `batch` floats; stats holds 2 floats
 * [mean loss, accuracy]; totals holds 3 floats [loss sum, correct count, count] and is never
 * cleared by the kernel (zero it at the start of an epoch).
 *
 * Optional `weights` (`batch` floats, Keras sample weights such as class weights; finite and
 * >= 0, which the kernel does not check) switch a pass to Keras 3's weighted form: loss =
 * sum(w loss) / batch (not / sum(w)), dlogits = w (sigmoid(z) - y) / batch, accuracy =
 * sum(w correct) / sum(w) (0 when every weight is 0). The weighted passes keep that batch's
 * [sum w loss, sum w correct, sum w] in the kernel, and accumulate({ weighted: true }) adds
 * those to totals. Without weights the pipelines and results are the unweighted ones; the
 * weighted pipelines are only built on request (shape.weighted or enableWeights()), so a model
 * without class weights compiles nothing more.
 */
export class SigmoidBceKernel {
  readonly batch: number;
  readonly label: string;
  private readonly shape: GPUBuffer;
  /**
   * Built by enableWeights(): the weighted pipelines and the last weighted pass's [sum w loss,
   * sum w correct, sum w, 0] (sums), read by the weighted accumulate.
   */
  private weighted: { pipelines: Pipelines; sums: GPUBuffer } | null = null;

  private constructor(
    private readonly gpu: Gpu,
    private readonly pipelines: Pipelines,
    private readonly wg: number,
    batch: number,
    label: string,
  ) {
    this.batch = batch;
    this.label = label;
    this.shape = gpu.uniform(`${label} sigmoid_bce.shape`, new Uint32Array([batch, 0, 0, 0]));
  }

  static async create(gpu: Gpu, shape: SigmoidBceShape): Promise<SigmoidBceKernel> {
    const label = shape.label ?? 'sigmoid_bce';
    if (!Number.isInteger(shape.batch) || shape.batch <= 0 || shape.batch > 1 << 24) {
      // 2^24: counts are kept in f32 and stay exact below it.
      throw new Error(`${label}: sigmoid + binary cross-entropy needs a batch that is an integer in [1, 2^24], got ${shape.batch}`);
    }
    const max = Math.min(MAX_WG, gpu.limits.maxComputeInvocationsPerWorkgroup, gpu.limits.maxComputeWorkgroupSizeX);
    const wg = 2 ** Math.floor(Math.log2(max)); // the tree reduction needs a power of two
    const k = new SigmoidBceKernel(gpu, await SigmoidBceKernel.build(gpu, wg, ''), wg, shape.batch, label);
    if (shape.weighted) await k.enableWeights();
    return k;
  }

  private static async build(gpu: Gpu, wg: number, suffix: '' | '_weighted'): Promise<Pipelines> {
    const [train, evaluate, accumulate] = await Promise.all([
      gpu.pipeline('sigmoid_bce', { entryPoint: `loss_and_gradient${suffix}`, constants: { WG: wg } }),
      gpu.pipeline('sigmoid_bce', { entryPoint: `loss_only${suffix}`, constants: { WG: wg } }),
      gpu.pipeline('sigmoid_bce', { entryPoint: `accumulate${suffix}` }),
    ]);
    return { train, evaluate, accumulate };
  }

  /** Builds the weighted pipelines (once; cached per device), so passes may take weights. */
  async enableWeights(): Promise<void> {
    if (this.weighted) return;
    const pipelines = await SigmoidBceKernel.build(this.gpu, this.wg, '_weighted');
    this.weighted ??= { pipelines, sums: this.gpu.createBuffer(`${this.label} sigmoid_bce.sums`, 16) };
  }

  /**
   * dlogits = (sigmoid(z) - y) / batch (overwritten); stats = [mean loss, accuracy].
   * With weights: dlogits = w (sigmoid(z) - y) / batch, stats = [sum(w loss) / batch,
   * sum(w correct) / sum(w)].
   */
  lossAndGradient(b: { logits: GPUBuffer; labels: GPUBuffer; dlogits: GPUBuffer; stats: GPUBuffer; weights?: GPUBuffer }): GpuOp {
    const weighted = b.weights !== undefined;
    const p = weighted ? this.weightedPass('lossAndGradient').pipelines.train : this.pipelines.train;
    const group = this.gpu.bindGroup(p, {
      shape: this.shape,
      logits: this.vector('logits', b.logits),
      labels: this.vector('labels', b.labels),
      dlogits: this.vector('dlogits', b.dlogits),
      stats: this.small('stats', b.stats, 2),
      ...this.weightBindings(b.weights),
    }, `${this.label} sigmoid_bce.lossAndGradient${weighted ? ' weighted' : ''}`);
    return this.gpu.dispatch(`${this.label} sigmoid_bce.lossAndGradient${weighted ? ' weighted' : ''} batch=${this.batch}`, p, group, [1]);
  }

  /** Evaluation: stats = [mean loss, accuracy] (weighted as in lossAndGradient), no gradient. */
  loss(b: { logits: GPUBuffer; labels: GPUBuffer; stats: GPUBuffer; weights?: GPUBuffer }): GpuOp {
    const weighted = b.weights !== undefined;
    const p = weighted ? this.weightedPass('loss').pipelines.evaluate : this.pipelines.evaluate;
    const group = this.gpu.bindGroup(p, {
      shape: this.shape,
      logits: this.vector('logits', b.logits),
      labels: this.vector('labels', b.labels),
      stats: this.small('stats', b.stats, 2),
      ...this.weightBindings(b.weights),
    }, `${this.label} sigmoid_bce.loss${weighted ? ' weighted' : ''}`);
    return this.gpu.dispatch(`${this.label} sigmoid_bce.loss${weighted ? ' weighted' : ''} batch=${this.batch}`, p, group, [1]);
  }

  /**
   * totals += [batch * mean loss, correct count, batch], on the GPU. `weighted: true` (after a
   * pass given weights, whose sums it reads): totals += [sum w loss, sum w correct, sum w], and
   * totals[3] += batch when totals holds 4 floats. Keras's epoch loss is then totals[0] /
   * (examples seen = totals[3]), not totals[0] / totals[2]; its accuracy is totals[1] / totals[2].
   */
  accumulate(b: { stats: GPUBuffer; totals: GPUBuffer; weighted?: boolean }): GpuOp {
    if (b.stats === b.totals) throw new Error(`${this.label}: sigmoid_bce.accumulate needs distinct stats and totals buffers`);
    if (b.weighted) {
      const w = this.weightedPass('accumulate');
      const p = w.pipelines.accumulate;
      const floats = b.totals.size >= 16 ? 4 : 3;
      const group = this.gpu.bindGroup(p, { shape: this.shape, weighted_sums: w.sums, totals: this.small('totals', b.totals, floats) }, `${this.label} sigmoid_bce.accumulate weighted`);
      return this.gpu.dispatch(`${this.label} sigmoid_bce.accumulate weighted batch=${this.batch}`, p, group, [1]);
    }
    const p = this.pipelines.accumulate;
    const group = this.gpu.bindGroup(p, {
      shape: this.shape,
      batch_stats: this.small('stats', b.stats, 2),
      totals: this.small('totals', b.totals, 3),
    }, `${this.label} sigmoid_bce.accumulate`);
    return this.gpu.dispatch(`${this.label} sigmoid_bce.accumulate batch=${this.batch}`, p, group, [1]);
  }

  destroy(): void {
    this.gpu.destroyBuffer(this.shape);
    if (this.weighted) this.gpu.destroyBuffer(this.weighted.sums);
    this.weighted = null;
  }

  private weightedPass(what: string): { pipelines: Pipelines; sums: GPUBuffer } {
    if (!this.weighted) {
      throw new Error(`${this.label}: sigmoid_bce.${what} with weights needs the weighted pipelines: create the kernel with { weighted: true } or await enableWeights() first`);
    }
    return this.weighted;
  }

  /** The extra bindings of a weighted pass (none without weights). */
  private weightBindings(weights: GPUBuffer | undefined): Record<string, { buffer: GPUBuffer; size: number } | GPUBuffer> {
    return weights === undefined ? {} : { weights: this.vector('weights', weights), weighted_sums: this.weightedPass('weights').sums };
  }

  /** A binding of the first `batch` floats of a per-example buffer. */
  private vector(name: string, buffer: GPUBuffer): { buffer: GPUBuffer; size: number } {
    return this.small(name, buffer, this.batch);
  }

  private small(name: string, buffer: GPUBuffer, floats: number): { buffer: GPUBuffer; size: number } {
    if (buffer.size < floats * 4) {
      throw new Error(`${this.label}: sigmoid_bce needs ${name} of at least ${floats} floats (${floats * 4} bytes) for batch ${this.batch}, got a ${buffer.size}-byte buffer '${buffer.label}'`);
    }
    return { buffer, size: floats * 4 };
  }
}
