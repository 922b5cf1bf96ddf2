import { fmtBytes, type Gpu, type GpuOp } from '../gpu/index.ts';
import type { Plan } from './plan.ts';

/**
 * Cached outputs of the frozen prefix, one row per sample of a data source. When the source
 * applies no random augmentation and the prefix is deterministic, an image's prefix output is
 * the same every epoch: computing it once and replaying it lets later epochs run only the
 * trainable layers. Rows live in one device buffer when it fits the budget and the adapter's
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
    if (!plan.boundary) throw new Error('internal: feature cache used with a plan that has no frozen prefix');
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
    const row = this.rowFloats * 4;
    const ops = Array.from(indices, (idx, i) => this.gpu.copy(`feature cache store ${idx}`, plan.boundary!, i * row, this.device!, idx * row, row));
    this.mark(indices);
    return ops;
  }

  /** Host cache: reads the boundary back after the step and keeps the rows. */
  async storeHost(plan: Plan, indices: ArrayLike<number>): Promise<void> {
    this.check(indices, plan);
    if (!this.host) return;
    const rows = await this.gpu.readF32(plan.boundary!, indices.length * this.rowFloats);
    for (let i = 0; i < indices.length; i++) this.host.set(rows.subarray(i * this.rowFloats, (i + 1) * this.rowFloats), indices[i] * this.rowFloats);
    this.mark(indices);
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
    const row = this.rowFloats * 4;
    if (this.device) return Array.from(indices, (idx, i) => this.gpu.copy(`feature cache load ${idx}`, this.device!, idx * row, plan.boundary!, i * row, row));
    const rows = new Float32Array(indices.length * this.rowFloats);
    for (let i = 0; i < indices.length; i++) rows.set(this.host!.subarray(indices[i] * this.rowFloats, (indices[i] + 1) * this.rowFloats), i * this.rowFloats);
    this.gpu.write(plan.boundary!, rows);
    return [];
  }

  destroy(): void {
    if (this.device) this.gpu.destroyBuffer(this.device);
  }
}
