import { AddKernel } from '../../kernels/add.ts';
import { Layer, shapeStr, sizeOf, type BackwardReads, type LayerProgram, type ProgramContext } from '../layer.ts';

/** Keras's Add: the elementwise sum of two or more same-shape tensors. Backward passes dy to each. */
export class Add extends Layer {
  readonly className = 'Add';
  protected override readonly arity = 'many' as const;
  constructor(config: { name?: string } = {}) {
    super(config.name, 'add');
  }
  computeOutputShapes(shapes: number[][]): number[] {
    const first = shapes[0];
    for (const s of shapes) {
      if (s.length !== first.length || s.some((d, i) => d !== first[i])) {
        throw new Error(`${this.name} (Add): inputs must have the same shape, got ${shapes.map(shapeStr).join(' and ')}`);
      }
    }
    return first.slice();
  }
  override get passesGradient(): boolean {
    return true;
  }
  override backwardReads(): BackwardReads {
    return { inputs: false, output: false };
  }
  async createProgram(ctx: ProgramContext): Promise<LayerProgram> {
    const k = await AddKernel.create(ctx.gpu, { size: sizeOf(ctx.outShape) * ctx.batch, inputs: ctx.inShapes.length, label: ctx.label });
    return {
      forward: ({ xs, y }) => [k.forward({ xs, y })],
      destroy: () => k.destroy(),
    };
  }
}
