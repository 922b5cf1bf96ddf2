import { BatchNormKernel } from '../../kernels/batchnorm.ts';
import { foldBatchNorm } from '../../kernels/batchnorm-fold.ts';
import { Param, sizeOf, UnaryLayer, type BackwardReads, type Layer, type LayerProgram, type ProgramContext } from '../layer.ts';

export interface BatchNormalizationConfig {
  axis?: number;
  momentum?: number;
  epsilon?: number;
  center?: boolean;
  scale?: boolean;
  /** See BatchNormalization.inferenceMode; default false. */
  inferenceMode?: boolean;
  name?: string;
}

/**
 * Keras 3's BatchNormalization over the last axis. Batch statistics (biased variance) and the
 * moving update only in a training step of a trainable layer; otherwise (evaluation, predict,
 * or trainable = false even inside fit) the moving statistics. Weights: gamma, beta (trainable),
 * moving_mean, moving_variance (not).
 *
 * `inferenceMode` is Keras's `base(x, training=False)` (the transfer-learning guide): the
 * moving statistics in every step, never updated, while gamma / beta still train if the layer
 * is trainable, so unfreezing the top of a base does not let small batches move its statistics.
 */
export class BatchNormalization extends UnaryLayer {
  readonly className = 'BatchNormalization';
  readonly momentum: number;
  readonly epsilon: number;
  readonly center: boolean;
  readonly scale: boolean;
  /**
   * Keras's `base(x, training=False)`: when true, training steps also normalise with the moving
   * statistics and leave them alone; a trainable layer's gamma / beta still get gradients
   * (dgamma = sum dy*(x - moving_mean)/sqrt(moving_var + eps), dbeta = sum dy). Same program in
   * training and evaluation. Read when a model builds its plans: set it before compile()
   * (setInferenceMode() sets it on many layers at once). Default false.
   */
  inferenceMode: boolean;

  constructor(config: BatchNormalizationConfig = {}) {
    super(config.name, 'batch_normalization');
    if (config.axis !== undefined && config.axis !== -1) throw new Error(`${this.name}: only axis -1 (channels last) is supported, got ${config.axis}`);
    this.momentum = config.momentum ?? 0.99;
    this.epsilon = config.epsilon ?? 1e-3;
    this.center = config.center ?? true;
    this.scale = config.scale ?? true;
    this.inferenceMode = config.inferenceMode ?? false;
    if (typeof this.inferenceMode !== 'boolean') throw new Error(`${this.name}: inferenceMode must be true or false, got ${String(this.inferenceMode)}`);
    if (!(this.momentum >= 0 && this.momentum <= 1)) throw new Error(`${this.name}: momentum must be in [0, 1], got ${this.momentum}`);
    if (!(this.epsilon > 0)) throw new Error(`${this.name}: epsilon must be > 0, got ${this.epsilon}`);
  }

  computeOutputShape(s: number[]): number[] {
    return s;
  }

  protected override build(s: number[][]): void {
    const c = s[0][s[0].length - 1];
    const p = (n: string, v: number, trainable: boolean) => new Param(`${this.name}/${n}`, [c], new Float32Array(c).fill(v), trainable);
    this.params = [
      ...(this.scale ? [p('gamma', 1, true)] : []),
      ...(this.center ? [p('beta', 0, true)] : []),
      p('moving_mean', 0, false),
      p('moving_variance', 1, false),
    ];
  }

  private get parts() {
    let i = 0;
    const gamma = this.scale ? i++ : -1;
    const beta = this.center ? i++ : -1;
    return { gamma, beta, mean: i, variance: i + 1 };
  }

  /** Batch statistics in this context (a training step of a trainable layer, not in inference mode). */
  private batchStats(ctx: Pick<ProgramContext, 'training' | 'paramGrads'>): boolean {
    return ctx.training && this.trainable && !this.inferenceMode;
  }

  /** Moving statistics with gamma / beta gradients wanted (inference mode, trainable). */
  private affineGrads(ctx: Pick<ProgramContext, 'training' | 'paramGrads'>): boolean {
    return !this.batchStats(ctx) && ctx.paramGrads && this.trainable && (this.scale || this.center);
  }

  override get trainingDependent(): boolean {
    return this.trainable && !this.inferenceMode;
  }

  override backwardReads(ctx: Pick<ProgramContext, 'training' | 'paramGrads'>): BackwardReads {
    // both gradient reductions read x (dgamma needs x - moving_mean; dbeta shares the pass)
    return { inputs: this.batchStats(ctx) || this.affineGrads(ctx), output: false };
  }

  override get canFold(): boolean {
    // a trainable BN trains gamma / beta (inference mode too): folded weights would go stale
    return !this.trainable;
  }

  /** Reads host copies of the weights: the plan reads them back from the device first. */
  override foldWeights(kernel: Param, bias: Param | null): { kernel: Float32Array; bias: Float32Array } | null {
    if (!this.canFold) return null;
    const q = this.parts;
    return foldBatchNorm({
      kernel: kernel.host, kernelShape: kernel.shape, bias: bias?.host ?? null,
      gamma: q.gamma >= 0 ? this.params[q.gamma].host : null, beta: q.beta >= 0 ? this.params[q.beta].host : null,
      movingMean: this.params[q.mean].host, movingVar: this.params[q.variance].host, epsilon: this.epsilon, label: this.name,
    });
  }

  async createProgram(ctx: ProgramContext): Promise<LayerProgram> {
    const channels = ctx.outShape[ctx.outShape.length - 1];
    const rows = (sizeOf(ctx.outShape) / channels) * ctx.batch;
    const gpu = ctx.gpu;
    const k = await BatchNormKernel.create(gpu, { rows, channels, epsilon: this.epsilon, momentum: this.momentum, center: this.center, scale: this.scale, label: ctx.label });
    const q = this.parts;
    const opt = (params: GPUBuffer[], i: number) => (i >= 0 ? params[i] : undefined);
    if (this.affineGrads(ctx)) {
      return {
        forward: ({ xs, y, params }) => [k.inferForward({ x: xs[0], gamma: opt(params, q.gamma), beta: opt(params, q.beta), movingMean: params[q.mean], movingVar: params[q.variance], y })],
        backward: ({ xs, dy, dxs, params, grads }) => {
          const dgamma = q.gamma >= 0 ? grads[q.gamma] ?? undefined : undefined;
          const dbeta = q.beta >= 0 ? grads[q.beta] ?? undefined : undefined;
          if (!dgamma && !dbeta) return dxs[0] ? [k.inferBackward({ dy, gamma: opt(params, q.gamma), movingVar: params[q.variance], dx: dxs[0] })] : [];
          return [k.inferAffineBackward({ x: xs[0], dy, gamma: opt(params, q.gamma), movingMean: params[q.mean], movingVar: params[q.variance], dx: dxs[0] ?? undefined, dgamma, dbeta })];
        },
        destroy: () => k.destroy(),
      };
    }
    if (!this.batchStats(ctx)) {
      return {
        forward: ({ xs, y, params }) => [k.inferForward({ x: xs[0], gamma: opt(params, q.gamma), beta: opt(params, q.beta), movingMean: params[q.mean], movingVar: params[q.variance], y })],
        backward: ({ dy, dxs, params }) => (dxs[0] ? [k.inferBackward({ dy, gamma: opt(params, q.gamma), movingVar: params[q.variance], dx: dxs[0] })] : []),
        destroy: () => k.destroy(),
      };
    }
    // what the training backward needs from the forward: per-channel mean and 1/sqrt(var + eps)
    const mean = gpu.createBuffer(`${ctx.label} batch mean`, channels * 4);
    const invStd = gpu.createBuffer(`${ctx.label} batch inv std`, channels * 4);
    let dxScratch: GPUBuffer | null = null;
    const scratchDx = () => (dxScratch ??= gpu.createBuffer(`${ctx.label} unused dx`, rows * channels * 4));
    return {
      forward: ({ xs, y, params }) => [k.trainForward({ x: xs[0], gamma: opt(params, q.gamma), beta: opt(params, q.beta), y, mean, invStd, movingMean: params[q.mean], movingVar: params[q.variance] })],
      backward: ({ xs, dy, dxs, params, grads }) => {
        // the kernel writes dx, dgamma and dbeta together; dx goes to scratch when nobody needs it
        const dx = dxs[0] ?? scratchDx();
        return [k.trainBackward({ x: xs[0], dy, gamma: opt(params, q.gamma), mean, invStd, dx, dgamma: q.gamma >= 0 ? grads[q.gamma] ?? undefined : undefined, dbeta: q.beta >= 0 ? grads[q.beta] ?? undefined : undefined })];
      },
      destroy: () => {
        k.destroy();
        gpu.destroyBuffer(mean);
        gpu.destroyBuffer(invStd);
        if (dxScratch) gpu.destroyBuffer(dxScratch);
      },
    };
  }
}

/**
 * Sets `inferenceMode` on every BatchNormalization among `layers` (e.g. a base model's layers,
 * as Keras's `base(x, training=False)` does for the whole base); other layers are untouched.
 * Call before compile(). Returns how many layers it set.
 */
export function setInferenceMode(layers: readonly Layer[], on: boolean): number {
  if (typeof on !== 'boolean') throw new Error(`setInferenceMode: 'on' must be true or false, got ${String(on)}`);
  let n = 0;
  for (const l of layers) {
    if (l instanceof BatchNormalization) {
      l.inferenceMode = on;
      n++;
    }
  }
  return n;
}
