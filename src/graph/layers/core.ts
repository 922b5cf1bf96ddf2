// Layers without weights that reshape, drop or activate: Flatten, Dropout, Activation, ReLU.
import { ActivationKernel } from '../../kernels/activation.ts';
import { DropoutKernel } from '../../kernels/dropout.ts';
import { activationName, parseActivation, type Act } from '../activations.ts';
import { sizeOf, UnaryLayer, type BackwardReads, type LayerProgram, type ProgramContext } from '../layer.ts';

/** Flatten: the same buffer viewed as [features] (NHWC order, like Keras's channels-last). */
export class Flatten extends UnaryLayer {
  readonly className = 'Flatten';
  constructor(config: { name?: string } = {}) {
    super(config.name, 'flatten');
  }
  computeOutputShape(s: number[]): number[] {
    return [sizeOf(s)];
  }
  override isAlias(): boolean {
    return true;
  }
  createProgram(): Promise<LayerProgram> {
    throw new Error('internal: Flatten is an alias and has no program');
  }
}

/** Inverted dropout; masks are regenerated from (seed, step, index), never stored. */
export class Dropout extends UnaryLayer {
  readonly className = 'Dropout';
  readonly rate: number;
  readonly seed: number | undefined;
  constructor(config: { rate: number; seed?: number; name?: string }) {
    super(config.name, 'dropout');
    if (!(config.rate >= 0 && config.rate < 1)) throw new Error(`${this.name}: rate must be in [0, 1), got ${config.rate}`);
    this.rate = config.rate;
    this.seed = config.seed;
  }
  computeOutputShape(s: number[]): number[] {
    return s;
  }
  override isAlias(training: boolean): boolean {
    return !training || this.rate === 0;
  }
  override get trainingDependent(): boolean {
    return this.rate > 0;
  }
  override backwardReads(): BackwardReads {
    return { inputs: false, output: false };
  }
  async createProgram(ctx: ProgramContext): Promise<LayerProgram> {
    const k = await DropoutKernel.create(ctx.gpu, { size: sizeOf(ctx.outShape) * ctx.batch, rate: this.rate, seed: this.seed ?? ctx.seed, label: ctx.label });
    return {
      forward: ({ xs, y }) => [k.forward({ x: xs[0], y })],
      backward: ({ dy, dxs }) => (dxs[0] ? [k.backward({ dy, dx: dxs[0] })] : []),
      setStep: (step) => k.setStep(step),
      destroy: () => k.destroy(),
    };
  }
}

/** An elementwise activation; fused into the producer's epilogue when the plan can. */
abstract class ActivationBase extends UnaryLayer {
  abstract readonly activation: Act;
  computeOutputShape(s: number[]): number[] {
    return s;
  }
  override isAlias(): boolean {
    return this.activation.kind === 'linear';
  }
  override fusibleActivation(): Act | null {
    return this.activation;
  }
  override backwardReads(): BackwardReads {
    return { inputs: true, output: false };
  }
  async createProgram(ctx: ProgramContext): Promise<LayerProgram> {
    const a = this.activation;
    if (a.kind === 'softmax') throw new Error(`${this.name}: a standalone softmax is supported only as the model's output, right after a Dense layer`);
    const k = await ActivationKernel.create(ctx.gpu, { size: sizeOf(ctx.outShape) * ctx.batch, activation: a, label: ctx.label });
    return {
      forward: ({ xs, y }) => [k.forward({ x: xs[0], y })],
      backward: ({ xs, dy, dxs }) => (dxs[0] ? [k.backward({ x: xs[0], dy, dx: dxs[0] })] : []),
      destroy: () => k.destroy(),
    };
  }
  override describe(): string {
    return `${this.name} (${this.className} ${activationName(this.activation)})`;
  }
}

/** Keras's Activation('relu' | 'relu6' | 'sigmoid' | 'tanh' | 'swish' | 'silu' | 'linear' | 'softmax'). */
export class Activation extends ActivationBase {
  readonly className = 'Activation';
  readonly activation: Act;
  constructor(config: { activation: string; name?: string }) {
    super(config.name, 'activation');
    this.activation = parseActivation(config.activation, this.name);
  }
}

/** Keras's ReLU(maxValue, negativeSlope, threshold); ReLU({ maxValue: 6 }) is MobileNetV2's ReLU6. */
export class ReLU extends ActivationBase {
  readonly className = 'ReLU';
  readonly activation: Act;
  constructor(config: { maxValue?: number | null; negativeSlope?: number; threshold?: number; name?: string } = {}) {
    super(config.name, 're_lu');
    for (const [k, v] of Object.entries({ maxValue: config.maxValue ?? 0, negativeSlope: config.negativeSlope ?? 0, threshold: config.threshold ?? 0 })) {
      if (!Number.isFinite(v) || v < 0) throw new Error(`${this.name}: ${k} must be a number >= 0, got ${v}`);
    }
    this.activation = { kind: 'relu', maxValue: config.maxValue ?? undefined, negativeSlope: config.negativeSlope ?? 0, threshold: config.threshold ?? 0 };
  }
}
