import { Conv2dKernel } from '../../kernels/conv2d.ts';
import { glorotUniform, type Random } from '../initializers.ts';
import { Param, type ProgramContext } from '../layer.ts';
import { ConvLayer, type ConvKernelOps, type ConvOptions } from './conv-base.ts';

export interface Conv2DConfig extends ConvOptions {
  filters: number;
}

/** Keras's Conv2D: kernel HWIO [kh, kw, cin, filters], TF's 'same' padding, strides 1 or 2. */
export class Conv2D extends ConvLayer {
  readonly className = 'Conv2D';
  readonly filters: number;

  constructor(config: Conv2DConfig) {
    super(config, 'conv2d', 'Conv2D');
    if (!Number.isInteger(config.filters) || config.filters <= 0) throw new Error(`${this.name}: filters must be a positive integer, got ${config.filters}`);
    this.filters = config.filters;
  }

  protected outChannels(): number {
    return this.filters;
  }

  protected override build(s: number[][], random: Random): void {
    const shape = [this.kernelSize[0], this.kernelSize[1], s[0][2], this.filters];
    this.params = [new Param(`${this.name}/kernel`, shape, glorotUniform(shape, random))];
    if (this.useBias) this.params.push(new Param(`${this.name}/bias`, [this.filters], new Float32Array(this.filters)));
  }

  protected createKernel(ctx: ProgramContext, activation: 'linear' | 'relu' | 'relu6', useBias: boolean): Promise<ConvKernelOps> {
    const [height, width, inChannels] = ctx.inShapes[0];
    return Conv2dKernel.create(ctx.gpu, {
      batch: ctx.batch, height, width, inChannels, outChannels: this.filters,
      kernelSize: this.kernelSize, strides: this.strides, padding: this.padding, useBias, activation, label: ctx.label,
    }, {}, { backwardInput: ctx.inputGrads[0], backwardFilter: ctx.paramGrads });
  }
}
