// MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D (NHWC).
import { AvgPool2dKernel } from '../../kernels/avgpool2d.ts';
import { GlobalPool2dKernel } from '../../kernels/global-pool2d.ts';
import { MaxPool2dKernel } from '../../kernels/maxpool2d.ts';
import { convOutSize, expectImage, pair, UnaryLayer, type BackwardReads, type LayerProgram, type ProgramContext } from '../layer.ts';

export interface Pooling2DConfig {
  poolSize?: number | [number, number];
  /** Default: poolSize (Keras). */
  strides?: number | [number, number];
  padding?: 'valid' | 'same';
  name?: string;
}

abstract class Pooling2D extends UnaryLayer {
  readonly poolSize: [number, number];
  readonly strides: [number, number];
  readonly padding: 'valid' | 'same';

  constructor(config: Pooling2DConfig, prefix: string) {
    super(config.name, prefix);
    this.poolSize = pair(config.poolSize, [2, 2], 'poolSize', this.name);
    this.strides = pair(config.strides, this.poolSize, 'strides', this.name);
    this.padding = config.padding ?? 'valid';
    if (this.padding !== 'valid' && this.padding !== 'same') throw new Error(`${this.name}: padding must be 'valid' or 'same', got '${String(config.padding)}'`);
  }

  computeOutputShape(s: number[]): number[] {
    const [h, w, c] = expectImage(this, s);
    const oh = convOutSize(h, this.poolSize[0], this.strides[0], this.padding);
    const ow = convOutSize(w, this.poolSize[1], this.strides[1], this.padding);
    if (oh <= 0 || ow <= 0) throw new Error(`${this.name} (${this.className}): a ${this.poolSize.join('x')} pool does not fit an input of ${h}x${w} with padding 'valid'`);
    return [oh, ow, c];
  }

  protected shapeFor(ctx: ProgramContext) {
    const [height, width, channels] = ctx.inShapes[0];
    return { batch: ctx.batch, height, width, channels, poolSize: this.poolSize, strides: this.strides, padding: this.padding, label: ctx.label };
  }
}

/** Max over each window; backward routes dy to the window's first maximum (recomputed from x). */
export class MaxPooling2D extends Pooling2D {
  readonly className = 'MaxPooling2D';
  constructor(config: Pooling2DConfig = {}) {
    super(config, 'max_pooling2d');
  }
  override backwardReads(): BackwardReads {
    return { inputs: true, output: false };
  }
  async createProgram(ctx: ProgramContext): Promise<LayerProgram> {
    const k = await MaxPool2dKernel.create(ctx.gpu, this.shapeFor(ctx));
    return {
      forward: ({ xs, y }) => [k.forward({ x: xs[0], y })],
      backward: ({ xs, dy, dxs }) => (dxs[0] ? [k.backward({ x: xs[0], dy, dx: dxs[0] })] : []),
      destroy: () => k.destroy(),
    };
  }
}

/** Mean over each window ('same' counts only real pixels, as TF). */
export class AveragePooling2D extends Pooling2D {
  readonly className = 'AveragePooling2D';
  constructor(config: Pooling2DConfig = {}) {
    super(config, 'average_pooling2d');
  }
  override backwardReads(): BackwardReads {
    return { inputs: false, output: false };
  }
  async createProgram(ctx: ProgramContext): Promise<LayerProgram> {
    const k = await AvgPool2dKernel.create(ctx.gpu, this.shapeFor(ctx));
    return {
      forward: ({ xs, y }) => [k.forward({ x: xs[0], y })],
      backward: ({ dy, dxs }) => (dxs[0] ? [k.backward({ dy, dx: dxs[0] })] : []),
      destroy: () => k.destroy(),
    };
  }
}

abstract class GlobalPooling2D extends UnaryLayer {
  abstract readonly mode: 'avg' | 'max';
  computeOutputShape(s: number[]): number[] {
    return [expectImage(this, s)[2]];
  }
  override backwardReads(): BackwardReads {
    return { inputs: this.mode === 'max', output: false };
  }
  async createProgram(ctx: ProgramContext): Promise<LayerProgram> {
    const [height, width, channels] = ctx.inShapes[0];
    const k = await GlobalPool2dKernel.create(ctx.gpu, { batch: ctx.batch, height, width, channels, mode: this.mode, label: ctx.label });
    return {
      forward: ({ xs, y }) => [k.forward({ x: xs[0], y })],
      backward: ({ xs, dy, dxs }) => (dxs[0] ? [k.backward({ x: xs[0], dy, dx: dxs[0] })] : []),
      destroy: () => k.destroy(),
    };
  }
}

/** Mean over height and width: [h, w, c] -> [c]. */
export class GlobalAveragePooling2D extends GlobalPooling2D {
  readonly className = 'GlobalAveragePooling2D';
  readonly mode = 'avg';
  constructor(config: { name?: string } = {}) {
    super(config.name, 'global_average_pooling2d');
  }
}

/** Max over height and width: [h, w, c] -> [c]. */
export class GlobalMaxPooling2D extends GlobalPooling2D {
  readonly className = 'GlobalMaxPooling2D';
  readonly mode = 'max';
  constructor(config: { name?: string } = {}) {
    super(config.name, 'global_max_pooling2d');
  }
}
