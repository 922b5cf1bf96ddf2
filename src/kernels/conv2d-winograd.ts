// The forward pass of a 3x3 stride-1 convolution by Winograd F(2x2, 3x3)
// (shaders/conv2d_winograd.wgsl): filter transform, input transform, 16 GEMMs over the
// channels, output transform with bias and activation fused. 2.25x fewer multiplies than the
// direct convolution, for scratch memory: the transformed input and the 16 GEMMs' results are
// each 4x the size of the input and output. Conv2dKernel uses it for its forward op when
// chosen (src/kernels/variants.ts); the backward passes stay the direct kernels'.
import type { Gpu, GpuOp, Pipeline } from '../gpu/index.ts';

const SHADER = 'conv2d_winograd';
const WG = 128; // WG in the shader's 1-D passes
const BT = 32; // rows and columns of a GEMM workgroup's block

export interface WinogradShape {
  batch: number; height: number; width: number; inChannels: number; outChannels: number;
  outHeight: number; outWidth: number; padTop: number; padLeft: number;
  activation: 'relu' | 'relu6' | 'linear';
  label: string;
}

/** Bytes of scratch the transform needs (transformed filter, input and GEMM results). */
export function winogradScratchBytes(s: Omit<WinogradShape, 'activation' | 'label'>): { filter: number; input: number; products: number } {
  const tiles = s.batch * Math.ceil(s.outHeight / 2) * Math.ceil(s.outWidth / 2);
  return { filter: 16 * s.inChannels * s.outChannels * 4, input: 16 * tiles * s.inChannels * 4, products: 16 * tiles * s.outChannels * 4 };
}

export class WinogradForward {
  private readonly u: GPUBuffer;
  private readonly v: GPUBuffer;
  private readonly m: GPUBuffer;
  private readonly shapeBuf: GPUBuffer;
  private readonly tiles: number;

  private constructor(private readonly gpu: Gpu, readonly shape: WinogradShape, private readonly p: Record<'filter' | 'input' | 'gemm' | 'output', Pipeline>) {
    const s = shape;
    const th = Math.ceil(s.outHeight / 2);
    const tw = Math.ceil(s.outWidth / 2);
    this.tiles = s.batch * th * tw;
    const bytes = winogradScratchBytes(s);
    this.u = gpu.createBuffer(`${s.label} winograd.U`, bytes.filter);
    this.v = gpu.createBuffer(`${s.label} winograd.V`, bytes.input);
    this.m = gpu.createBuffer(`${s.label} winograd.M`, bytes.products);
    const act = s.activation === 'relu' ? 1 : s.activation === 'relu6' ? 2 : 0;
    this.shapeBuf = gpu.uniform(`${s.label} winograd.shape`, new Uint32Array([
      s.batch, s.height, s.width, s.inChannels, s.outChannels, s.outHeight, s.outWidth, s.padTop,
      s.padLeft, th, tw, this.tiles, act, 0, 0, 0,
    ]));
  }

  /** Whether the scratch fits the adapter's binding limit (else the direct kernels run). */
  static fits(gpu: Gpu, s: Omit<WinogradShape, 'activation' | 'label'>): boolean {
    const b = winogradScratchBytes(s);
    const max = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
    return Math.max(b.filter, b.input, b.products) <= max;
  }

  static async create(gpu: Gpu, shape: WinogradShape): Promise<WinogradForward> {
    const [filter, input, gemm, output] = await Promise.all(['transform_filter', 'transform_input', 'gemm', 'transform_output'].map((entryPoint) => gpu.pipeline(SHADER, { entryPoint })));
    return new WinogradForward(gpu, shape, { filter, input, gemm, output });
  }

  /** y = act(conv(x, w) + bias): four dispatches (the filter transform each time: it is small). */
  forward(b: { x: GPUBuffer; w: GPUBuffer; bias: GPUBuffer; y: GPUBuffer }): GpuOp {
    const { gpu, p, shape: s } = this;
    const label = `${s.label} conv2d.forward winograd F(2x2,3x3) N=${s.batch} H=${s.height} W=${s.width} Cin=${s.inChannels} Cout=${s.outChannels}`;
    const ops = [
      gpu.dispatch(`${label} filter`, p.filter, gpu.bindGroup(p.filter, { s: this.shapeBuf, w: b.w, u: this.u }, label), gpu.grid(Math.ceil((s.inChannels * s.outChannels) / WG))),
      gpu.dispatch(`${label} input`, p.input, gpu.bindGroup(p.input, { s: this.shapeBuf, x: b.x, v: this.v }, label), gpu.grid(Math.ceil((this.tiles * s.inChannels) / WG))),
      gpu.dispatch(`${label} gemm`, p.gemm, gpu.bindGroup(p.gemm, { s: this.shapeBuf, vr: this.v, ur: this.u, m: this.m }, label), [Math.ceil(s.outChannels / BT), Math.ceil(this.tiles / BT), 16]),
      gpu.dispatch(`${label} output`, p.output, gpu.bindGroup(p.output, { s: this.shapeBuf, mr: this.m, bias: b.bias, y: b.y }, label), gpu.grid(Math.ceil((this.tiles * s.outChannels) / WG))),
    ];
    return { label, encode: (encoder) => { for (const op of ops) op.encode(encoder); } };
  }

  private destroyed = false;

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const buf of [this.u, this.v, this.m, this.shapeBuf]) this.gpu.destroyBuffer(buf);
  }
}
