import { acquireGpu, type AcquireOptions, type Gpu } from '../gpu/index.ts';

let current: Promise<Gpu> | null = null;
let resolved: Gpu | null = null;

/** The device models run on: acquired on first use (Dawn in Node, navigator.gpu in browsers). */
export function getGpu(options?: AcquireOptions): Promise<Gpu> {
  current ??= acquireGpu(options).then((g) => (resolved = g));
  return current;
}

/** Uses a specific device for models built from now on (e.g. a compatibility-mode adapter). */
export function setGpu(gpu: Gpu): void {
  current = Promise.resolve(gpu);
  resolved = gpu;
}

/** The device if one was acquired already (for synchronous accounting). */
export function currentGpu(): Gpu | null {
  return resolved;
}

/** Like tf.memory(): bytes and buffers the engine holds on the device now. */
export function memory(): { numBytes: number; numBuffers: number } {
  return resolved ? resolved.memory() : { numBytes: 0, numBuffers: 0 };
}
