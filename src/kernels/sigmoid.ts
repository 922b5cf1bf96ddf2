import type { Gpu, GpuOp, Pipeline } from '../gpu/index.ts';

const WG = 128; // the shaders' workgroup size (compatibility mode guarantees 128)

/** Elementwise sigmoid (probabilities from logits for predict()). */
export class SigmoidKernel {
  private constructor(private readonly gpu: Gpu, private readonly pipeline: Pipeline, readonly size: number, readonly label: string) {}

  static async create(gpu: Gpu, shape: { size: number; label?: string }): Promise<SigmoidKernel> {
    const label = shape.label ?? 'sigmoid';
    if (!Number.isInteger(shape.size) || shape.size <= 0) throw new Error(`${label}: size must be a positive integer, got ${shape.size}`);
    return new SigmoidKernel(gpu, await gpu.pipeline('sigmoid'), shape.size, label);
  }

  forward(b: { x: GPUBuffer; y: GPUBuffer }): GpuOp {
    const shape = this.gpu.uniform(`${this.label} shape`, new Uint32Array([this.size]));
    const bg = this.gpu.bindGroup(this.pipeline, { shape, x: b.x, y: b.y });
    return this.gpu.dispatch(`${this.label} sigmoid n=${this.size}`, this.pipeline, bg, this.gpu.grid(Math.ceil(this.size / WG)));
  }
}
