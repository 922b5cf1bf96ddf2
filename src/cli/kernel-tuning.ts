// The CLI's kernel tuner: under the 'auto' family, each convolution shape's kernel is measured on
// this adapter once and remembered in the weights cache (src/kernels/autotune.ts).
import type { Gpu } from '../gpu/index.ts';
import { attachTuner, KernelTuner, tunerFor } from '../kernels/autotune.ts';
import { fileTuningStore } from '../io/tuning-store-node.ts';
import { UsageError } from './args.ts';

/** Seconds of measuring a run may spend on shapes not measured before. */
export const DEFAULT_TUNE_BUDGET_S = 5;

/** $WEBGPU_FINETUNE_TUNE_BUDGET in seconds (0: use stored measurements only, measure nothing). */
export function tuneBudgetSeconds(env = process.env.WEBGPU_FINETUNE_TUNE_BUDGET): number {
  if (env === undefined || env === '') return DEFAULT_TUNE_BUDGET_S;
  const v = Number(env);
  if (!Number.isFinite(v) || v < 0) throw new UsageError(`WEBGPU_FINETUNE_TUNE_BUDGET is '${env}'; it must be a number of seconds, 0 or more (0: only choices measured before are used)`);
  return v;
}

/**
 * The device's tuner, attached on first use; null under a forced family (nothing is tuned then).
 * `resuming`: measure nothing, so that a resumed run keeps the kernels it started with (the
 * stored ones, and the rules where it had none) and continues bit for bit.
 */
export function useKernelTuning(gpu: Gpu, o: { resuming?: boolean } = {}): KernelTuner | null {
  if (gpu.kernelFamily !== 'auto') return null;
  const existing = tunerFor(gpu);
  if (existing) return existing;
  const budgetMs = o.resuming ? 0 : tuneBudgetSeconds() * 1000;
  const tuner = new KernelTuner(gpu, { budgetMs, store: fileTuningStore(), warn: (l) => console.warn(`warning: ${l}`) });
  attachTuner(gpu, tuner);
  return tuner;
}
