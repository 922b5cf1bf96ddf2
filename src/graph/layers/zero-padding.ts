import { ZeroPadding2dKernel } from '../../kernels/zero-padding2d.ts';
import { expectImage, UnaryLayer, type BackwardReads, type LayerProgram, type ProgramContext } from '../layer.ts';

type Padding = number | [number, number] | [[number, number], [number, number]];

/** Keras's ZeroPadding2D: padding int, [h, w] (symmetric) or [[top, bottom], [left, right]]. */
export class ZeroPadding2D extends UnaryLayer {
  readonly className = 'ZeroPadding2D';
  readonly padding: [[number, number], [number, number]];
  constructor(config: { padding?: Padding; name?: string } = {}) {
    super(config.name, 'zero_padding2d');
    const p = config.padding ?? 1;
    const norm: [[number, number], [number, number]] = typeof p === 'number' ? [[p, p], [p, p]]
      : Array.isArray(p[0]) ? [[...(p[0] as [number, number])], [...(p[1] as [number, number])]]
      : [[p[0] as number, p[0] as number], [p[1] as number, p[1] as number]];
    if (norm.length !== 2 || norm.some((a) => a.length !== 2 || a.some((d) => !Number.isInteger(d) || d < 0))) {
      throw new Error(`${this.name}: padding must be an integer >= 0, [h, w] or [[top, bottom], [left, right]], got ${JSON.stringify(config.padding)}`);
    }
    this.padding = norm;
  }
  computeOutputShape(s: number[]): number[] {
    const [h, w, c] = expectImage(this, s);
    const [[t, b], [l, r]] = this.padding;
    return [h + t + b, w + l + r, c];
  }
  override backwardReads(): BackwardReads {
    return { inputs: false, output: false };
  }
  async createProgram(ctx: ProgramContext): Promise<LayerProgram> {
    const [height, width, channels] = ctx.inShapes[0];
    const k = await ZeroPadding2dKernel.create(ctx.gpu, { batch: ctx.batch, height, width, channels, padding: this.padding, label: ctx.label });
    return {
      forward: ({ xs, y }) => [k.forward({ x: xs[0], y })],
      backward: ({ dy, dxs }) => (dxs[0] ? [k.backward({ dy, dx: dxs[0] })] : []),
      destroy: () => k.destroy(),
    };
  }
}
