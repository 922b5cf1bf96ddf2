import type { GpuOp } from '../gpu/index.ts';

/** One trainable weight as the plan hands it to the optimizer. */
export interface UpdateTarget {
  param: GPUBuffer;
  grad: GPUBuffer;
  /** floats */
  size: number;
  label: string;
}

/**
 * What the plan needs from any optimizer's kernels: the ops that update every trainable weight
 * in place (reading the guard's halt flag), per-weight state buffers of any count (SGD
 * momentum: one velocity; Adam: m and v), and the per-step hyperparameters written before each
 * step. All targets come in one call so gradient clipping by the global norm can see them all.
 */
export interface OptimizerUpdates {
  /**
   * The step's update ops for all trainable weights, in order (any clipping ops first). State
   * buffers are created (zeroed) on first use and shared by every call naming the same param.
   */
  updates(targets: UpdateTarget[]): GpuOp[];
  /** Writes the per-step hyperparameters (learning rate, schedule, bias corrections) for `iteration` (0 for the first update). */
  setIteration(iteration: number): void;
  /** Names of the state slots, in stateOf order (for checkpoints). */
  readonly stateNames: string[];
  /** A parameter's state buffers, stateNames order; empty before its first update op exists. */
  stateOf(param: GPUBuffer): GPUBuffer[];
  destroy(): void;
}
