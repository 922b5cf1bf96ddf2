import type { SgdOptions } from '../kernels/sgd.ts';

/** Keras's SGD: learning rate 0.01, momentum 0, nesterov false, decay 0 by default. */
export class SGD {
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
}
