import type { Tensor } from '@tensorflow/tfjs';
import type { Sample, TimingMethod } from './timing.ts';

export type Tf = typeof import('@tensorflow/tfjs');
export type TfOutput = Tensor | Tensor[] | void;

/** The parts of TF.js's WebGPUBackend (4.22) the wall-clock timer uses to flush its work. */
interface WebGpuBackendInternals {
  device?: GPUDevice;
  queue?: GPUQueue;
  commandEncoder?: GPUCommandEncoder | null;
  endComputePassEncoder?: () => void;
  submitQueue?: () => void;
  adapterInfo?: { vendor?: string; architecture?: string };
}

let loaded: Promise<Tf> | undefined;

/**
 * Loads TensorFlow.js with its WebGPU backend on `dawn`, the same Dawn instance (and adapter)
 * our engine uses. The backend registers itself at module load only if navigator.gpu exists
 * then, so navigator is set first and the modules are imported dynamically afterwards. Dawn's
 * globals (GPUBuffer etc., used by the backend's instanceof checks) were installed by
 * platformGpu().
 */
export function loadTfjs(dawn: GPU): Promise<Tf> {
  loaded ??= (async () => {
    // Node 20 has no navigator; newer Node versions have one without `gpu`, as a getter.
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: dawn }, configurable: true, writable: true });
    const tf = await import('@tensorflow/tfjs');
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!tf.findBackendFactory('webgpu')) {
      throw new Error("TF.js's WebGPU backend did not register (was @tensorflow/tfjs-backend-webgpu imported before navigator.gpu was set?)");
    }
    if (!(await tf.setBackend('webgpu'))) throw new Error("tf.setBackend('webgpu') failed on this adapter");
    await tf.ready();
    // Small tensors that live on the CPU would otherwise run on TF.js's CPU backend, outside the
    // GPU timing: keep every op on the adapter.
    tf.env().set('WEBGPU_CPU_FORWARD', false);
    return tf;
  })();
  return loaded;
}

/** "vendor / architecture" of the adapter TF.js's device came from, to confirm it is ours. */
export function tfjsAdapter(tf: Tf): string {
  const info = (tf.backend() as unknown as WebGpuBackendInternals).adapterInfo;
  return [info?.vendor, info?.architecture].filter(Boolean).join(' / ') || 'unknown';
}

function tensorsOf(out: TfOutput): Tensor[] {
  if (!out) return [];
  return Array.isArray(out) ? out : [out];
}

/**
 * Times TF.js ops. `run` is called inside tf.tidy, so intermediates are freed; its outputs are
 * disposed after the measurement.
 */
export class TfjsTimer {
  constructor(private readonly tf: Tf, readonly method: TimingMethod) {}

  async time(run: () => TfOutput): Promise<Sample> {
    const tf = this.tf;
    let outputs: Tensor[] = [];
    try {
      if (this.method === 'gpu-timestamps') {
        // tf.time records each program in its own timestamped pass and awaits the results.
        const info = await tf.time(() => {
          outputs = tensorsOf(tf.tidy(run));
        });
        if (typeof info.kernelMs !== 'number') throw new Error(`TF.js could not time on the GPU: ${info.kernelMs.error}; rerun with --wall`);
        return { ms: info.kernelMs, wallMs: info.wallMs };
      }
      const t0 = performance.now();
      outputs = tensorsOf(tf.tidy(run));
      await this.flush(outputs);
      const wallMs = performance.now() - t0;
      return { ms: wallMs, wallMs };
    } finally {
      for (const t of outputs) t.dispose();
    }
  }

  /**
   * Waits for the work TF.js has queued. Its backend batches dispatches into a command encoder
   * that it submits later, so submit it now and wait for the queue; if the backend's internals
   * are not what 4.22 has, read the outputs back instead (slower: includes the copy).
   */
  private async flush(outputs: Tensor[]): Promise<void> {
    const b = this.tf.backend() as unknown as WebGpuBackendInternals;
    if (b.queue && b.endComputePassEncoder && b.submitQueue) {
      if (b.commandEncoder) {
        b.endComputePassEncoder.call(b);
        b.submitQueue.call(b);
      }
      await b.queue.onSubmittedWorkDone();
      return;
    }
    await Promise.all(outputs.map((t) => t.data()));
  }
}
