import type { Gpu, GpuOp, Pipeline } from '../gpu/index.ts';
import { checkPool2dShape, pool2dGeometry } from './maxpool2d.ts';

export interface AvgPool2dShape {
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

const SHADER = 'avgpool2d';
const WG = 128; // WG in avgpool2d.wgsl

/**
 * Keras AveragePooling2D (padding 'valid' or 'same') on NHWC tensors, and its gradient. 'same'
 * divides each window by its count of real (unpadded) elements, as TF/Keras. The backward pass
 * gathers per dx element, so overlapping windows need no atomics, and writes every dx element
 * (0 where no window reaches, e.g. rows/columns 'valid' pooling drops). Channels % 4 == 0 runs
 * 4 channels per invocation.
 */
export class AvgPool2dKernel {
  readonly outHeight: number;
  readonly outWidth: number;
  readonly shape: Readonly<Required<AvgPool2dShape>>;
  private readonly uniforms: GPUBuffer[];

  private constructor(
    private readonly gpu: Gpu,
    shape: Required<AvgPool2dShape>,
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

  static async create(gpu: Gpu, shape: AvgPool2dShape): Promise<AvgPool2dKernel> {
    const label = shape.label ?? 'avgpool2d';
    const poolSize = shape.poolSize ?? [2, 2];
    const strides = shape.strides ?? poolSize;
    const padding = shape.padding ?? 'valid';
    const { batch: N, height: H, width: W, channels: C } = shape;
    const what = checkPool2dShape(gpu, 'AveragePooling2D', label, shape, poolSize, strides, padding);
    const [PH, PW] = poolSize;
    const [SH, SW] = strides;
    const { outHeight: OH, outWidth: OW, padTop: PT, padLeft: PL } = pool2dGeometry(H, W, poolSize, strides, padding);

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
      gpu.uniform(`${label} avgpool2d.${role} shape`, new Uint32Array([N, H, W, cw, OH, OW, PH, PW, SH, SW, PT, PL, count, 0, 0, 0]));
    const full = { batch: N, height: H, width: W, channels: C, poolSize: [PH, PW] as [number, number], strides: [SH, SW] as [number, number], padding, label };
    return new AvgPool2dKernel(gpu, full,
      { pipeline: fp, params: params('forward', fwdCount), count: fwdCount },
      { pipeline: bp, params: params('backward', bwdCount), count: bwdCount }, vec4);
  }

  private name(pass: string): string {
    const s = this.shape;
    return `${s.label} avgpool2d.${pass} N=${s.batch} H=${s.height} W=${s.width} C=${s.channels} pool=${s.poolSize.join('x')} strides=${s.strides.join('x')}${s.padding === 'same' ? ' same' : ''}`;
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
    const s = this.shape;
    return s.batch * this.outHeight * this.outWidth * s.channels;
  }

  /** y [N, outHeight, outWidth, C] (overwritten) = mean of x [N, H, W, C] over each window's real elements. */
  forward(b: { x: GPUBuffer; y: GPUBuffer }): GpuOp {
    const { pipeline, params, count } = this.fwd;
    const bg = this.bind('forward', pipeline, { x: [b.x, this.inputSize], y: [b.y, this.outputSize] }, params);
    return this.gpu.dispatch(this.name('forward'), pipeline, bg, this.gpu.grid(Math.ceil(count / WG)));
  }

  /** dx [N, H, W, C] (overwritten, every element) = sum over the windows containing it of dy / window count. */
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
