import { fmtBytes, type Gpu, type GpuOp } from '../gpu/index.ts';
import type { Plan } from './plan.ts';

/**
 * Cached outputs of the forward-only region (every tensor it hands to the layers that train,
 * concatenated per sample: a residual branch may carry two), one row per sample of a data
 * source. When the source applies no random augmentation and the region is deterministic, an
 * image's row is the same every epoch: computing it once and replaying it lets later epochs run
 * only the trainable part. Rows live in one device buffer when it fits the budget and the adapter's
 * buffer limit, else in host memory (read back after each step of the first epoch).
 */
export class FeatureCache {
  readonly filled: Uint8Array;
  private readonly device: GPUBuffer | null;
  private readonly host: Float32Array | null;
  private count = 0;

  constructor(private readonly gpu: Gpu, readonly key: string, readonly samples: number, readonly rowFloats: number, budgetBytes: number) {
    const bytes = samples * rowFloats * 4;
    this.filled = new Uint8Array(samples);
    if (bytes <= budgetBytes && bytes <= gpu.limits.maxBufferSize) {
      this.device = gpu.createBuffer(`feature cache ${key} (${samples} x ${rowFloats})`, bytes);
      this.host = null;
    } else {
      this.device = null;
      this.host = new Float32Array(samples * rowFloats);
    }
  }

  /** Where the rows live, for logs. */
  describe(): string {
    const bytes = this.samples * this.rowFloats * 4;
    return `${this.samples} images x ${this.rowFloats} floats (${fmtBytes(bytes)}) in ${this.device ? 'device' : 'host'} memory`;
  }

  get onDevice(): boolean {
    return this.device !== null;
  }

  get complete(): boolean {
    return this.count === this.samples;
  }

  private check(indices: ArrayLike<number>, plan: Plan): void {
    if (!plan.boundaries.length) throw new Error('internal: feature cache used with a plan that has no forward-only region');
    if (plan.boundaries.reduce((a, b) => a + b.floats, 0) !== this.rowFloats) throw new Error('internal: feature cache rows do not match the plan');
    if (indices.length > plan.spec.batch) throw new Error(`internal: ${indices.length} indices for a batch of ${plan.spec.batch}`);
    for (let i = 0; i < indices.length; i++) {
      const idx = indices[i];
      if (!Number.isInteger(idx) || idx < 0 || idx >= this.samples) throw new Error(`feature cache: sample index ${idx} is outside the data source's ${this.samples} samples`);
    }
  }

  /** Device cache: ops that copy the plan's boundary rows into the cache (after the prefix ran). */
  storeOps(plan: Plan, indices: ArrayLike<number>): GpuOp[] {
    this.check(indices, plan);
    if (!this.device) return [];
    const ops = this.pieces(plan).flatMap(({ buffer, floats, offset }) =>
      Array.from(indices, (idx, i) => this.gpu.copy(`feature cache store ${idx}`, buffer, i * floats * 4, this.device!, (idx * this.rowFloats + offset) * 4, floats * 4)));
    this.mark(indices);
    return ops;
  }

  /** Host cache: reads the boundary back after the step and keeps the rows. */
  async storeHost(plan: Plan, indices: ArrayLike<number>): Promise<void> {
    this.check(indices, plan);
    if (!this.host) return;
    for (const { buffer, floats, offset } of this.pieces(plan)) {
      const rows = await this.gpu.readF32(buffer, indices.length * floats);
      for (let i = 0; i < indices.length; i++) this.host.set(rows.subarray(i * floats, (i + 1) * floats), indices[i] * this.rowFloats + offset);
    }
    this.mark(indices);
  }

  /** The plan's boundary tensors with their offsets in a row. */
  private pieces(plan: Plan): { buffer: GPUBuffer; floats: number; offset: number }[] {
    let offset = 0;
    return plan.boundaries.map((b) => {
      const p = { ...b, offset };
      offset += b.floats;
      return p;
    });
  }

  private mark(indices: ArrayLike<number>): void {
    for (let i = 0; i < indices.length; i++) {
      if (!this.filled[indices[i]]) {
        this.filled[indices[i]] = 1;
        this.count++;
      }
    }
  }

  /** Puts cached rows into the plan's boundary: device copies as ops, host rows written now. */
  loadOps(plan: Plan, indices: ArrayLike<number>): GpuOp[] {
    this.check(indices, plan);
    const pieces = this.pieces(plan);
    if (this.device) {
      return pieces.flatMap(({ buffer, floats, offset }) =>
        Array.from(indices, (idx, i) => this.gpu.copy(`feature cache load ${idx}`, this.device!, (idx * this.rowFloats + offset) * 4, buffer, i * floats * 4, floats * 4)));
    }
    for (const { buffer, floats, offset } of pieces) {
      const rows = new Float32Array(indices.length * floats);
      for (let i = 0; i < indices.length; i++) rows.set(this.host!.subarray(indices[i] * this.rowFloats + offset, indices[i] * this.rowFloats + offset + floats), i * floats);
      this.gpu.write(buffer, rows);
    }
    return [];
  }

  destroy(): void {
    if (this.device) this.gpu.destroyBuffer(this.device);
  }
}
