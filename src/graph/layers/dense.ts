import { DenseKernel } from '../../kernels/dense.ts';
import { activationName, parseActivation, reluCap, type Act } from '../activations.ts';
import { glorotUniform, type Random } from '../initializers.ts';
import { Param, shapeStr, UnaryLayer, type BackwardReads, type LayerProgram, type ProgramContext } from '../layer.ts';

export interface DenseConfig {
  units: number;
  activation?: string;
  useBias?: boolean;
  name?: string;
}

/** Keras's Dense on a flat input: kernel [in, units], bias [units]. */
export class Dense extends UnaryLayer {
  readonly className = 'Dense';
  readonly units: number;
  readonly activation: Act;

  constructor(config: DenseConfig) {
    super(config.name, 'dense');
    if (!Number.isInteger(config.units) || config.units <= 0) throw new Error(`${this.name}: units must be a positive integer, got ${config.units}`);
    if (config.useBias === false) throw new Error(`${this.name}: useBias false is not supported`);
    this.units = config.units;
    this.activation = parseActivation(config.activation, this.name);
    const a = this.activation.kind;
    if (a !== 'linear' && a !== 'sigmoid' && a !== 'softmax' && reluCap(this.activation) !== 'relu') {
      throw new Error(`${this.name}: a ${activationName(this.activation)} activation on Dense is not supported (use 'relu', 'sigmoid', 'softmax' or 'linear', or a separate Activation layer)`);
    }
  }

  computeOutputShape(s: number[]): number[] {
    if (s.length !== 1) throw new Error(`${this.name} (Dense) expects a flat input [features], got ${shapeStr(s)}: add a Flatten() or a global pooling layer before it`);
    return [this.units];
  }

  protected override build(s: number[][], random: Random): void {
    const shape = [s[0][0], this.units];
    this.params = [
      new Param(`${this.name}/kernel`, shape, glorotUniform(shape, random)),
      new Param(`${this.name}/bias`, [this.units], new Float32Array(this.units)),
    ];
  }

  override get ownActivation(): Act {
    return this.activation;
  }

  override acceptsActivation(act: Act): boolean {
    return this.activation.kind === 'linear' && (act.kind === 'sigmoid' || act.kind === 'softmax' || reluCap(act) === 'relu');
  }

  override backwardReads(ctx: Pick<ProgramContext, 'activation' | 'paramGrads'>): BackwardReads {
    return { inputs: ctx.paramGrads, output: ctx.activation.kind !== 'linear' };
  }

  async createProgram(ctx: ProgramContext): Promise<LayerProgram> {
    const a = ctx.activation.kind === 'relu' ? 'relu' : ctx.activation.kind;
    // softmax is evaluated by the loss / probabilities kernels: the plan runs a softmax head linear
    if (a !== 'linear' && a !== 'relu' && a !== 'sigmoid') throw new Error(`internal: ${this.name} cannot apply ${activationName(ctx.activation)} in its epilogue`);
    const k = await DenseKernel.create(ctx.gpu, { batch: ctx.batch, inFeatures: ctx.inShapes[0][0], outFeatures: this.units, activation: a, label: ctx.label });
    const masked = a !== 'linear';
    return {
      forward: ({ xs, y, params }) => [k.forward({ x: xs[0], w: params[0], b: params[1], y })],
      backward: ({ xs, y, dy, dxs, params, grads }) => {
        const ops = [];
        if (grads[0] && grads[1]) ops.push(k.backwardWeights({ x: xs[0], dy, y: masked ? y : undefined, dw: grads[0], db: grads[1] }));
        if (dxs[0]) ops.push(k.backwardInput({ dy, y: masked ? y : undefined, w: params[0], dx: dxs[0] }));
        return ops;
      },
      destroy: () => k.destroy(),
    };
  }
}
