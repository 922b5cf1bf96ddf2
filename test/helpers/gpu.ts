import { acquireGpu, type Gpu } from '../../src/gpu/index.ts';

let shared: Promise<Gpu> | undefined;

/**
 * The real WebGPU device for tests. No adapter is a failure (with the install hint from
 * acquireGpu's error), never a skip.
 */
export function testGpu(): Promise<Gpu> {
  shared ??= acquireGpu();
  return shared;
}

/** Fills a buffer with NaN so any element a kernel fails to write shows up in comparisons. */
export function poison(gpu: Gpu, buffer: GPUBuffer): void {
  const n = buffer.size / 4;
  gpu.write(buffer, new Float32Array(n).fill(Number.NaN));
}

/** A storage buffer of `n` floats, poisoned. */
export function output(gpu: Gpu, label: string, n: number): GPUBuffer {
  const b = gpu.createBuffer(label, n * 4);
  poison(gpu, b);
  return b;
}
