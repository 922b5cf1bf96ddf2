import { GpuError, NO_ADAPTER_HELP } from './errors.ts';
import { Gpu, KERNEL_FAMILIES, type KernelFamily } from './gpu.ts';

export interface AcquireOptions {
  /** 'compatibility' asks for a compatibility-mode adapter (e.g. OpenGL ES backends). */
  featureLevel?: 'core' | 'compatibility';
  powerPreference?: GPUPowerPreference;
  /** Node only: Dawn toggles passed to create(), e.g. ['backend=opengles']. */
  dawnOptions?: string[];
  /** Use this GPU object instead of navigator.gpu / Dawn (tests, embedding). */
  gpu?: GPU;
  /** Force a kernel family (see KERNEL_FAMILIES); default: $WEBGPU_FINETUNE_KERNELS in Node, else 'auto'. */
  kernels?: KernelFamily;
  /**
   * 'adapter' (default): ask for the adapter's real limits. 'default': the WebGPU defaults every
   * device guarantees (to check that every kernel fits a minimal device).
   */
  limits?: 'adapter' | 'default';
}

/** The kernel family asked for: the option, else $WEBGPU_FINETUNE_KERNELS (Node), else 'auto'. */
export function kernelFamilyOption(asked?: string): KernelFamily {
  const env = isNode ? process.env.WEBGPU_FINETUNE_KERNELS : undefined;
  const value = asked ?? (env === '' ? undefined : env) ?? 'auto';
  if (!(KERNEL_FAMILIES as readonly string[]).includes(value)) {
    const where = asked !== undefined ? 'acquireGpu({ kernels })' : 'WEBGPU_FINETUNE_KERNELS';
    throw new GpuError('limit', 'kernels', `${where} is '${value}'; it must be one of ${KERNEL_FAMILIES.join(', ')} (auto: chosen per adapter and shape)`);
  }
  return value as KernelFamily;
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

/** The limits we ask for at the adapter's real value; defaults are far below what we need. */
const WANTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBufferBindingSize',
  'maxBindGroups',
] as const;

const WANTED_FEATURES: GPUFeatureName[] = ['timestamp-query', 'shader-f16', 'subgroups' as GPUFeatureName];

async function nodeGpu(dawnOptions: string[]): Promise<GPU> {
  // Dawn for Node. The specifier is kept out of static analysis so browser bundles skip it.
  const specifier = 'webgpu';
  const mod = await import(/* @vite-ignore */ specifier);
  // Dawn's objects are checked with instanceof by user code (and TF.js): expose its classes
  // (GPUBufferUsage etc.) the way a browser does.
  for (const [k, v] of Object.entries(mod.globals as Record<string, unknown>)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp'; // Mesa complains without it
  return mod.create(dawnOptions) as GPU;
}

let nodeGpuCache: Promise<GPU> | undefined;

/** Returns the platform's GPU object: navigator.gpu in browsers, Dawn in Node. */
export async function platformGpu(dawnOptions: string[] = []): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu && !isNode) return nav.gpu;
  if (isNode) {
    if (dawnOptions.length) return nodeGpu(dawnOptions);
    nodeGpuCache ??= nodeGpu([]);
    return nodeGpuCache;
  }
  throw new GpuError('no-adapter', '', `this browser has no navigator.gpu. ${NO_ADAPTER_HELP}`);
}

/**
 * Acquires an adapter and a device with the adapter's real limits (so software and
 * compatibility-mode adapters are usable), and wraps it in a Gpu runtime.
 */
export async function acquireGpu(options: AcquireOptions = {}): Promise<Gpu> {
  const gpu = options.gpu ?? (await platformGpu(options.dawnOptions));
  const adapterOptions: GPURequestAdapterOptions & { featureLevel?: string } = {};
  if (options.powerPreference) adapterOptions.powerPreference = options.powerPreference;
  if (options.featureLevel) adapterOptions.featureLevel = options.featureLevel;
  const adapter = await gpu.requestAdapter(adapterOptions);
  if (!adapter) throw new GpuError('no-adapter', '', NO_ADAPTER_HELP);

  const kernels = kernelFamilyOption(options.kernels);
  const requiredLimits: Record<string, number> = {};
  const al = adapter.limits as unknown as Record<string, number>;
  if (options.limits !== 'default') for (const name of WANTED_LIMITS) if (typeof al[name] === 'number') requiredLimits[name] = al[name];
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f));

  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'webgpu-finetune' });
  } catch (e) {
    throw new GpuError('no-adapter', 'requestDevice', `${(e as Error).message}. ${NO_ADAPTER_HELP}`);
  }
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  return new Gpu(device, {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    isFallbackAdapter: Boolean((info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter),
    featureLevel: options.featureLevel ?? 'core',
  }, gpu, kernels);
}
