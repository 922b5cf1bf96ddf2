import type { Gpu, GpuOp, Pipeline } from '../gpu/index.ts';

export interface GlobalPool2dShape {
  batch: number;
  height: number;
  width: number;
  channels: number;
  /** 'avg': Keras GlobalAveragePooling2D; 'max': GlobalMaxPooling2D */
  mode: 'avg' | 'max';
  label?: string;
}

const SHADER = 'global_pool2d';
const WG = 128; // WG in global_pool2d.wgsl

/**
 * Keras GlobalAveragePooling2D / GlobalMaxPooling2D on NHWC tensors (y [N, C], keepdims
 * false), and their gradients. Reductions run one workgroup per (image, block of channels),
 * whose invocations split the H*W positions between them, so both wide-and-shallow (7x7x1280)
 * and large-and-narrow (112x112x32) inputs are reduced in parallel. The max backward pass
 * recomputes the argmax from x (first maximum in row-major order wins ties); nothing is stored.
 * Channels % 4 == 0 runs 4 channels per invocation.
 */
export class GlobalPool2dKernel {
  readonly shape: Readonly<Required<GlobalPool2dShape>>;
  private readonly uniforms: GPUBuffer[];

  private constructor(
    private readonly gpu: Gpu,
    shape: Required<GlobalPool2dShape>,
    private readonly fwd: { pipeline: Pipeline; params: GPUBuffer; workgroups: number },
    private readonly bwd: { pipeline: Pipeline; params: GPUBuffer; workgroups: number },
    private readonly vec4: boolean,
  ) {
    this.shape = shape;
    this.uniforms = [fwd.params, bwd.params];
  }

  static async create(gpu: Gpu, shape: GlobalPool2dShape): Promise<GlobalPool2dKernel> {
    const label = shape.label ?? 'global_pool2d';
    const { batch: N, height: H, width: W, channels: C, mode } = shape;
    const layer = mode === 'max' ? 'GlobalMaxPooling2D' : 'GlobalAveragePooling2D';
    const what = `${label}: ${layer} input [${N},${H},${W},${C}]`;
    if (mode !== 'avg' && mode !== 'max') throw new Error(`${label}: global pooling mode must be 'avg' or 'max', got ${String(mode)}`);
    for (const [k, v] of Object.entries({ batch: N, height: H, width: W, channels: C })) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`${what}: ${k} must be a positive integer, got ${v}`);
    }
    const inBytes = N * H * W * C * 4;
    const maxBinding = gpu.limits.maxStorageBufferBindingSize;
    if (inBytes > maxBinding) {
      throw new Error(`${what}: the input is ${inBytes} bytes, over this adapter's maxStorageBufferBindingSize of ${maxBinding} bytes; use a smaller batch (or micro-batches) or a smaller input size`);
    }
    if (N * H * W * C >= 2 ** 32) throw new Error(`${what}: more than 2^32 elements`);

    const vec4 = C % 4 === 0;
    const cw = vec4 ? C / 4 : C; // channels in units of the shader's element
    // Channel lanes per workgroup: 128 contiguous bytes per position when C allows, fewer for
    // narrow tensors so the rest of the workgroup splits positions instead of idling.
    const CB = Math.min(vec4 ? 8 : 32, 2 ** Math.ceil(Math.log2(cw)));
    const blocks = Math.ceil(cw / CB);
    const reduceGroups = N * blocks;
    const sfx = vec4 ? '4' : '';
    const [fp, bp] = await Promise.all([
      gpu.pipeline(SHADER, { entryPoint: `forward_${mode}${sfx}`, constants: { CB } }),
      // backward_avg is elementwise and does not use CB; constants only for the one that does
      gpu.pipeline(SHADER, { entryPoint: `backward_${mode}${sfx}`, constants: mode === 'max' ? { CB } : {} }),
    ]);
    const params = (role: string, count: number) =>
      gpu.uniform(`${label} global_pool2d.${role} shape`, new Uint32Array([N, H * W, cw, blocks, count, 0, 0, 0]));
    const dxCount = N * H * W * cw;
    const bwdCount = mode === 'max' ? reduceGroups : dxCount;
    return new GlobalPool2dKernel(gpu, { batch: N, height: H, width: W, channels: C, mode, label },
      { pipeline: fp, params: params('forward', reduceGroups), workgroups: reduceGroups },
      { pipeline: bp, params: params('backward', bwdCount), workgroups: mode === 'max' ? reduceGroups : Math.ceil(dxCount / WG) }, vec4);
  }

  private name(pass: string): string {
    const s = this.shape;
    return `${s.label} global_pool2d.${pass} ${s.mode} N=${s.batch} H=${s.height} W=${s.width} C=${s.channels}`;
  }

  private bind(pass: string, pipeline: Pipeline, buffers: Record<string, [GPUBuffer, number]>, params: GPUBuffer): GPUBindGroup {
    const res: Record<string, GPUBuffer | { buffer: GPUBuffer; size: number }> = { s: params };
    for (const [role, [buffer, floats]] of Object.entries(buffers)) {
      if (buffer.size < floats * 4) {
        throw new Error(`${this.name(pass)}: buffer '${role}' (${buffer.label}) is ${buffer.size} bytes, needs ${floats * 4}`);
      }
      res[this.vec4 ? `${role}4` : role] = { buffer, size: floats * 4 };
    }
    return this.gpu.bindGroup(pipeline, res, this.name(pass));
  }

  get inputSize(): number {
    const s = this.shape;
    return s.batch * s.height * s.width * s.channels;
  }

  get outputSize(): number {
    return this.shape.batch * this.shape.channels;
  }

  /** y [N, C] (overwritten) = mean or max of x [N, H, W, C] over H and W. */
  forward(b: { x: GPUBuffer; y: GPUBuffer }): GpuOp {
    const { pipeline, params, workgroups } = this.fwd;
    const bg = this.bind('forward', pipeline, { x: [b.x, this.inputSize], y: [b.y, this.outputSize] }, params);
    return this.gpu.dispatch(this.name('forward'), pipeline, bg, this.gpu.grid(workgroups));
  }

  /**
   * dx [N, H, W, C] (overwritten, every element): 'avg' dy[n, c] / (H*W) everywhere; 'max'
   * dy[n, c] at the first maximum of x[n, :, :, c] in row-major order, 0 elsewhere. x (the
   * forward input) is required for 'max' and ignored for 'avg'.
   */
  backward(b: { x?: GPUBuffer; dy: GPUBuffer; dx: GPUBuffer }): GpuOp {
    const { pipeline, params, workgroups } = this.bwd;
    const buffers: Record<string, [GPUBuffer, number]> = { dy: [b.dy, this.outputSize], dx: [b.dx, this.inputSize] };
    if (this.shape.mode === 'max') {
      if (!b.x) throw new Error(`${this.name('backward')}: GlobalMaxPooling2D's gradient needs x (the forward input) to find each maximum`);
      buffers.x = [b.x, this.inputSize];
    }
    const bg = this.bind('backward', pipeline, buffers, params);
    return this.gpu.dispatch(this.name('backward'), pipeline, bg, this.gpu.grid(workgroups));
  }

  destroy(): void {
    for (const u of this.uniforms) this.gpu.destroyBuffer(u);
    this.uniforms.length = 0;
  }
}
