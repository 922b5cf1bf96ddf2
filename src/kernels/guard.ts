import type { Gpu, GpuOp, Pipeline } from '../gpu/index.ts';

/**
 * The non-finite loss guard (guard.wgsl): a sticky `halt` flag that optimizer update kernels
 * read, set on the device when a step's loss is not finite, so no update follows a NaN step.
 */
export class GuardKernel {
  /** u32, non-zero once a guarded loss was not finite. Bind it in every update kernel. */
  readonly halt: GPUBuffer;

  private constructor(private readonly gpu: Gpu, private readonly pipeline: Pipeline) {
    this.halt = gpu.createBuffer('guard.halt', 4);
  }

  static async create(gpu: Gpu): Promise<GuardKernel> {
    return new GuardKernel(gpu, await gpu.pipeline('guard'));
  }

  /** Sets the flag when stats[0] (a step's loss) is not finite; record it between the loss and the updates. */
  check(stats: GPUBuffer): GpuOp {
    const bg = this.gpu.bindGroup(this.pipeline, { halt: this.halt, stats });
    return this.gpu.dispatch('guard (non-finite loss check)', this.pipeline, bg, [1]);
  }

  /** True once a guarded loss was not finite (reads the flag back). */
  async halted(): Promise<boolean> {
    return new Uint32Array(await this.gpu.read(this.halt, 4))[0] !== 0;
  }

  /** Clears the flag (after the host has handled the non-finite loss). */
  resume(): void {
    this.gpu.write(this.halt, new Uint32Array([0]));
  }

  destroy(): void {
    this.gpu.destroyBuffer(this.halt);
  }
}
