import type { Gpu, GpuOp, Pipeline } from '../gpu/index.ts';

export interface SigmoidBceShape {
  batch: number;
  label?: string;
}

const MAX_WG = 256;

/**
 * Fused sigmoid + binary cross-entropy on logits z[batch] of a single sigmoid unit, labels
 * y[batch] in [0, 1] (Keras's binary_crossentropy computed from the logit, and its 'acc').
 * Buffers: logits, labels, dlogits hold `batch` floats; stats holds 2 floats
 * [mean loss, accuracy]; totals holds 3 floats [loss sum, correct count, count] and is never
 * cleared by the kernel (zero it at the start of an epoch).
 */
export class SigmoidBceKernel {
  readonly batch: number;
  readonly label: string;
  private readonly shape: GPUBuffer;

  private constructor(
    private readonly gpu: Gpu,
    private readonly pipelines: { train: Pipeline; evaluate: Pipeline; accumulate: Pipeline },
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
    const [train, evaluate, accumulate] = await Promise.all([
      gpu.pipeline('sigmoid_bce', { entryPoint: 'loss_and_gradient', constants: { WG: wg } }),
      gpu.pipeline('sigmoid_bce', { entryPoint: 'loss_only', constants: { WG: wg } }),
      gpu.pipeline('sigmoid_bce', { entryPoint: 'accumulate' }),
    ]);
    return new SigmoidBceKernel(gpu, { train, evaluate, accumulate }, shape.batch, label);
  }

  /** dlogits = (sigmoid(z) - y) / batch (overwritten); stats = [mean loss, accuracy]. */
  lossAndGradient(b: { logits: GPUBuffer; labels: GPUBuffer; dlogits: GPUBuffer; stats: GPUBuffer }): GpuOp {
    const p = this.pipelines.train;
    const group = this.gpu.bindGroup(p, {
      shape: this.shape,
      logits: this.vector('logits', b.logits),
      labels: this.vector('labels', b.labels),
      dlogits: this.vector('dlogits', b.dlogits),
      stats: this.small('stats', b.stats, 2),
    }, `${this.label} sigmoid_bce.lossAndGradient`);
    return this.gpu.dispatch(`${this.label} sigmoid_bce.lossAndGradient batch=${this.batch}`, p, group, [1]);
  }

  /** Evaluation: stats = [mean loss, accuracy], no gradient. */
  loss(b: { logits: GPUBuffer; labels: GPUBuffer; stats: GPUBuffer }): GpuOp {
    const p = this.pipelines.evaluate;
    const group = this.gpu.bindGroup(p, {
      shape: this.shape,
      logits: this.vector('logits', b.logits),
      labels: this.vector('labels', b.labels),
      stats: this.small('stats', b.stats, 2),
    }, `${this.label} sigmoid_bce.loss`);
    return this.gpu.dispatch(`${this.label} sigmoid_bce.loss batch=${this.batch}`, p, group, [1]);
  }

  /** totals += [batch * mean loss, correct count, batch], on the GPU. */
  accumulate(b: { stats: GPUBuffer; totals: GPUBuffer }): GpuOp {
    if (b.stats === b.totals) throw new Error(`${this.label}: sigmoid_bce.accumulate needs distinct stats and totals buffers`);
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
