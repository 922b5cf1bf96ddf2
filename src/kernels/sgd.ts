import type { Gpu, GpuOp, Pipeline } from '../gpu/index.ts';
import type { OptimizerUpdates, UpdateTarget } from './optimizer.ts';

export interface SgdOptions {
  learningRate?: number;
  momentum?: number;
  nesterov?: boolean;
  decay?: number;
}

const WG = 256;

/**
 * SGD with Keras's momentum / nesterov / decay rule, in place on parameter buffers. One
 * instance serves every parameter of a model; the learning rate for the current iteration is
 * written once per step (setIteration), so nothing is read back.
 */
export class SgdKernel implements OptimizerUpdates {
  readonly learningRate: number;
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly decay: number;
  private readonly hyper: GPUBuffer;
  /** Velocity per parameter buffer: shared by every op that updates the same parameter. */
  private readonly velocities = new Map<GPUBuffer, GPUBuffer>();

  /**
   * `halt` is the guard's sticky flag (GuardKernel.halt): updates are skipped while it is set.
   */
  private constructor(private readonly gpu: Gpu, private readonly pipeline: Pipeline, private readonly pipeline4: Pipeline, private readonly halt: GPUBuffer, o: Required<SgdOptions>) {
    this.learningRate = o.learningRate;
    this.momentum = o.momentum;
    this.nesterov = o.nesterov;
    this.decay = o.decay;
    this.hyper = gpu.uniform('sgd.hyper', new Float32Array([o.learningRate, o.momentum, 0, 0]));
  }

  static async create(gpu: Gpu, options: SgdOptions, halt: GPUBuffer): Promise<SgdKernel> {
    const o = { learningRate: 0.01, momentum: 0, nesterov: false, decay: 0, ...options };
    for (const [k, v] of Object.entries({ learningRate: o.learningRate, momentum: o.momentum, decay: o.decay })) {
      if (!Number.isFinite(v) || v < 0) throw new Error(`SGD: ${k} must be a finite number >= 0, got ${v}`);
    }
    const entry = o.momentum > 0 ? 'momentum' : 'plain';
    const constants: Record<string, number> = o.momentum > 0 ? { NESTEROV: o.nesterov ? 1 : 0 } : {};
    const pipeline = await gpu.pipeline('sgd', { entryPoint: entry, constants });
    const pipeline4 = await gpu.pipeline('sgd', { entryPoint: `${entry}4`, constants });
    return new SgdKernel(gpu, pipeline, pipeline4, halt, o);
  }

  /** The learning rate Keras uses at `iteration` (0 for the first update). */
  learningRateAt(iteration: number): number {
    return this.learningRate / (1 + this.decay * iteration);
  }

  /** Writes the learning rate of `iteration`; call before submitting that step. */
  setIteration(iteration: number): void {
    if (this.decay > 0) this.gpu.write(this.hyper, new Float32Array([this.learningRateAt(iteration), this.momentum]));
  }

  /** Bytes of optimizer state per parameter element (momentum buffers exist only with momentum). */
  get stateBytesPerElement(): number {
    return this.momentum > 0 ? 4 : 0;
  }

  updates(targets: UpdateTarget[]): GpuOp[] {
    return targets.map((t) => this.update(t.param, t.grad, t.size, t.label));
  }

  /**
   * The update op for one parameter tensor of `size` floats. Allocates its velocity buffer
   * (zeroed) when momentum > 0.
   */
  update(param: GPUBuffer, grad: GPUBuffer, size: number, label = param.label): GpuOp {
    const gpu = this.gpu;
    const vec4 = size % 4 === 0; // 16-byte loads: much faster on CPU adapters
    const n = vec4 ? size / 4 : size;
    const sfx = vec4 ? '4' : '';
    const pipeline = vec4 ? this.pipeline4 : this.pipeline;
    const shape = gpu.uniform(`sgd.shape ${label}`, new Uint32Array([n, 0, 0, 0]));
    const resources: Record<string, GPUBuffer> = { shape, hyper: this.hyper, [`param${sfx}`]: param, [`grad${sfx}`]: grad, halt: this.halt };
    if (this.momentum > 0) {
      let v = this.velocities.get(param);
      if (!v) {
        v = gpu.createBuffer(`sgd.velocity ${label}`, size * 4); // zero-filled by WebGPU
        this.velocities.set(param, v);
      }
      resources[`velocity${sfx}`] = v;
    }
    const [x, y] = gpu.grid(Math.ceil(n / WG));
    return gpu.dispatch(`sgd ${label} n=${size}`, pipeline, gpu.bindGroup(pipeline, resources), [x, y]);
  }

  /** Velocity buffers in the order their parameters were first updated (checkpoints, tests). */
  get state(): GPUBuffer[] {
    return [...this.velocities.values()];
  }

  /** The velocity buffer of a parameter (momentum only). */
  velocityOf(param: GPUBuffer): GPUBuffer | undefined {
    return this.velocities.get(param);
  }

  /** State buffers of a parameter: [velocity] with momentum, none without. */
  stateOf(param: GPUBuffer): GPUBuffer[] {
    const v = this.velocities.get(param);
    return v ? [v] : [];
  }

  get stateNames(): string[] {
    return this.momentum > 0 ? ['velocity'] : [];
  }

  destroy(): void {
    for (const v of this.velocities.values()) this.gpu.destroyBuffer(v);
    this.velocities.clear();
    this.gpu.destroyBuffer(this.hyper);
  }
}
