import type { Gpu, GpuOp, Pipeline } from '../gpu/index.ts';

export interface MaxPool2dShape {
  batch: number;
  height: number;
  width: number;
  channels: number;
  /** [rows, cols] of the window; default [2, 2] */
  poolSize?: [number, number];
  /** [rows, cols]; default = poolSize (Keras) */
  strides?: [number, number];
  /** 'valid' (default): windows inside the input only; 'same': out = ceil(in / strides), as TF */
  padding?: 'valid' | 'same';
  label?: string;
}

/** Output size and top/left padding of a 2-D pooling window, as TF computes them. */
export interface Pool2dGeometry {
  outHeight: number;
  outWidth: number;
  /** padding rows above / columns left of the input ('same' only; the rest goes below/right) */
  padTop: number;
  padLeft: number;
}

/**
 * 'valid': out = floor((in - pool) / stride) + 1, no padding. 'same': out = ceil(in / stride),
 * total padding max((out - 1) * stride + pool - in, 0), floor(total / 2) of it top/left.
 * Validates nothing: callers check the sizes first.
 */
export function pool2dGeometry(height: number, width: number, poolSize: [number, number], strides: [number, number], padding: 'valid' | 'same'): Pool2dGeometry {
  const dim = (n: number, p: number, st: number): [number, number] => {
    if (padding === 'valid') return [Math.floor((n - p) / st) + 1, 0];
    const out = Math.ceil(n / st);
    return [out, Math.floor(Math.max((out - 1) * st + p - n, 0) / 2)];
  };
  const [outHeight, padTop] = dim(height, poolSize[0], strides[0]);
  const [outWidth, padLeft] = dim(width, poolSize[1], strides[1]);
  return { outHeight, outWidth, padTop, padLeft };
}

/**
 * Checks the fields shared by the pooling kernels (input within the adapter's binding limit too);
 * returns the text that starts every error
 * (`label: Layer input [N,H,W,C] pool PxP strides SxS[ padding same]`).
 */
export function checkPool2dShape(gpu: Gpu, layer: string, label: string, shape: { batch: number; height: number; width: number; channels: number }, poolSize: [number, number], strides: [number, number], padding: string): string {
  const { batch: N, height: H, width: W, channels: C } = shape;
  const what = `${label}: ${layer} input [${N},${H},${W},${C}] pool ${poolSize.join('x')} strides ${strides.join('x')}${padding === 'valid' ? '' : ` padding ${padding}`}`;
  if (padding !== 'valid' && padding !== 'same') throw new Error(`${what}: padding must be 'valid' or 'same'`);
  const ints: Record<string, number> = { batch: N, height: H, width: W, channels: C, 'poolSize[0]': poolSize[0], 'poolSize[1]': poolSize[1], 'strides[0]': strides[0], 'strides[1]': strides[1] };
  for (const [k, v] of Object.entries(ints)) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${what}: ${k} must be a positive integer, got ${v}`);
  }
  if (padding === 'valid' && (H < poolSize[0] || W < poolSize[1])) {
    throw new Error(`${what}: the input (${H}x${W}) is smaller than the pool window, so the 'valid' output would be empty; use padding 'same' or a smaller pool`);
  }
  const inBytes = N * H * W * C * 4;
  const maxBinding = gpu.limits.maxStorageBufferBindingSize;
  if (inBytes > maxBinding) {
    throw new Error(`${what}: the input is ${inBytes} bytes, over this adapter's maxStorageBufferBindingSize of ${maxBinding} bytes; use a smaller batch (or micro-batches) or a smaller input size`);
  }
  if (N * H * W * C >= 2 ** 32) throw new Error(`${what}: more than 2^32 elements`);
  return what;
}

const SHADER = 'maxpool2d';
const WG = 128; // WG in maxpool2d.wgsl

/**
 * Keras MaxPooling2D (padding 'valid' or 'same') on NHWC tensors, and its gradient. Padded
 * positions never win a window (as -inf). The backward pass recomputes each window's argmax
 * from x (first maximum in row-major order wins ties), so the forward pass stores nothing
 * extra; every dx element is written (0 where no gradient arrives, including rows/columns
 * 'valid' pooling drops). Channels % 4 == 0 runs 4 channels per invocation.
 */
export class MaxPool2dKernel {
  readonly outHeight: number;
  readonly outWidth: number;
  readonly shape: Readonly<Required<MaxPool2dShape>>;
  private readonly uniforms: GPUBuffer[];

  private constructor(
    private readonly gpu: Gpu,
    shape: Required<MaxPool2dShape>,
    private readonly fwd: { pipeline: Pipeline; params: GPUBuffer; count: number },
    private readonly bwd: { pipeline: Pipeline; params: GPUBuffer; count: number },
    private readonly vec4: boolean,
  ) {
    this.shape = shape;
    const g = pool2dGeometry(shape.height, shape.width, shape.poolSize, shape.strides, shape.padding);
    this.outHeight = g.outHeight;
    this.outWidth = g.outWidth;
    this.uniforms = [fwd.params, bwd.params];
  }

  static async create(gpu: Gpu, shape: MaxPool2dShape): Promise<MaxPool2dKernel> {
    const label = shape.label ?? 'maxpool2d';
    const poolSize = shape.poolSize ?? [2, 2];
    const strides = shape.strides ?? poolSize;
    const padding = shape.padding ?? 'valid';
    const { batch: N, height: H, width: W, channels: C } = shape;
    const what = checkPool2dShape(gpu, 'MaxPool2D', label, shape, poolSize, strides, padding);
    const [PH, PW] = poolSize;
    const [SH, SW] = strides;
    const { outHeight: OH, outWidth: OW, padTop: PT, padLeft: PL } = pool2dGeometry(H, W, poolSize, strides, padding);

    const vec4 = C % 4 === 0;
    const cw = vec4 ? C / 4 : C; // channels in units of the shader's element
    // Non-overlapping windows (2x2/2): one invocation per window writes all the dx it owns
    // ('same' padding included: it is < pool <= strides, so the bands still tile the input).
    const owned = SH >= PH && SW >= PW;
    const fwdCount = N * OH * OW * cw;
    const bwdCount = owned ? fwdCount : N * H * W * cw;
    const sfx = vec4 ? '4' : '';
    const [fp, bp] = await Promise.all([
      gpu.pipeline(SHADER, { entryPoint: `forward${sfx}` }),
      gpu.pipeline(SHADER, { entryPoint: `${owned ? 'backward_owned' : 'backward_gather'}${sfx}` }),
    ]);
    const params = (role: string, count: number) =>
      gpu.uniform(`${label} maxpool2d.${role} shape`, new Uint32Array([N, H, W, cw, OH, OW, PH, PW, SH, SW, PT, PL, count, 0, 0, 0]));
    const full = { batch: N, height: H, width: W, channels: C, poolSize: [PH, PW] as [number, number], strides: [SH, SW] as [number, number], padding, label };
    return new MaxPool2dKernel(gpu, full,
      { pipeline: fp, params: params('forward', fwdCount), count: fwdCount },
      { pipeline: bp, params: params('backward', bwdCount), count: bwdCount }, vec4);
  }

  private name(pass: string): string {
    const s = this.shape;
    return `${s.label} maxpool2d.${pass} N=${s.batch} H=${s.height} W=${s.width} C=${s.channels} pool=${s.poolSize.join('x')} strides=${s.strides.join('x')}${s.padding === 'same' ? ' same' : ''}`;
  }

  private check(pass: string, role: string, buffer: GPUBuffer, floats: number): void {
    if (buffer.size < floats * 4) {
      throw new Error(`${this.name(pass)}: buffer '${role}' (${buffer.label}) is ${buffer.size} bytes, needs ${floats * 4}`);
    }
  }

  private bind(pass: string, pipeline: Pipeline, buffers: Record<string, [GPUBuffer, number]>, params: GPUBuffer): GPUBindGroup {
    const res: Record<string, GPUBuffer | { buffer: GPUBuffer; size: number }> = { s: params };
    for (const [role, [buffer, floats]] of Object.entries(buffers)) {
      this.check(pass, role, buffer, floats);
      res[this.vec4 ? `${role}4` : role] = { buffer, size: floats * 4 };
    }
    return this.gpu.bindGroup(pipeline, res, this.name(pass));
  }

  get inputSize(): number {
    const s = this.shape;
    return s.batch * s.height * s.width * s.channels;
  }

  get outputSize(): number {
    const s = this.shape;
    return s.batch * this.outHeight * this.outWidth * s.channels;
  }

  /** y [N, outHeight, outWidth, C] = max over each window of x [N, H, W, C]. */
  forward(b: { x: GPUBuffer; y: GPUBuffer }): GpuOp {
    const { pipeline, params, count } = this.fwd;
    const bg = this.bind('forward', pipeline, { x: [b.x, this.inputSize], y: [b.y, this.outputSize] }, params);
    return this.gpu.dispatch(this.name('forward'), pipeline, bg, this.gpu.grid(Math.ceil(count / WG)));
  }

  /** dx (overwritten, every element) = dy routed to each window's first maximum in x. */
  backward(b: { x: GPUBuffer; dy: GPUBuffer; dx: GPUBuffer }): GpuOp {
    const { pipeline, params, count } = this.bwd;
    const bg = this.bind('backward', pipeline, { x: [b.x, this.inputSize], dy: [b.dy, this.outputSize], dx: [b.dx, this.inputSize] }, params);
    return this.gpu.dispatch(this.name('backward'), pipeline, bg, this.gpu.grid(Math.ceil(count / WG)));
  }

  destroy(): void {
    for (const u of this.uniforms) this.gpu.destroyBuffer(u);
    this.uniforms.length = 0;
  }
}
