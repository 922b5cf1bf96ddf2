import type { Gpu, Pipeline } from '../gpu/index.ts';
import { ElementwiseUpdates, GradientClipping, type ClipOptions, type LearningRateSource } from './clip-gradients.ts';
import { checkHyper } from './sgd.ts';

export interface RmspropOptions extends ClipOptions, LearningRateSource {
  learningRate?: number;
  rho?: number;
  momentum?: number;
  epsilon?: number;
  centered?: boolean;
  /** p -= p * weightDecay * lr before the update; null / undefined: none. */
  weightDecay?: number | null;
}

/**
 * RMSprop (Keras 3's rule: epsilon inside the square root, plain momentum, optional centering)
 * in place on parameter buffers. State per weight, Keras's variable order: ['velocity'], then
 * 'momentum' when momentum > 0, then 'average_gradient' when centered.
 */
export class RmspropKernel extends ElementwiseUpdates {
  readonly rho: number;
  readonly momentum: number;
  readonly epsilon: number;
  readonly centered: boolean;
  readonly weightDecay: number | null;

  static async create(gpu: Gpu, options: RmspropOptions, halt: GPUBuffer): Promise<RmspropKernel> {
    const who = 'RMSprop';
    const o = { learningRate: 0.001, rho: 0.9, momentum: 0, epsilon: 1e-7, centered: false, ...options };
    if (!o.learningRateAt) checkHyper(who, 'learningRate', o.learningRate);
    checkHyper(who, 'rho', o.rho, 1);
    checkHyper(who, 'momentum', o.momentum);
    checkHyper(who, 'epsilon', o.epsilon);
    if (o.weightDecay !== undefined && o.weightDecay !== null) checkHyper(who, 'weightDecay', o.weightDecay);
    const clipping = await GradientClipping.create(gpu, who, o);
    const constants = { CLIP: clipping.constant, DECAY: o.weightDecay ? 1 : 0, MOMENTUM: o.momentum > 0 ? 1 : 0, CENTERED: o.centered ? 1 : 0 };
    const [p, p4] = await Promise.all([gpu.pipeline('rmsprop', { entryPoint: 'rmsprop', constants }), gpu.pipeline('rmsprop', { entryPoint: 'rmsprop4', constants })]);
    const used = ['velocity', ...(o.momentum > 0 ? ['momentum'] : []), ...(o.centered ? ['average_gradient'] : [])];
    const unused = ['momentum', 'average_gradient'].filter((n) => !used.includes(n));
    const hyper = gpu.uniform('rmsprop.hyper', new Float32Array(8));
    return new RmspropKernel(gpu, who, p, p4, halt, clipping, hyper, used, o, unused);
  }

  private constructor(gpu: Gpu, who: string, p: Pipeline, p4: Pipeline, halt: GPUBuffer, clipping: GradientClipping, hyper: GPUBuffer, used: string[], o: Required<Pick<RmspropOptions, 'rho' | 'momentum' | 'epsilon' | 'centered'>> & RmspropOptions, unused: string[]) {
    super(gpu, who, p, p4, halt, clipping, hyper, used, o, unused);
    this.rho = o.rho;
    this.momentum = o.momentum;
    this.epsilon = o.epsilon;
    this.centered = o.centered;
    this.weightDecay = o.weightDecay ?? null;
    this.setIteration(0);
  }

  /** Writes lr, rho, momentum, epsilon and weight decay * lr for `iteration`; call before submitting that step. */
  setIteration(iteration: number): void {
    ElementwiseUpdates.checkIteration(this.who, iteration);
    const lr = this.learningRateAt(iteration);
    this.gpu.write(this.hyper, new Float32Array([lr, this.rho, 1 - this.rho, this.momentum, this.epsilon, (this.weightDecay ?? 0) * lr, this.clipping.clipvalue, 0]));
  }
}
