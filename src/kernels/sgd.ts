import type { Gpu, GpuOp } from '../gpu/index.ts';
import { ElementwiseUpdates, GradientClipping, type ClipOptions, type LearningRateSource } from './clip-gradients.ts';

export interface SgdOptions extends ClipOptions, LearningRateSource {
  learningRate?: number;
  momentum?: number;
  nesterov?: boolean;
  /** Keras 2's legacy decay: lr / (1 + decay * iteration). Ignored when learningRateAt is given (it includes any decay). */
  decay?: number;
  /** Decoupled weight decay before the update: p -= p * weightDecay * lr (null / undefined: none). */
  weightDecay?: number | null;
}

/** Checks a hyperparameter: a finite number >= 0 (and <= max when given). */
export function checkHyper(who: string, key: string, v: unknown, max?: number, maxExclusive = false): number {
  const bad = typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (max !== undefined && (maxExclusive ? v >= max : v > max));
  if (bad) {
    const range = max === undefined ? '>= 0' : `in [0, ${max}${maxExclusive ? ')' : ']'}`;
    throw new Error(`${who}: ${key} must be a finite number ${range}, got ${String(v)}`);
  }
  return v as number;
}

/**
 * SGD with Keras's momentum / nesterov rule (and legacy decay), weight decay and gradient
 * clipping, in place on parameter buffers. One instance serves every parameter of a model; the
 * learning rate for the current iteration is written once per step (setIteration), so nothing is
 * read back. State: ['velocity'] with momentum (Keras calls it `momentum`), none without.
 */
export class SgdKernel extends ElementwiseUpdates {
  readonly learningRate: number;
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly decay: number;
  readonly weightDecay: number | null;

  private constructor(gpu: Gpu, p: Awaited<ReturnType<typeof SgdKernel.pipelines>>, halt: GPUBuffer, clipping: GradientClipping, o: SgdOptions & { learningRate: number; momentum: number; nesterov: boolean; decay: number }) {
    const hyper = gpu.uniform('sgd.hyper', new Float32Array([o.learningRate, o.momentum, 0, clipping.clipvalue]));
    super(gpu, 'SGD', p.pipeline, p.pipeline4, halt, clipping, hyper, o.momentum > 0 ? ['velocity'] : [], {
      learningRate: o.learningRate,
      learningRateAt: o.learningRateAt ?? ((it) => o.learningRate / (1 + o.decay * it)),
    });
    this.learningRate = o.learningRate;
    this.momentum = o.momentum;
    this.nesterov = o.nesterov;
    this.decay = o.decay;
    this.weightDecay = o.weightDecay ?? null;
    this.setIteration(0);
  }

  private static async pipelines(gpu: Gpu, momentum: boolean, constants: Record<string, number>) {
    const entry = momentum ? 'momentum' : 'plain';
    const [pipeline, pipeline4] = await Promise.all([gpu.pipeline('sgd', { entryPoint: entry, constants }), gpu.pipeline('sgd', { entryPoint: `${entry}4`, constants })]);
    return { pipeline, pipeline4 };
  }

  static async create(gpu: Gpu, options: SgdOptions, halt: GPUBuffer): Promise<SgdKernel> {
    const o = { learningRate: 0.01, momentum: 0, nesterov: false, decay: 0, ...options };
    for (const [k, v] of Object.entries({ learningRate: o.learningRate, momentum: o.momentum, decay: o.decay })) checkHyper('SGD', k, v);
    if (o.weightDecay !== undefined && o.weightDecay !== null) checkHyper('SGD', 'weightDecay', o.weightDecay);
    const clipping = await GradientClipping.create(gpu, 'SGD', o);
    const constants: Record<string, number> = { CLIP: clipping.constant, DECAY: o.weightDecay ? 1 : 0 };
    if (o.momentum > 0) constants.NESTEROV = o.nesterov ? 1 : 0;
    return new SgdKernel(gpu, await SgdKernel.pipelines(gpu, o.momentum > 0, constants), halt, clipping, o);
  }

  /** Writes the learning rate (and weight decay * lr) of `iteration`; call before submitting that step. */
  setIteration(iteration: number): void {
    ElementwiseUpdates.checkIteration('SGD', iteration);
    const lr = this.learningRateAt(iteration);
    this.gpu.write(this.hyper, new Float32Array([lr, this.momentum, (this.weightDecay ?? 0) * lr, this.clipping.clipvalue]));
  }

  /** Bytes of optimizer state per parameter element (momentum buffers exist only with momentum). */
  get stateBytesPerElement(): number {
    return this.momentum > 0 ? 4 : 0;
  }

  /**
   * The update op for one parameter tensor of `size` floats (with its clipping passes, if any:
   * clipping by global norm then covers this tensor alone). Allocates its velocity buffer
   * (zeroed) when momentum > 0.
   */
  update(param: GPUBuffer, grad: GPUBuffer, size: number, label = param.label): GpuOp {
    const ops = this.updates([{ param, grad, size, label }]);
    return ops.length === 1 ? ops[0] : { label: `SGD ${label}`, encode: (encoder) => ops.forEach((op) => op.encode(encoder)) };
  }

  /** The velocity buffer of a parameter (momentum only). */
  velocityOf(param: GPUBuffer): GPUBuffer | undefined {
    return this.stateOf(param)[0];
  }
}
