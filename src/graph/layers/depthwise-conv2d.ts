import { DepthwiseConv2dKernel } from '../../kernels/depthwise-conv2d.ts';
import { glorotUniform, type Random } from '../initializers.ts';
import { Param, type ProgramContext } from '../layer.ts';
import { ConvLayer, type ConvKernelOps, type ConvOptions } from './conv-base.ts';

export interface DepthwiseConv2DConfig extends ConvOptions {
  depthMultiplier?: number;
}

/** Keras's DepthwiseConv2D: depthwise_kernel [kh, kw, cin, multiplier]; output channel c * multiplier + m. */
export class DepthwiseConv2D extends ConvLayer {
  readonly className = 'DepthwiseConv2D';
  readonly depthMultiplier: number;

  constructor(config: DepthwiseConv2DConfig) {
    super(config, 'depthwise_conv2d', 'DepthwiseConv2D');
    this.depthMultiplier = config.depthMultiplier ?? 1;
    if (!Number.isInteger(this.depthMultiplier) || this.depthMultiplier < 1) throw new Error(`${this.name}: depthMultiplier must be a positive integer, got ${config.depthMultiplier}`);
  }

  protected outChannels(inChannels: number): number {
    return inChannels * this.depthMultiplier;
  }

  protected override build(s: number[][], random: Random): void {
    const cin = s[0][2];
    const shape = [this.kernelSize[0], this.kernelSize[1], cin, this.depthMultiplier];
    // Keras's glorot_uniform on a depthwise kernel: fan_in = kh*kw*cin, fan_out = kh*kw*multiplier
    this.params = [new Param(`${this.name}/depthwise_kernel`, shape, glorotUniform(shape, random))];
    if (this.useBias) this.params.push(new Param(`${this.name}/bias`, [cin * this.depthMultiplier], new Float32Array(cin * this.depthMultiplier)));
  }

  protected createKernel(ctx: ProgramContext, activation: 'linear' | 'relu' | 'relu6', useBias: boolean): Promise<ConvKernelOps> {
    const [height, width, channels] = ctx.inShapes[0];
    return DepthwiseConv2dKernel.create(ctx.gpu, {
      batch: ctx.batch, height, width, channels, kernelSize: this.kernelSize, strides: this.strides, padding: this.padding,
      depthMultiplier: this.depthMultiplier, useBias, activation, label: ctx.label,
    });
  }
}
