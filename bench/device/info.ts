/**
 * The device pack's first step: which adapter this machine gives Dawn, its limits and features,
 * its subgroup sizes, and which kernel family each kind of layer gets (src/kernels/variants.ts).
 *
 *   npx tsx bench/device/info.ts          (in the pack: bin/node bench/lib/device-info.mjs)
 */
import { convVariant, gemmVariant, subgroupsUsable } from '../../src/kernels/variants.ts';
import { openBenchGpu } from '../lib/engine.ts';

async function main(): Promise<void> {
  const { gpu, timestamps } = await openBenchGpu();
  console.log(`adapter: ${gpu.describe()}`);
  const info = (gpu.device as GPUDevice & { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
  const l = gpu.limits as unknown as Record<string, number>;
  for (const k of ['maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupStorageSize', 'maxStorageBufferBindingSize', 'maxBufferSize', 'maxStorageBuffersPerShaderStage']) console.log(`  ${k.padEnd(36)} ${l[k]}`);
  console.log(`features: ${[...gpu.features].sort().join(', ')}`);
  console.log(`subgroups: min ${info?.subgroupMinSize ?? '?'}, max ${info?.subgroupMaxSize ?? '?'}; subgroup kernels ${subgroupsUsable(gpu) ? 'usable' : 'not usable'}`);
  console.log(`kernels (${gpu.kernelFamily}): convolutions ${convVariant(gpu, { subgroup: true, vec4: true }, 'conv2d')}, dense GEMMs ${gemmVariant(gpu, true, 'dense')}`);
  console.log(`timing: ${timestamps ? 'GPU timestamps' : 'wall clock'}`);
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
