import { COPY_DST, UNIFORM, type Gpu, type GpuOp } from '../../src/gpu/index.ts';
import type { OpTimer } from './timing.ts';

/** Mirrors shaders/fma_ceiling.wgsl: independent vec4 accumulators and rounds per iteration. */
const ACCUMULATORS = 8;
const UNROLL = 4;
const FLOPS_PER_ITERATION = 2 * 4 * ACCUMULATORS * UNROLL;

export interface CeilingOptions {
  /** Grow the problem until one dispatch takes at least this long (ms). */
  targetMs?: number;
  /** Timed dispatches once the size is fixed; the fastest counts. */
  repeats?: number;
  /** Most invocations to launch (the sink buffer holds 16 bytes per invocation). */
  maxInvocations?: number;
}

export interface Ceiling {
  gflops: number;
  /** Time of the fastest timed dispatch. */
  ms: number;
  workgroups: number;
  workgroupSize: number;
  iterations: number;
  flops: number;
}

/**
 * The adapter's arithmetic ceiling: GFLOP/s of a loop of independent vec4 FMAs
 * (2 * 4 * accumulators * unroll * iterations * invocations floating-point operations per
 * dispatch). create() grows the problem (workgroups double until every core / SM has work and a
 * dispatch lasts targetMs, then iterations grow if the invocation cap is reached) and times it
 * `repeats` times. The fastest dispatch counts: interference from other processes only ever
 * slows one down, so refine() can add samples during a long run (between rows) and the ceiling
 * only gets closer to the truth.
 */
export class CeilingProbe {
  private best = Number.POSITIVE_INFINITY;
  private constructor(
    private readonly gpu: Gpu,
    private readonly timer: OpTimer,
    private readonly op: GpuOp,
    private readonly buffers: GPUBuffer[],
    private readonly size: { workgroups: number; workgroupSize: number; iterations: number },
  ) {}

  static async create(gpu: Gpu, timer: OpTimer, options: CeilingOptions = {}): Promise<CeilingProbe> {
    const targetMs = options.targetMs ?? 40;
    const maxInvocations = options.maxInvocations ?? 1 << 21;
    const wg = Math.min(64, gpu.limits.maxComputeInvocationsPerWorkgroup, gpu.limits.maxComputeWorkgroupSizeX);
    const pipeline = await gpu.pipeline('fma_ceiling', { constants: { WG: wg } });
    const params = new ArrayBuffer(16);
    new Float32Array(params).set([0.5, 0.9999, 1e-4], 1);
    const paramsBuf = gpu.createBuffer('fma_ceiling.params', 16, UNIFORM | COPY_DST);
    // Out-of-range writes of a rounded-up grid are discarded by WebGPU's robust buffer access.
    const sink = gpu.createBuffer('fma_ceiling.sink', maxInvocations * 16);
    const bindGroup = gpu.bindGroup(pipeline, { params: paramsBuf, sink }, 'fma_ceiling');
    const opFor = (workgroups: number, iterations: number): GpuOp => {
      new Uint32Array(params, 0, 1)[0] = iterations;
      gpu.write(paramsBuf, new Uint8Array(params));
      return gpu.dispatch(`fma_ceiling wg=${wg}x${workgroups} iterations=${iterations}`, pipeline, bindGroup, gpu.grid(workgroups));
    };
    try {
      let workgroups = 16;
      let iterations = 256;
      let op = opFor(workgroups, iterations);
      await timer.time(op); // compile and warm up
      for (;;) {
        const { ms } = await timer.time(op);
        if (ms >= targetMs) break;
        // Scale by the shortfall (at most 16x a step, so one noisy sample cannot overshoot far).
        const factor = Math.min(16, 2 ** Math.ceil(Math.log2(Math.max(2, targetMs / Math.max(ms, 1e-3)))));
        if (workgroups * factor * wg <= maxInvocations) workgroups *= factor;
        else iterations *= factor;
        op = opFor(workgroups, iterations);
      }
      // gpu.grid may round a count above the per-dimension limit up: count what is launched.
      const launched = gpu.grid(workgroups).reduce((a, b) => a * b, 1);
      const probe = new CeilingProbe(gpu, timer, op, [paramsBuf, sink], { workgroups: launched, workgroupSize: wg, iterations });
      await probe.refine(options.repeats ?? 5);
      return probe;
    } catch (e) {
      gpu.destroyBuffer(paramsBuf);
      gpu.destroyBuffer(sink);
      throw e;
    }
  }

  /** Times `samples` more dispatches, keeping the fastest. */
  async refine(samples = 1): Promise<void> {
    for (let r = 0; r < samples; r++) this.best = Math.min(this.best, (await this.timer.time(this.op)).ms);
  }

  get ceiling(): Ceiling {
    const { workgroups, workgroupSize, iterations } = this.size;
    const flops = FLOPS_PER_ITERATION * iterations * workgroups * workgroupSize;
    return { gflops: flops / this.best / 1e6, ms: this.best, workgroups, workgroupSize, iterations, flops };
  }

  destroy(): void {
    for (const b of this.buffers) this.gpu.destroyBuffer(b);
    this.buffers.length = 0;
  }
}

/** One-shot ceiling measurement (see CeilingProbe). */
export async function measureCeiling(gpu: Gpu, timer: OpTimer, options: CeilingOptions = {}): Promise<Ceiling> {
  const probe = await CeilingProbe.create(gpu, timer, options);
  try {
    return probe.ceiling;
  } finally {
    probe.destroy();
  }
}
