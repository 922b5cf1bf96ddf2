import type { Gpu, Pipeline } from '../gpu/index.ts';
import { ElementwiseUpdates, GradientClipping, type ClipOptions, type LearningRateSource } from './clip-gradients.ts';
import { checkHyper } from './sgd.ts';

export interface AdamOptions extends ClipOptions, LearningRateSource {
  learningRate?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  amsgrad?: boolean;
  /** p -= p * weightDecay * lr before the update (AdamW: 0.004); null / undefined: none. */
  weightDecay?: number | null;
  /** For errors and labels: 'Adam' (default) or 'AdamW'. */
  name?: string;
}

/**
 * Adam and AdamW (Keras 3's rule; AdamW is Adam with weight decay) in place on parameter
 * buffers. The bias-corrected step size alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t),
 * t = iteration + 1, is computed in float64 on the host in setIteration and written to a uniform.
 * State per weight, Keras's variable order: ['momentum', 'velocity'] plus 'velocity_hat' with amsgrad.
 */
export class AdamKernel extends ElementwiseUpdates {
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly amsgrad: boolean;
  readonly weightDecay: number | null;

  private constructor(gpu: Gpu, name: string, pipelines: Pipeline[], halt: GPUBuffer, clipping: GradientClipping, o: Required<Pick<AdamOptions, 'beta1' | 'beta2' | 'epsilon' | 'amsgrad'>> & AdamOptions) {
    const hyper = gpu.uniform(`${name}.hyper`, new Float32Array(8));
    super(gpu, name, pipelines[0], pipelines[1], halt, clipping, hyper, o.amsgrad ? ['momentum', 'velocity', 'velocity_hat'] : ['momentum', 'velocity'], o);
    this.beta1 = o.beta1;
    this.beta2 = o.beta2;
    this.epsilon = o.epsilon;
    this.amsgrad = o.amsgrad;
    this.weightDecay = o.weightDecay ?? null;
    this.setIteration(0);
  }

  static async create(gpu: Gpu, options: AdamOptions, halt: GPUBuffer): Promise<AdamKernel> {
    const name = options.name ?? 'Adam';
    const o = { learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, amsgrad: false, ...options };
    if (!o.learningRateAt) checkHyper(name, 'learningRate', o.learningRate);
    // beta = 1 would divide by 1 - beta1^t = 0 (bias correction)
    checkHyper(name, 'beta1', o.beta1, 1, true);
    checkHyper(name, 'beta2', o.beta2, 1, true);
    checkHyper(name, 'epsilon', o.epsilon);
    if (o.weightDecay !== undefined && o.weightDecay !== null) checkHyper(name, 'weightDecay', o.weightDecay);
    const clipping = await GradientClipping.create(gpu, name, o);
    const constants = { CLIP: clipping.constant, DECAY: o.weightDecay ? 1 : 0 };
    const entry = o.amsgrad ? 'amsgrad' : 'adam';
    const pipelines = await Promise.all([gpu.pipeline('adam', { entryPoint: entry, constants }), gpu.pipeline('adam', { entryPoint: `${entry}4`, constants })]);
    return new AdamKernel(gpu, name, pipelines, halt, clipping, o);
  }

  /** The bias-corrected step size of the update at `iteration` (float64). */
  alphaAt(iteration: number): number {
    const t = iteration + 1;
    return (this.learningRateAt(iteration) * Math.sqrt(1 - Math.pow(this.beta2, t))) / (1 - Math.pow(this.beta1, t));
  }

  /** Writes alpha, the betas, epsilon and weight decay * lr for `iteration`; call before submitting that step. */
  setIteration(iteration: number): void {
    ElementwiseUpdates.checkIteration(this.who, iteration);
    const lr = this.learningRateAt(iteration);
    this.gpu.write(this.hyper, new Float32Array([this.alphaAt(iteration), 1 - this.beta1, 1 - this.beta2, this.epsilon, (this.weightDecay ?? 0) * lr, this.clipping.clipvalue, 0, 0]));
  }
}
