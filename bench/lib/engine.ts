import { acquireGpu, platformGpu, type Gpu } from '../../src/gpu/index.ts';

/**
 * Dawn rounds timestamps to 2^16 ns (about 65 us) unless told otherwise, to blunt timing
 * attacks in browsers. A benchmark wants the real resolution: small kernels (dropout, the loss)
 * run in tens of microseconds.
 */
const DAWN_BENCH_TOGGLES = ['disable-dawn-features=timestamp_quantization'];

export interface BenchGpu {
  /** The Dawn GPU object; TF.js gets the same one through navigator.gpu. */
  dawn: GPU;
  gpu: Gpu;
  /** Whether our device can write GPU timestamps (the adapter has 'timestamp-query'). */
  timestamps: boolean;
}

/**
 * Opens a Dawn instance with full-resolution timestamps and our device on it. Both engines must
 * use this one instance so they run on the same adapter.
 */
export async function openBenchGpu(): Promise<BenchGpu> {
  const dawn = await platformGpu(DAWN_BENCH_TOGGLES);
  const gpu = await acquireGpu({ gpu: dawn });
  return { dawn, gpu, timestamps: gpu.features.has('timestamp-query') };
}
