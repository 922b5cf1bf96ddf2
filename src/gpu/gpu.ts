import { GpuError } from './errors.ts';
import { reflectEntry, type BindingInfo } from './reflect.ts';
import { loadShader } from './shaders.ts';

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  featureLevel: 'core' | 'compatibility';
}

/**
 * Which kernel family runs where several could: 'auto' lets the adapter and each shape decide
 * (src/kernels/variants.ts); 'tiled' (workgroup-memory tiles, what GPUs run) and 'subgroup'
 * (subgroup broadcasts, what CPU adapters run fastest) force one wherever the shape allows it;
 * 'winograd' runs 3x3 stride-1 convolutions' forward pass by Winograd F(2x2, 3x3), the rest as auto;
 * 'large' runs convolutions in 64x64 register-blocked tiles (a GPU path) and dense layers tiled.
 * For tests and for users: WEBGPU_FINETUNE_KERNELS in Node, acquireGpu({ kernels }) anywhere.
 */
export const KERNEL_FAMILIES = ['auto', 'tiled', 'subgroup', 'winograd', 'large'] as const;
export type KernelFamily = (typeof KERNEL_FAMILIES)[number];

/** A compute pipeline together with the bindings its WGSL declares. */
export interface Pipeline {
  shader: string;
  entryPoint: string;
  label: string;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  bindings: BindingInfo[];
}

export type BufferBinding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

/** One recordable piece of GPU work (one or more dispatches or copies), labelled for errors. */
export interface GpuOp {
  label: string;
  encode(encoder: GPUCommandEncoder): void;
}

export interface PipelineOptions {
  entryPoint?: string;
  /** Values for WGSL `override` constants; unknown names are an error. */
  constants?: Record<string, number>;
}

export const STORAGE = 0x80; // GPUBufferUsage.STORAGE, also valid before Dawn's globals exist
export const COPY_SRC = 0x04;
export const COPY_DST = 0x08;
export const UNIFORM = 0x40;
export const MAP_READ = 0x01;
export const QUERY_RESOLVE = 0x200;

/**
 * The runtime around one GPUDevice: counted buffer allocation, shader pipelines derived from
 * WGSL and cached, labelled submits whose validation / out-of-memory errors become thrown
 * errors naming the work, and readback.
 */
export class Gpu {
  readonly device: GPUDevice;
  readonly adapter: AdapterDescription;
  readonly limits: GPUSupportedLimits;
  readonly features: ReadonlySet<string>;

  /** Which kernel each layer got, by its label (noted by the kernels; `train --verbose` prints them). */
  readonly kernelChoices = new Map<string, string>();
  private readonly live = new Map<GPUBuffer, number>();
  private liveBytes = 0;
  private readonly pipelines = new Map<string, Promise<Pipeline>>();
  private pendingScopes: Promise<GpuError | null>[] = [];
  private firstError: GpuError | null = null;
  private lost: GpuError | null = null;

  /**
   * `instance` is the navigator.gpu-like object the device came from: held here because Dawn
   * tears the instance down when it is garbage-collected, crashing the process mid-step if a
   * caller kept only the Gpu (platformGpu() + acquireGpu({ gpu }) without keeping the instance).
   */
  constructor(device: GPUDevice, adapter: AdapterDescription, private readonly instance: GPU | null = null, readonly kernelFamily: KernelFamily = 'auto') {
    this.device = device;
    this.adapter = adapter;
    this.limits = device.limits;
    this.features = new Set(device.features as unknown as Iterable<string>);
    device.lost.then((info) => {
      if (info.reason !== 'destroyed') {
        this.lost = new GpuError('device-lost', 'device', `the GPU device was lost (${info.reason}): ${info.message}. Restart the program; if it repeats, lower the batch size or input size.`);
      }
    });
    device.addEventListener?.('uncapturederror', (ev: Event) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      this.firstError ??= new GpuError(errorKind(err), 'uncaptured', err.message);
    });
  }

  /** One line for logs: vendor, architecture, description, fallback or not. */
  describe(): string {
    const a = this.adapter;
    const parts = [a.vendor, a.architecture, a.description].filter((s) => s && s.length);
    return `${parts.join(' / ') || 'unknown adapter'}${a.isFallbackAdapter ? ' (fallback adapter)' : ''}${a.featureLevel === 'compatibility' ? ' [compatibility mode]' : ''}`;
  }

  // ---------------------------------------------------------------- buffers

  /** Creates a buffer; every engine buffer goes through here so memory() is exact. */
  createBuffer(label: string, size: number, usage: number = STORAGE | COPY_SRC | COPY_DST): GPUBuffer {
    this.throwIfLost();
    const bytes = Math.max(4, Math.ceil(size / 4) * 4);
    if (bytes > this.limits.maxBufferSize) {
      throw new GpuError('limit', label, `needs a ${fmtBytes(bytes)} buffer but this adapter's maxBufferSize is ${fmtBytes(this.limits.maxBufferSize)}; use a smaller batch or input size`);
    }
    const buffer = this.device.createBuffer({ label, size: bytes, usage });
    this.live.set(buffer, bytes);
    this.liveBytes += bytes;
    return buffer;
  }

  /** Creates a storage buffer holding `data`. */
  upload(label: string, data: ArrayBufferView, usage: number = STORAGE | COPY_SRC | COPY_DST): GPUBuffer {
    const buffer = this.createBuffer(label, data.byteLength, usage | COPY_DST);
    this.write(buffer, data);
    return buffer;
  }

  /** Creates a uniform buffer holding `data` (shapes and other per-kernel parameters). */
  uniform(label: string, data: ArrayBufferView): GPUBuffer {
    const bytes = Math.ceil(data.byteLength / 16) * 16;
    const buffer = this.createBuffer(label, bytes, UNIFORM | COPY_DST);
    this.write(buffer, data);
    return buffer;
  }

  write(buffer: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
    const padded = data.byteLength % 4 === 0 ? data : padTo4(data);
    this.device.queue.writeBuffer(buffer, byteOffset, padded.buffer, padded.byteOffset, padded.byteLength);
  }

  destroyBuffer(buffer: GPUBuffer): void {
    const bytes = this.live.get(buffer);
    if (bytes === undefined) return;
    this.live.delete(buffer);
    this.liveBytes -= bytes;
    buffer.destroy();
  }

  /** Like tf.memory(): what the engine holds on the device now. */
  memory(): { numBytes: number; numBuffers: number } {
    return { numBytes: this.liveBytes, numBuffers: this.live.size };
  }

  // ---------------------------------------------------------------- pipelines

  /**
   * The compute pipeline for a shader file and constants, created once. Its bind group layout
   * is derived from the WGSL bindings of the entry point.
   */
  pipeline(shader: string, options: PipelineOptions = {}): Promise<Pipeline> {
    const entryPoint = options.entryPoint ?? 'main';
    const constants = options.constants ?? {};
    const key = `${shader}#${entryPoint}#${Object.keys(constants).sort().map((k) => `${k}=${constants[k]}`).join(',')}`;
    let p = this.pipelines.get(key);
    if (!p) {
      p = this.createPipeline(shader, entryPoint, constants, key);
      this.pipelines.set(key, p);
      p.catch(() => this.pipelines.delete(key));
    }
    return p;
  }

  private async createPipeline(shader: string, entryPoint: string, constants: Record<string, number>, label: string): Promise<Pipeline> {
    this.throwIfLost();
    const code = await loadShader(shader);
    let info: ReturnType<typeof reflectEntry>;
    try {
      info = reflectEntry(code, entryPoint, shader);
    } catch (e) {
      // wgsl_reflect stops at many syntax errors with a terse message and no shader name; the
      // WGSL compiler's messages give the file, line and column.
      this.device.pushErrorScope('validation');
      const module = this.device.createShaderModule({ label: shader, code });
      await this.device.popErrorScope();
      throw new GpuError('validation', `pipeline ${label}`, `${shader}: ${(e as Error).message}${await shaderMessages(module)}`);
    }
    for (const name of Object.keys(constants)) {
      if (!info.overrides.includes(name)) {
        throw new GpuError('binding', label, `constant '${name}' is not an override in ${shader} (it declares: ${info.overrides.join(', ') || 'none'})`);
      }
    }
    const device = this.device;
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ label: shader, code });
    const layout = device.createBindGroupLayout({
      label,
      entries: info.bindings.map((b) => ({
        binding: b.binding,
        visibility: 4, // GPUShaderStage.COMPUTE
        buffer: { type: b.kind },
      })),
    });
    let pipeline: GPUComputePipeline;
    try {
      pipeline = await device.createComputePipelineAsync({
        label,
        layout: device.createPipelineLayout({ label, bindGroupLayouts: [layout] }),
        compute: { module, entryPoint, constants },
      });
    } catch (e) {
      const scoped = await device.popErrorScope();
      const messages = await shaderMessages(module);
      throw new GpuError('validation', `pipeline ${label}`, `${(e as Error).message}${scoped ? `\n${scoped.message}` : ''}${messages}`);
    }
    const scoped = await device.popErrorScope();
    if (scoped) throw new GpuError('validation', `pipeline ${label}`, scoped.message + (await shaderMessages(module)));
    return { shader, entryPoint, label, pipeline, layout, bindings: info.bindings };
  }

  /**
   * A bind group for `pipeline` from buffers given by their WGSL variable names. Missing,
   * extra or oversized bindings fail here with the names, not later as a validation error.
   */
  bindGroup(pipeline: Pipeline, resources: Record<string, BufferBinding>, label = pipeline.label): GPUBindGroup {
    const declared = pipeline.bindings.map((b) => b.name);
    const given = Object.keys(resources);
    const missing = declared.filter((n) => !(n in resources));
    const extra = given.filter((n) => !declared.includes(n));
    if (missing.length || extra.length) {
      throw new GpuError('binding', label, `bindings do not match ${pipeline.shader}:${pipeline.entryPoint} (declares ${declared.join(', ')})` +
        `${missing.length ? `; missing ${missing.join(', ')}` : ''}${extra.length ? `; not in the shader: ${extra.join(', ')}` : ''}`);
    }
    const entries: GPUBindGroupEntry[] = pipeline.bindings.map((b) => {
      const r = resources[b.name];
      const res = 'buffer' in r ? r : { buffer: r, offset: 0, size: undefined };
      const size = res.size ?? res.buffer.size - (res.offset ?? 0);
      const max = b.kind === 'uniform' ? this.limits.maxUniformBufferBindingSize : this.limits.maxStorageBufferBindingSize;
      if (size > max) {
        throw new GpuError('limit', label, `binding '${b.name}' is ${fmtBytes(size)}, over this adapter's ${b.kind === 'uniform' ? 'maxUniformBufferBindingSize' : 'maxStorageBufferBindingSize'} of ${fmtBytes(max)}; use a smaller batch (or micro-batches) or a smaller input size`);
      }
      return { binding: b.binding, resource: { buffer: res.buffer, offset: res.offset ?? 0, size } };
    });
    return this.device.createBindGroup({ label, layout: pipeline.layout, entries });
  }

  /** A labelled op of a single dispatch; the grid is checked against the adapter's limit. */
  dispatch(label: string, pipeline: Pipeline, bindGroup: GPUBindGroup, workgroups: [number, number?, number?]): GpuOp {
    const [x, y = 1, z = 1] = workgroups;
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) {
      throw new GpuError('limit', label, `dispatch of ${x}x${y}x${z} workgroups exceeds maxComputeWorkgroupsPerDimension ${max}`);
    }
    return {
      label,
      encode(encoder) {
        if (x === 0 || y === 0 || z === 0) return;
        const pass = encoder.beginComputePass({ label });
        pass.setPipeline(pipeline.pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(x, y, z);
        pass.end();
      },
    };
  }

  /** A labelled buffer-to-buffer copy (offsets and size in bytes, multiples of 4). */
  copy(label: string, src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): GpuOp {
    if (srcOffset % 4 || dstOffset % 4 || size % 4) throw new GpuError('binding', label, `copy offsets and size must be multiples of 4 bytes (got ${srcOffset}, ${dstOffset}, ${size})`);
    if (srcOffset + size > src.size || dstOffset + size > dst.size) {
      throw new GpuError('binding', label, `copy of ${size} bytes out of range (source ${src.label} ${src.size} B at ${srcOffset}, destination ${dst.label} ${dst.size} B at ${dstOffset})`);
    }
    return { label, encode: (encoder) => encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, size) };
  }

  /** Splits a workgroup count over x and y so neither exceeds the per-dimension limit. */
  grid(workgroups: number): [number, number] {
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (workgroups <= max) return [Math.max(1, workgroups), 1];
    const y = Math.ceil(workgroups / max);
    return [Math.ceil(workgroups / y), y];
  }

  // ---------------------------------------------------------------- submission and errors

  /**
   * Records ops into one command encoder and submits it. Validation and out-of-memory errors
   * are captured with the submit's label and thrown by the next sync() or read().
   */
  submit(label: string, ops: GpuOp | GpuOp[]): void {
    this.throwIfLost();
    const device = this.device;
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    const encoder = device.createCommandEncoder({ label });
    for (const op of Array.isArray(ops) ? ops : [ops]) op.encode(encoder);
    device.queue.submit([encoder.finish({ label })]);
    const validation = device.popErrorScope();
    const oom = device.popErrorScope();
    this.pendingScopes.push(
      Promise.all([validation, oom]).then(([v, o]) => {
        if (v) return new GpuError('validation', label, v.message);
        if (o) return new GpuError('out-of-memory', label, `${o.message}; the device ran out of memory: lower the batch size or input size`);
        return null;
      }),
    );
  }

  /** Waits for submitted work and throws the first error any of it raised. */
  async sync(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
    await this.checkErrors();
  }

  /** Throws the first captured GPU error, if any (without waiting for the queue). */
  async checkErrors(): Promise<void> {
    const scopes = this.pendingScopes;
    this.pendingScopes = [];
    for (const e of await Promise.all(scopes)) this.firstError ??= e;
    this.throwIfLost();
    if (this.firstError) {
      const e = this.firstError;
      this.firstError = null;
      throw e;
    }
  }

  private throwIfLost(): void {
    if (this.lost) throw this.lost;
  }

  // ---------------------------------------------------------------- readback

  /** Copies `byteLength` bytes of `buffer` to the host; throws pending GPU errors first. */
  async read(buffer: GPUBuffer, byteLength = buffer.size, byteOffset = 0): Promise<ArrayBuffer> {
    const size = Math.ceil(byteLength / 4) * 4;
    const staging = this.createBuffer(`read ${buffer.label}`, size, MAP_READ | COPY_DST);
    try {
      const encoder = this.device.createCommandEncoder({ label: `read ${buffer.label}` });
      encoder.copyBufferToBuffer(buffer, byteOffset, staging, 0, size);
      this.device.queue.submit([encoder.finish()]);
      await this.checkErrors();
      await staging.mapAsync(1 /* GPUMapMode.READ */);
      await this.checkErrors();
      return staging.getMappedRange().slice(0, byteLength);
    } finally {
      this.destroyBuffer(staging);
    }
  }

  async readF32(buffer: GPUBuffer, length = buffer.size / 4, offset = 0): Promise<Float32Array> {
    return new Float32Array(await this.read(buffer, length * 4, offset * 4));
  }

  /** Releases every buffer and the device. */
  destroy(): void {
    for (const b of this.live.keys()) b.destroy();
    this.live.clear();
    this.liveBytes = 0;
    this.device.destroy();
  }
}

function errorKind(err: GPUError): 'validation' | 'out-of-memory' | 'internal' {
  const n = err.constructor?.name ?? '';
  if (n.includes('OutOfMemory')) return 'out-of-memory';
  if (n.includes('Internal')) return 'internal';
  return 'validation';
}

async function shaderMessages(module: GPUShaderModule): Promise<string> {
  try {
    const info = await module.getCompilationInfo();
    const lines = info.messages.filter((m) => m.type === 'error').map((m) => `  ${module.label}:${m.lineNum}:${m.linePos}: ${m.message}`);
    return lines.length ? `\n${lines.join('\n')}` : '';
  } catch {
    return '';
  }
}

function padTo4(data: ArrayBufferView): Uint8Array {
  const out = new Uint8Array(Math.ceil(data.byteLength / 4) * 4);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return out;
}

export function fmtBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}
