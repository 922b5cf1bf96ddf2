import type { Gpu, GpuOp, Pipeline } from '../gpu/index.ts';

export interface ZeroPadding2dShape {
  batch: number;
  height: number;
  width: number;
  channels: number;
  /** [[top, bottom], [left, right]] rows / columns of zeros (Keras' normalised padding) */
  padding: [[number, number], [number, number]];
  label?: string;
}

const SHADER = 'zero_padding2d';
const WG = 128; // WG in zero_padding2d.wgsl

/**
 * Keras ZeroPadding2D on NHWC tensors, and its gradient (the crop of dy back to x's shape).
 * Both ops write every element of their output, the zero border included. Channels % 4 == 0
 * runs 4 channels per invocation. Outputs must not alias inputs.
 */
export class ZeroPadding2dKernel {
  readonly outHeight: number;
  readonly outWidth: number;
  readonly shape: Readonly<Required<ZeroPadding2dShape>>;
  private readonly uniforms: GPUBuffer[];

  private constructor(
    private readonly gpu: Gpu,
    shape: Required<ZeroPadding2dShape>,
    private readonly fwd: { pipeline: Pipeline; params: GPUBuffer; count: number },
    private readonly bwd: { pipeline: Pipeline; params: GPUBuffer; count: number },
    private readonly vec4: boolean,
  ) {
    this.shape = shape;
    const [[top, bottom], [left, right]] = shape.padding;
    this.outHeight = shape.height + top + bottom;
    this.outWidth = shape.width + left + right;
    this.uniforms = [fwd.params, bwd.params];
  }

  static async create(gpu: Gpu, shape: ZeroPadding2dShape): Promise<ZeroPadding2dKernel> {
    const label = shape.label ?? 'zero_padding2d';
    const { batch: N, height: H, width: W, channels: C, padding } = shape;
    const pads = Array.isArray(padding) && padding.length === 2 && padding.every((p) => Array.isArray(p) && p.length === 2)
      ? padding.flat() : undefined;
    const what = `${label}: ZeroPadding2D input [${N},${H},${W},${C}] padding ${JSON.stringify(padding)}`;
    if (!pads) throw new Error(`${what}: padding must be [[top, bottom], [left, right]]`);
    const [top, bottom, left, right] = pads;
    const ints: Record<string, number> = { batch: N, height: H, width: W, channels: C };
    for (const [k, v] of Object.entries(ints)) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`${what}: ${k} must be a positive integer, got ${v}`);
    }
    for (const [k, v] of Object.entries({ top, bottom, left, right })) {
      if (!Number.isInteger(v) || v < 0) throw new Error(`${what}: padding ${k} must be an integer >= 0, got ${v}`);
    }
    const OH = H + top + bottom;
    const OW = W + left + right;
    const maxBinding = gpu.limits.maxStorageBufferBindingSize;
    const outBytes = N * OH * OW * C * 4; // >= the input's
    if (outBytes > maxBinding) {
      throw new Error(`${what}: the padded output [${N},${OH},${OW},${C}] is ${outBytes} bytes, over this adapter's maxStorageBufferBindingSize of ${maxBinding} bytes; use a smaller batch (or micro-batches) or a smaller input size`);
    }

    const vec4 = C % 4 === 0;
    const cw = vec4 ? C / 4 : C; // channels in units of the shader's element
    const fwdCount = N * OH * OW * cw;
    const bwdCount = N * H * W * cw;
    const sfx = vec4 ? '4' : '';
    const [fp, bp] = await Promise.all([
      gpu.pipeline(SHADER, { entryPoint: `forward${sfx}` }),
      gpu.pipeline(SHADER, { entryPoint: `backward${sfx}` }),
    ]);
    const params = (role: string, count: number) =>
      gpu.uniform(`${label} zero_padding2d.${role} shape`, new Uint32Array([N, H, W, cw, OH, OW, top, left, count, 0, 0, 0]));
    const full = { batch: N, height: H, width: W, channels: C, padding: [[top, bottom], [left, right]] as [[number, number], [number, number]], label };
    return new ZeroPadding2dKernel(gpu, full,
      { pipeline: fp, params: params('forward', fwdCount), count: fwdCount },
      { pipeline: bp, params: params('backward', bwdCount), count: bwdCount }, vec4);
  }

  private name(pass: string): string {
    const s = this.shape;
    return `${s.label} zero_padding2d.${pass} N=${s.batch} H=${s.height} W=${s.width} C=${s.channels} padding=${JSON.stringify(s.padding)}`;
  }

  private bind(pass: string, pipeline: Pipeline, buffers: Record<string, [GPUBuffer, number]>, params: GPUBuffer): GPUBindGroup {
    const res: Record<string, GPUBuffer | { buffer: GPUBuffer; size: number }> = { s: params };
    const entries = Object.entries(buffers);
    if (entries[0][1][0] === entries[1][1][0]) {
      throw new Error(`${this.name(pass)}: '${entries[0][0]}' and '${entries[1][0]}' are the same buffer (${entries[0][1][0].label}); the output needs its own buffer`);
    }
    for (const [role, [buffer, floats]] of entries) {
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
    const s = this.shape;
    return s.batch * this.outHeight * this.outWidth * s.channels;
  }

  /** y [N, outHeight, outWidth, C] (overwritten, border zeros included) = x [N, H, W, C] padded. */
  forward(b: { x: GPUBuffer; y: GPUBuffer }): GpuOp {
    const { pipeline, params, count } = this.fwd;
    const bg = this.bind('forward', pipeline, { x: [b.x, this.inputSize], y: [b.y, this.outputSize] }, params);
    return this.gpu.dispatch(this.name('forward'), pipeline, bg, this.gpu.grid(Math.ceil(count / WG)));
  }

  /** dx [N, H, W, C] (overwritten) = dy [N, outHeight, outWidth, C] without the border. */
  backward(b: { dy: GPUBuffer; dx: GPUBuffer }): GpuOp {
    const { pipeline, params, count } = this.bwd;
    const bg = this.bind('backward', pipeline, { dy: [b.dy, this.outputSize], dx: [b.dx, this.inputSize] }, params);
    return this.gpu.dispatch(this.name('backward'), pipeline, bg, this.gpu.grid(Math.ceil(count / WG)));
  }

  destroy(): void {
    for (const u of this.uniforms) this.gpu.destroyBuffer(u);
    this.uniforms.length = 0;
  }
}
