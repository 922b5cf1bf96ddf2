import { Conv2dKernel } from '../../kernels/conv2d.ts';
import { activationName, parseActivation, reluCap, type Act } from '../activations.ts';
import { glorotUniform, type Random } from '../initializers.ts';
import { convOutSize, expectImage, pair, Param, UnaryLayer, type BackwardReads, type LayerProgram, type ProgramContext } from '../layer.ts';

export interface Conv2DConfig {
  filters: number;
  kernelSize: number | [number, number];
  strides?: number | [number, number];
  padding?: 'same' | 'valid';
  activation?: string;
  useBias?: boolean;
  name?: string;
}

/** Keras's Conv2D: kernel HWIO [kh, kw, cin, filters], TF's 'same' padding, strides 1 or 2. */
export class Conv2D extends UnaryLayer {
  readonly className = 'Conv2D';
  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: 'same' | 'valid';
  readonly activation: Act;
  readonly useBias: boolean;

  constructor(config: Conv2DConfig) {
    super(config.name, 'conv2d');
    if (!Number.isInteger(config.filters) || config.filters <= 0) throw new Error(`${this.name}: filters must be a positive integer, got ${config.filters}`);
    this.filters = config.filters;
    this.kernelSize = pair(config.kernelSize, [3, 3], 'kernelSize', this.name);
    if (this.kernelSize.some((k) => k > 7)) throw new Error(`${this.name}: kernel sizes up to 7x7 are supported, got ${this.kernelSize.join('x')}`);
    this.strides = pair(config.strides, [1, 1], 'strides', this.name);
    if (this.strides.some((s) => s > 2)) throw new Error(`${this.name}: strides 1 or 2 are supported, got ${JSON.stringify(config.strides)}`);
    this.padding = config.padding ?? 'valid';
    if (this.padding !== 'same' && this.padding !== 'valid') throw new Error(`${this.name}: padding must be 'same' or 'valid', got '${this.padding}'`);
    this.activation = parseActivation(config.activation, this.name);
    if (this.activation.kind !== 'linear' && !reluCap(this.activation)) {
      throw new Error(`${this.name}: a ${activationName(this.activation)} activation on Conv2D is not supported (use 'relu', 'relu6' or 'linear', or a separate Activation layer)`);
    }
    this.useBias = config.useBias ?? true;
  }

  computeOutputShape(s: number[]): number[] {
    const [h, w] = expectImage(this, s);
    const [kh, kw] = this.kernelSize;
    const oh = convOutSize(h, kh, this.strides[0], this.padding);
    const ow = convOutSize(w, kw, this.strides[1], this.padding);
    if (oh <= 0 || ow <= 0) throw new Error(`${this.name} (Conv2D): a ${kh}x${kw} 'valid' kernel does not fit an input of ${h}x${w}`);
    return [oh, ow, this.filters];
  }

  protected override build(s: number[][], random: Random): void {
    const shape = [this.kernelSize[0], this.kernelSize[1], s[0][2], this.filters];
    this.params = [new Param(`${this.name}/kernel`, shape, glorotUniform(shape, random))];
    if (this.useBias) this.params.push(new Param(`${this.name}/bias`, [this.filters], new Float32Array(this.filters)));
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

  async createProgram(ctx: ProgramContext): Promise<LayerProgram> {
    const [h, w, c] = ctx.inShapes[0];
    const act = ctx.activation.kind === 'linear' ? 'linear' : reluCap(ctx.activation);
    if (!act) throw new Error(`internal: ${this.name} cannot apply ${activationName(ctx.activation)}`);
    const bias = this.useBias || ctx.folded;
    const k = await Conv2dKernel.create(ctx.gpu, {
      batch: ctx.batch, height: h, width: w, inChannels: c, outChannels: this.filters,
      kernelSize: this.kernelSize, strides: this.strides, padding: this.padding, useBias: bias, activation: act, label: ctx.label,
    });
    return {
      forward: ({ xs, y, params }) => [k.forward({ x: xs[0], w: params[0], b: bias ? params[1] : undefined, y })],
      backward: ({ xs, y, dy, dxs, params, grads }) => {
        const ops = [];
        if (grads[0]) ops.push(k.backwardFilter({ x: xs[0], dy, y, dw: grads[0], db: bias ? grads[1] ?? undefined : undefined }));
        if (dxs[0]) ops.push(k.backwardInput({ dy, y, w: params[0], dx: dxs[0] }));
        return ops;
      },
      destroy: () => k.destroy(),
    };
  }
}
