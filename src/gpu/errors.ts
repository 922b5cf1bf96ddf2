/** Errors raised by the WebGPU runtime. Each names what was running (kernel label with shapes). */
export type GpuErrorKind = 'no-adapter' | 'validation' | 'out-of-memory' | 'internal' | 'device-lost' | 'limit' | 'binding';

export class GpuError extends Error {
  readonly kind: GpuErrorKind;
  readonly context: string;
  constructor(kind: GpuErrorKind, context: string, message: string) {
    super(context ? `${context}: ${message}` : message);
    this.name = 'GpuError';
    this.kind = kind;
    this.context = context;
  }
}

export const NO_ADAPTER_HELP =
  'No WebGPU adapter found. On Linux without a GPU run `bash scripts/install-software-gpu.sh` ' +
  '(installs Mesa lavapipe from Debian bookworm-backports); elsewhere install your GPU\'s Vulkan, ' +
  'Metal or D3D12 driver. In a browser, use one with WebGPU enabled (Chrome/Edge 113+, or the ' +
  'flag --enable-unsafe-webgpu).';
