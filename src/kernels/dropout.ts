import type { Gpu, GpuOp, Pipeline } from '../gpu/index.ts';

/** size = elements per step (batch * features). */
export interface DropoutShape {
  size: number;
  rate: number;
  seed: number;
  label?: string;
}

/** One 32-bit mixing round (xor-shift / multiply, full avalanche); the same as mix32 in dropout.wgsl. */
function mix32(v: number): number {
  let x = v >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * The mask's random bits for one element: a counter-based hash of (seed, step, index) in u32
 * integer arithmetic, so every adapter and this function agree bit for bit. Each argument is
 * taken modulo 2^32.
 */
export function dropoutBits(seed: number, step: number, index: number): number {
  const key = mix32((mix32((seed ^ 0x9e3779b9) >>> 0) + (step >>> 0)) >>> 0);
  return mix32((mix32((index ^ key) >>> 0) + key) >>> 0);
}

/** The u32 threshold for `rate`: an element is kept iff its bits are >= it (rate 0 keeps all). */
export function dropoutThreshold(rate: number): number {
  return Math.min(Math.round(rate * 2 ** 32), 0xffffffff);
}

/** Whether element `index` survives dropout at (seed, step): exactly what the GPU computes. */
export function dropoutKeep(seed: number, step: number, index: number, rate: number): boolean {
  return dropoutBits(seed, step, index) >= dropoutThreshold(rate);
}

const MAX_WG = 256;

/**
 * Inverted dropout (Keras: kept values scaled by 1 / (1 - rate), training phase only). The mask
 * is regenerated from (seed, step, element index) in forward and backward, so nothing is
 * stored; setStep() selects the mask of a training step. x and y (dy and dx) must be distinct
 * buffers.
 */
export class DropoutKernel {
  readonly size: number;
  readonly rate: number;
  readonly seed: number;
  readonly label: string;
  private readonly params: GPUBuffer;
  private readonly owned: GPUBuffer[] = [];
  private readonly wg: number;

  private constructor(private readonly gpu: Gpu, private readonly pipeline: Pipeline, shape: Required<DropoutShape>, wg: number) {
    this.size = shape.size;
    this.rate = shape.rate;
    this.seed = shape.seed;
    this.label = shape.label;
    this.wg = wg;
    this.params = gpu.uniform(`${this.label} dropout.params`, new Uint32Array(this.paramsData(0)));
    this.owned.push(this.params);
  }

  static async create(gpu: Gpu, shape: DropoutShape): Promise<DropoutKernel> {
    const label = shape.label ?? 'dropout';
    const { size, rate, seed } = shape;
    if (!Number.isInteger(size) || size <= 0 || size > 0xffffffff) {
      throw new Error(`${label}: dropout size must be a positive integer below 2^32 (batch * features), got ${size}`);
    }
    if (!(typeof rate === 'number' && rate >= 0 && rate < 1)) {
      throw new Error(`${label}: dropout rate must be in [0, 1), got ${rate}`);
    }
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new Error(`${label}: dropout seed must be an integer in [0, 2^32), got ${seed}`);
    }
    const wg = workgroupSize(gpu);
    const pipeline = await gpu.pipeline('dropout', { entryPoint: 'apply', constants: { WG: wg } });
    return new DropoutKernel(gpu, pipeline, { size, rate, seed, label }, wg);
  }

  private paramsData(step: number): ArrayBuffer {
    const data = new ArrayBuffer(16);
    const u = new Uint32Array(data);
    u[0] = this.seed;
    u[1] = step >>> 0;
    u[2] = dropoutThreshold(this.rate);
    new Float32Array(data)[3] = 1 / (1 - this.rate);
    return data;
  }

  /** Selects the mask of training step `step` (taken modulo 2^32); call before submitting it. */
  setStep(step: number): void {
    if (!Number.isInteger(step) || step < 0) throw new Error(`${this.label}: dropout step must be an integer >= 0, got ${step}`);
    this.gpu.write(this.params, new Uint32Array(this.paramsData(step)));
  }

  /** y = keep ? x / (1 - rate) : 0. */
  forward(b: { x: GPUBuffer; y: GPUBuffer }): GpuOp {
    return this.apply('forward', b.x, b.y, 'x', 'y');
  }

  /** dx = keep ? dy / (1 - rate) : 0, with the same mask as forward at the same step. */
  backward(b: { dy: GPUBuffer; dx: GPUBuffer }): GpuOp {
    return this.apply('backward', b.dy, b.dx, 'dy', 'dx');
  }

  /**
   * One dispatch per chunk; chunks exist only when the tensor is larger than one storage
   * binding may be (maxStorageBufferBindingSize), and start at aligned offsets.
   */
  private apply(pass: string, src: GPUBuffer, dst: GPUBuffer, srcName: string, dstName: string): GpuOp {
    const gpu = this.gpu;
    const bytes = this.size * 4;
    for (const [name, buf] of [[srcName, src], [dstName, dst]] as const) {
      if (buf.size < bytes) {
        throw new Error(`${this.label}: dropout.${pass} needs ${name} of at least ${this.size} floats (${bytes} bytes), got a ${buf.size}-byte buffer '${buf.label}'`);
      }
    }
    if (src === dst) throw new Error(`${this.label}: dropout.${pass} cannot run in place (${srcName} and ${dstName} are the same buffer)`);
    const align = gpu.limits.minStorageBufferOffsetAlignment;
    const chunkElems = Math.floor(gpu.limits.maxStorageBufferBindingSize / align) * align / 4;
    const ops: GpuOp[] = [];
    for (let base = 0; base < this.size; base += chunkElems) {
      const count = Math.min(chunkElems, this.size - base);
      const chunk = gpu.uniform(`${this.label} dropout.chunk ${base}`, new Uint32Array([base, count, 0, 0]));
      this.owned.push(chunk);
      const group = gpu.bindGroup(this.pipeline, {
        params: this.params,
        chunk,
        src: { buffer: src, offset: base * 4, size: count * 4 },
        dst: { buffer: dst, offset: base * 4, size: count * 4 },
      }, `${this.label} dropout.${pass}`);
      const chunkNote = count < this.size ? ` chunk=${base}+${count}` : '';
      ops.push(gpu.dispatch(`${this.label} dropout.${pass} n=${this.size} rate=${this.rate}${chunkNote}`, this.pipeline, group, gpu.grid(Math.ceil(count / this.wg))));
    }
    if (ops.length === 1) return ops[0];
    return { label: ops[0].label, encode: (encoder) => { for (const op of ops) op.encode(encoder); } };
  }

  destroy(): void {
    for (const b of this.owned) this.gpu.destroyBuffer(b);
    this.owned.length = 0;
  }
}

/** The largest power of two <= min(256, maxComputeInvocationsPerWorkgroup). */
function workgroupSize(gpu: Gpu): number {
  const max = Math.min(MAX_WG, gpu.limits.maxComputeInvocationsPerWorkgroup, gpu.limits.maxComputeWorkgroupSizeX);
  return 2 ** Math.floor(Math.log2(max));
}
