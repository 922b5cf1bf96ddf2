// The one place that decides which kernel family runs a convolution or a GEMM. The families
// compute the same thing: 'subgroup' kernels share loaded values through subgroup operations in
// workgroups of 8 (fastest on CPU adapters such as lavapipe, where a workgroup is one SIMD loop;
// too few invocations for a real GPU); 'tiled' kernels stage 32x32 tiles in workgroup memory
// (they run on any adapter and any shape); 'large' convolutions stage 64x64 tiles with 4x8
// outputs per invocation and vec4 loads (fewer workgroup-memory reads per multiply, for GPUs;
// channels divisible by 4). gpu.kernelFamily (acquireGpu's `kernels`, or
// $WEBGPU_FINETUNE_KERNELS) forces one family wherever the shape allows it; under 'auto' the
// autotuner (autotune.ts), where the device has one, measures the candidates instead.
import type { Gpu } from '../gpu/index.ts';

export type KernelVariant = 'tiled' | 'subgroup';
export type ConvVariant = KernelVariant | 'large';

/** Lanes the subgroup kernels are written for: they need subgroups at least this wide. */
export const SUBGROUP_LANES = 8;

/** Whether this device can run the subgroup kernels at all: the feature, and no subgroup narrower than 8. */
export function subgroupsUsable(gpu: Gpu): boolean {
  const info = (gpu.device as GPUDevice & { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
  return gpu.features.has('subgroups') && (info?.subgroupMinSize ?? 0) >= SUBGROUP_LANES;
}

/** A forced 'subgroup' family on a device without usable subgroups: say so once, clearly. */
function checkForcedSubgroup(gpu: Gpu, what: string): void {
  if (gpu.kernelFamily === 'subgroup' && !subgroupsUsable(gpu)) {
    throw new Error(`${what}: the 'subgroup' kernel family was forced (WEBGPU_FINETUNE_KERNELS or acquireGpu({ kernels })), but this adapter has no 'subgroups' feature with subgroups of at least ${SUBGROUP_LANES} lanes; use auto or tiled`);
  }
}

/** Whether the 'large' conv kernels fit this device: 128 invocations and 8 KiB of workgroup memory. */
export function largeTilesFit(gpu: Gpu): boolean {
  return gpu.limits.maxComputeInvocationsPerWorkgroup >= 128 && gpu.limits.maxComputeWorkgroupStorageSize >= 8192;
}

/**
 * A convolution's direct-kernel family, by rule (the autotuner measures instead where it runs).
 * `shape.subgroup`: the subgroup kernels' shape rule holds (output channels divisible by 4);
 * `shape.vec4`: input and output channels divisible by 4 (the large tiles' rule). auto:
 * subgroup on CPU (fallback) adapters, tiled on GPUs.
 */
export function convVariant(gpu: Gpu, shape: { subgroup: boolean; vec4: boolean }, label: string): ConvVariant {
  checkForcedSubgroup(gpu, label);
  const can = shape.subgroup && subgroupsUsable(gpu);
  if (gpu.kernelFamily === 'tiled') return 'tiled';
  if (gpu.kernelFamily === 'large') return shape.vec4 && largeTilesFit(gpu) ? 'large' : 'tiled';
  if (gpu.kernelFamily === 'subgroup') return can ? 'subgroup' : 'tiled';
  return can && gpu.adapter.isFallbackAdapter ? 'subgroup' : 'tiled';
}

/**
 * Whether a convolution's forward pass (and input gradient) runs by Winograd F(2x2, 3x3)
 * (conv2d-winograd.ts), by rule: only when the 'winograd' family is asked for, for 3x3 stride-1
 * kernels with at least 8 input channels (with fewer the transforms cost more than the
 * multiplies saved) whose scratch fits. Not in the rules of auto: on lavapipe it wins only on
 * some shapes (blocks 3-4 of VGG16 at 60x90), which the tuner finds by measuring.
 */
export function convWinograd(gpu: Gpu, s: { kernelSize: [number, number]; strides?: [number, number]; inChannels: number }, scratchFits: boolean): boolean {
  const [sh, sw] = s.strides ?? [1, 1];
  return gpu.kernelFamily === 'winograd' && s.kernelSize[0] === 3 && s.kernelSize[1] === 3 && sh === 1 && sw === 1 && s.inChannels >= 8 && scratchFits;
}

/**
 * A dense layer's GEMM family. `aligned`: the dimensions the subgroup GEMM reads as vec4s are
 * multiples of 4. auto: subgroup wherever it applies (measured faster on lavapipe, and the GEMMs
 * of a dense layer are small next to the convolutions on a GPU).
 */
export function gemmVariant(gpu: Gpu, aligned: boolean, label: string): KernelVariant {
  checkForcedSubgroup(gpu, label);
  // 'large' is a convolution family; dense layers then take the GPU path, tiled
  if (gpu.kernelFamily === 'tiled' || gpu.kernelFamily === 'large') return 'tiled';
  return aligned && subgroupsUsable(gpu) ? 'subgroup' : 'tiled';
}
