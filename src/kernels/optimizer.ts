import type { GpuOp } from '../gpu/index.ts';

/**
 * What the plan needs from any optimizer's kernels: an in-place update op per trainable
 * parameter (reading the guard's halt flag), per-parameter state buffers of any count (SGD
 * momentum: one velocity; Adam: m and v), and the iteration written before each step.
 */
export interface OptimizerUpdates {
  /** The update op for one parameter tensor of `size` floats; creates its state buffers (zeroed) on first use. */
  update(param: GPUBuffer, grad: GPUBuffer, size: number, label?: string): GpuOp;
  /** Writes the per-step hyperparameters (learning rate schedule) for `iteration` (0 for the first update). */
  setIteration(iteration: number): void;
  /** Names of the state slots, in stateOf order (for checkpoints). */
  readonly stateNames: string[];
  /** A parameter's state buffers, stateNames order; empty before its first update op exists. */
  stateOf(param: GPUBuffer): GPUBuffer[];
  destroy(): void;
}
