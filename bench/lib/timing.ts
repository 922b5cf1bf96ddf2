import { COPY_DST, COPY_SRC, MAP_READ, type Gpu, type GpuOp } from '../../src/gpu/index.ts';
import { QUERY_RESOLVE } from '../../src/gpu/gpu.ts';

/**
 * How a run is timed:
 * - 'gpu-timestamps': ours from GPU timestamps written around the op inside its command buffer;
 *   TF.js from tf.time()'s kernelMs, which sums the GPU timestamps of each of its programs.
 * - 'wall': wall clock from submit to queue completion; for TF.js from the op call to the
 *   completion of the work it queued.
 */
export type TimingMethod = 'gpu-timestamps' | 'wall';

export function describeMethod(method: TimingMethod): string {
  return method === 'gpu-timestamps'
    ? 'GPU timestamps (ours: end of an empty pass before the op to end of one after it, in the same command buffer; TF.js: tf.time() kernelMs = sum of its per-program pass timestamps)'
    : 'wall clock (ours: submit to onSubmittedWorkDone; TF.js: op call to onSubmittedWorkDone of the work it queued)';
}

/** One measurement: `ms` by the run's method, `wallMs` always by wall clock. */
export interface Sample {
  ms: number;
  wallMs: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Times our GpuOps. With timestamps, the op is bracketed by two empty compute passes whose
 * end-of-pass timestamps are written in the same command buffer: the second is written once all
 * earlier work (every pass, copy and clear the op records) has finished, so the difference is
 * the op's device time without submit and readback overhead.
 */
export class OpTimer {
  readonly method: TimingMethod;
  private readonly querySet: GPUQuerySet | null = null;
  private readonly resolveBuf: GPUBuffer | null = null;
  private readonly staging: GPUBuffer | null = null;

  constructor(private readonly gpu: Gpu, method: TimingMethod) {
    if (method === 'gpu-timestamps' && !gpu.features.has('timestamp-query')) {
      throw new Error(`GPU timestamps requested but this adapter (${gpu.describe()}) has no 'timestamp-query' feature; use wall-clock timing`);
    }
    this.method = method;
    if (method === 'gpu-timestamps') {
      this.querySet = gpu.device.createQuerySet({ label: 'bench timestamps', type: 'timestamp', count: 2 });
      this.resolveBuf = gpu.createBuffer('bench timestamps resolve', 16, QUERY_RESOLVE | COPY_SRC);
      this.staging = gpu.createBuffer('bench timestamps read', 16, MAP_READ | COPY_DST);
    }
  }

  async time(op: GpuOp): Promise<Sample> {
    const gpu = this.gpu;
    const { querySet, resolveBuf, staging } = this;
    if (!querySet || !resolveBuf || !staging) {
      const t0 = performance.now();
      gpu.submit(op.label, op);
      await gpu.sync();
      const wallMs = performance.now() - t0;
      return { ms: wallMs, wallMs };
    }
    const timed: GpuOp = {
      label: op.label,
      encode(encoder) {
        encoder.beginComputePass({ label: 'bench t0', timestampWrites: { querySet, endOfPassWriteIndex: 0 } }).end();
        op.encode(encoder);
        encoder.beginComputePass({ label: 'bench t1', timestampWrites: { querySet, endOfPassWriteIndex: 1 } }).end();
        encoder.resolveQuerySet(querySet, 0, 2, resolveBuf, 0);
        encoder.copyBufferToBuffer(resolveBuf, 0, staging, 0, 16);
      },
    };
    const t0 = performance.now();
    gpu.submit(op.label, timed);
    await gpu.sync();
    const wallMs = performance.now() - t0;
    await staging.mapAsync(1 /* GPUMapMode.READ */);
    const [begin, end] = new BigUint64Array(staging.getMappedRange().slice(0));
    staging.unmap();
    // Timestamps are nanoseconds; a few implementations may return 0 or go backwards on
    // overflow: treat that as a failed measurement rather than reporting nonsense.
    if (end <= begin) throw new Error(`${op.label}: GPU timestamps did not advance (${begin} -> ${end}); rerun with --wall`);
    return { ms: Number(end - begin) / 1e6, wallMs };
  }

  destroy(): void {
    this.querySet?.destroy();
    if (this.resolveBuf) this.gpu.destroyBuffer(this.resolveBuf);
    if (this.staging) this.gpu.destroyBuffer(this.staging);
  }
}
