export { acquireGpu, kernelFamilyOption, platformGpu, type AcquireOptions } from './device.ts';
export { Gpu, fmtBytes, KERNEL_FAMILIES, type KernelFamily, STORAGE, COPY_SRC, COPY_DST, UNIFORM, MAP_READ, type AdapterDescription, type Pipeline, type GpuOp, type BufferBinding } from './gpu.ts';
export { GpuError, NO_ADAPTER_HELP, type GpuErrorKind } from './errors.ts';
export { loadShader, registerShaders } from './shaders.ts';
