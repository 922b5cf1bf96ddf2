// What Conv2D and DepthwiseConv2D share: window options, a fusable ReLU/ReLU6 epilogue, a
// foldable per-output-channel kernel, and kernels with the same three ops.
import type { GpuOp } from '../../gpu/index.ts';
import { activationName, parseActivation, reluCap, type Act } from '../activations.ts';
import { convOutSize, expectImage, pair, UnaryLayer, type BackwardReads, type LayerProgram, type ProgramContext } from '../layer.ts';

export interface ConvOptions {
  kernelSize: number | [number, number];
  strides?: number | [number, number];
  padding?: 'same' | 'valid';
  activation?: string;
  useBias?: boolean;
  name?: string;
}

/** The ops both conv kernel families expose (bias and its gradient omitted without a bias). */
export interface ConvKernelOps {
  forward(b: { x: GPUBuffer; w: GPUBuffer; b?: GPUBuffer; y: GPUBuffer }): GpuOp;
  backwardInput(b: { dy: GPUBuffer; y?: GPUBuffer; w: GPUBuffer; dx: GPUBuffer }): GpuOp;
  backwardFilter(b: { x: GPUBuffer; dy: GPUBuffer; y?: GPUBuffer; dw: GPUBuffer; db?: GPUBuffer }): GpuOp;
  destroy(): void;
}

export abstract class ConvLayer extends UnaryLayer {
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: 'same' | 'valid';
  readonly activation: Act;
  readonly useBias: boolean;

  constructor(config: ConvOptions, prefix: string, className: string) {
    super(config.name, prefix);
    this.kernelSize = pair(config.kernelSize, [3, 3], 'kernelSize', this.name);
    if (this.kernelSize.some((k) => k > 7)) throw new Error(`${this.name}: kernel sizes up to 7x7 are supported, got ${this.kernelSize.join('x')}`);
    this.strides = pair(config.strides, [1, 1], 'strides', this.name);
    if (this.strides.some((s) => s > 2)) throw new Error(`${this.name}: strides 1 or 2 are supported, got ${JSON.stringify(config.strides)}`);
    this.padding = config.padding ?? 'valid';
    if (this.padding !== 'same' && this.padding !== 'valid') throw new Error(`${this.name}: padding must be 'same' or 'valid', got '${this.padding}'`);
    this.activation = parseActivation(config.activation, this.name);
    if (this.activation.kind !== 'linear' && !reluCap(this.activation)) {
      throw new Error(`${this.name}: a ${activationName(this.activation)} activation on ${className} is not supported (use 'relu', 'relu6' or 'linear', or a separate Activation layer)`);
    }
    this.useBias = config.useBias ?? true;
  }

  /** Output channels for an input channel count. */
  protected abstract outChannels(inChannels: number): number;

  computeOutputShape(s: number[]): number[] {
    const [h, w, c] = expectImage(this, s);
    const [kh, kw] = this.kernelSize;
    const oh = convOutSize(h, kh, this.strides[0], this.padding);
    const ow = convOutSize(w, kw, this.strides[1], this.padding);
    if (oh <= 0 || ow <= 0) throw new Error(`${this.name} (${this.className}): a ${kh}x${kw} 'valid' kernel does not fit an input of ${h}x${w}`);
    return [oh, ow, this.outChannels(c)];
  }

  override get ownActivation(): Act {
    return this.activation;
  }

  override acceptsActivation(act: Act): boolean {
    return this.activation.kind === 'linear' && reluCap(act) !== null;
  }

  override get acceptsFold(): boolean {
    return true;
  }

  override backwardReads(ctx: Pick<ProgramContext, 'activation' | 'paramGrads'>): BackwardReads {
    return { inputs: ctx.paramGrads, output: ctx.activation.kind !== 'linear' };
  }

  /** The kernel for a context: `epilogue` is what it fuses, `bias` whether it adds one (folded BN brings one). */
  protected abstract createKernel(ctx: ProgramContext, epilogue: 'linear' | 'relu' | 'relu6', bias: boolean): Promise<ConvKernelOps>;

  async createProgram(ctx: ProgramContext): Promise<LayerProgram> {
    const epilogue = ctx.activation.kind === 'linear' ? 'linear' : reluCap(ctx.activation);
    if (!epilogue) throw new Error(`internal: ${this.name} cannot apply ${activationName(ctx.activation)}`);
    const bias = this.useBias || ctx.folded;
    const k = await this.createKernel(ctx, epilogue, bias);
    return {
      forward: ({ xs, y, params }) => [k.forward({ x: xs[0], w: params[0], b: bias ? params[1] : undefined, y })],
      backward: ({ xs, y, dy, dxs, params, grads }) => {
        const ops: GpuOp[] = [];
        if (grads[0]) ops.push(k.backwardFilter({ x: xs[0], dy, y, dw: grads[0], db: bias ? grads[1] ?? undefined : undefined }));
        if (dxs[0]) ops.push(k.backwardInput({ dy, y, w: params[0], dx: dxs[0] }));
        return ops;
      },
      destroy: () => k.destroy(),
    };
  }
}
