import type { Gpu } from '../gpu/index.ts';
import type { OptimizerUpdates } from '../kernels/optimizer.ts';
import { SgdKernel, type SgdOptions } from '../kernels/sgd.ts';

/**
 * An optimizer as compile() takes it: its settings, how many state buffers it keeps per weight,
 * and a factory for the kernels the plan drives (one update op per trainable weight, inside the
 * step's single submit). Adam and the others implement the same two members.
 */
export interface Optimizer {
  readonly name: string;
  /** State buffers per trainable weight (for memory estimates and checkpoints). */
  readonly stateSlots: number;
  /** The update kernels; `halt` is the non-finite guard's flag, which every update must honour. */
  createKernel(gpu: Gpu, halt: GPUBuffer): Promise<OptimizerUpdates>;
}

/** Keras's SGD: learning rate 0.01, momentum 0, nesterov false, decay 0 by default. */
export class SGD implements Optimizer {
  readonly name = 'SGD';
  readonly learningRate: number;
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly decay: number;

  constructor(config: SgdOptions = {}) {
    this.learningRate = config.learningRate ?? 0.01;
    this.momentum = config.momentum ?? 0;
    this.nesterov = config.nesterov ?? false;
    this.decay = config.decay ?? 0;
    for (const [k, v] of Object.entries({ learningRate: this.learningRate, momentum: this.momentum, decay: this.decay })) {
      if (!Number.isFinite(v) || v < 0) throw new Error(`SGD: ${k} must be a finite number >= 0, got ${v}`);
    }
  }

  get config(): Required<SgdOptions> {
    return { learningRate: this.learningRate, momentum: this.momentum, nesterov: this.nesterov, decay: this.decay };
  }

  get stateSlots(): number {
    return this.momentum > 0 ? 1 : 0;
  }

  createKernel(gpu: Gpu, halt: GPUBuffer): Promise<OptimizerUpdates> {
    return SgdKernel.create(gpu, this.config, halt);
  }
}

/** The plan's view: an optimizer's update kernels plus the guard op recorded before them. */
export interface OptimizerKernel {
  updates: OptimizerUpdates['updates'];
  guard(stats: GPUBuffer): import('../gpu/index.ts').GpuOp;
}
