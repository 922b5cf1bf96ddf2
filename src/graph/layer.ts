// The layer protocol: what every layer type declares so that the plan can schedule, fuse,
// allocate and run it without knowing the type. A layer owns its shapes, its weights, and the
// programs (kernel ops) that compute its forward and backward passes.
import type { Gpu, GpuOp } from '../gpu/index.ts';
import type { Act } from './activations.ts';
import { seededRandom, type Random } from './initializers.ts';
import { SymbolicTensor } from './symbolic.ts';

/** One weight tensor of a layer: a host copy until a model places it on the device. */
export class Param {
  readonly name: string;
  readonly shape: number[];
  /** False for statistics that no optimizer updates (BatchNormalization's moving mean/variance). */
  readonly trainable: boolean;
  /** Host values; stale once `buffer` exists and training has written it (the device copy is the truth). */
  host: Float32Array;
  buffer: GPUBuffer | null = null;
  gpu: Gpu | null = null;
  /** Bumped by every write from outside training (setWeights, loading): invalidates caches and folds. */
  version = 0;

  constructor(name: string, shape: number[], values: Float32Array, trainable = true) {
    this.name = name;
    this.shape = shape;
    this.host = values;
    this.trainable = trainable;
  }

  get size(): number {
    return this.host.length;
  }

  /** Uploads the host values once; later calls return the same buffer. */
  place(gpu: Gpu): GPUBuffer {
    if (this.buffer && this.gpu === gpu) return this.buffer;
    this.buffer = gpu.upload(this.name, this.host);
    this.gpu = gpu;
    return this.buffer;
  }

  async read(): Promise<Float32Array> {
    if (this.buffer && this.gpu) this.host = await this.gpu.readF32(this.buffer, this.size);
    return this.host.slice();
  }

  write(values: Float32Array): void {
    this.version++;
    this.host = values.slice();
    if (this.buffer && this.gpu) this.gpu.write(this.buffer, this.host);
  }
}

const nameCounters = new Map<string, number>();
/** Keras-style unique names: dense, dense_1, dense_2, ... */
export function uniqueName(prefix: string): string {
  const n = nameCounters.get(prefix) ?? 0;
  nameCounters.set(prefix, n + 1);
  return n === 0 ? prefix : `${prefix}_${n}`;
}

let initRandom: Random = seededRandom(1337);
/** Seeds the generator used for new layers' initial weights (Keras draws from a global RNG too). */
export function setInitSeed(seed: number): void {
  initRandom = seededRandom(seed);
}

export const shapeStr = (s: readonly number[]) => `[${s.join(', ')}]`;
export const sizeOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** What a layer's program is built for: one batch size, one mode, the plan's fusion decisions. */
export interface ProgramContext {
  gpu: Gpu;
  batch: number;
  inShapes: number[][];
  outShape: number[];
  /** A training step's forward (dropout active; trainable BatchNormalization uses batch statistics). */
  training: boolean;
  /** The epilogue to apply: the layer's own activation, one fused from a following layer, or linear for logits. */
  activation: Act;
  /** Params are [kernel', bias'] with a following BatchNormalization folded in (a bias always exists). */
  folded: boolean;
  /** Whether the backward pass must compute each input's gradient. */
  inputGrads: boolean[];
  /** Whether the backward pass must compute the weights' gradients. */
  paramGrads: boolean;
  /** Base seed for random masks (dropout). */
  seed: number;
  label: string;
}

/** The buffers an op sees; params are the layer's weights on the device (possibly folded). */
export interface ForwardIO {
  xs: GPUBuffer[];
  y: GPUBuffer;
  params: GPUBuffer[];
}

export interface BackwardIO extends ForwardIO {
  dy: GPUBuffer;
  /** Overwritten with each input's gradient; null where not needed. */
  dxs: (GPUBuffer | null)[];
  /** Overwritten with each param's gradient; null for frozen or non-trainable params. */
  grads: (GPUBuffer | null)[];
}

/** A layer's kernels for one context, with bound ops. */
export interface LayerProgram {
  forward(io: ForwardIO): GpuOp[];
  backward?(io: BackwardIO): GpuOp[];
  /** Per-step state (dropout masks are regenerated from a seed and the step). */
  setStep?(step: number): void;
  destroy(): void;
}

/** What the backward pass reads, so the plan keeps exactly those tensors alive. */
export interface BackwardReads {
  inputs: boolean;
  output: boolean;
}

export abstract class Layer {
  readonly name: string;
  abstract readonly className: string;
  trainable = true;
  /** The tensors this layer was applied to, and its output (one node per layer: no sharing). */
  inputs: SymbolicTensor[] = [];
  output: SymbolicTensor | null = null;
  params: Param[] = [];

  constructor(name: string | undefined, prefix: string) {
    this.name = name ?? uniqueName(prefix);
  }

  /** The first input (single-input layers). */
  get input(): SymbolicTensor | null {
    return this.inputs[0] ?? null;
  }

  /** Output shape for the input shapes (all without the batch dimension). Throws on a mismatch. */
  abstract computeOutputShapes(inputShapes: number[][]): number[];

  /** Creates this layer's weights for its input shapes. */
  protected build(_inputShapes: number[][], _random: Random): void {}

  /** How many inputs apply() takes: a number, or 'many' (two or more). */
  protected readonly arity: number | 'many' = 1;

  apply(x: SymbolicTensor | SymbolicTensor[]): SymbolicTensor {
    const xs = Array.isArray(x) ? x : [x];
    for (const t of xs) {
      if (!(t instanceof SymbolicTensor)) throw new Error(`${this.name}.apply() expects symbolic tensors (from Input() or another layer's apply()), got ${typeof t}`);
    }
    if (this.arity === 'many' ? xs.length < 2 : xs.length !== this.arity) {
      throw new Error(`${this.name} (${this.className}).apply() takes ${this.arity === 'many' ? 'a list of two or more tensors' : 'one tensor'}, got ${xs.length}`);
    }
    if (this.output) throw new Error(`${this.name} was already applied; sharing a layer between two places in a graph is not supported (create another layer)`);
    const shapes = xs.map((t) => t.shape);
    const outShape = this.computeOutputShapes(shapes);
    this.build(shapes, initRandom);
    this.inputs = xs;
    this.output = new SymbolicTensor(outShape, this, xs);
    return this.output;
  }

  /** Keras's output_shape: batch dimension first, as null. */
  get outputShape(): (number | null)[] {
    if (!this.output) throw new Error(`${this.name} has no output shape until it is applied to a tensor`);
    return [null, ...this.output.shape];
  }

  countParams(): number {
    return this.params.reduce((a, p) => a + p.size, 0);
  }

  /** Parameters the optimizer may update while this layer is trainable. */
  get trainableParams(): Param[] {
    return this.trainable ? this.params.filter((p) => p.trainable) : [];
  }

  /** Weights in Keras's get_weights order and layout. */
  async getWeights(): Promise<{ shape: number[]; data: Float32Array }[]> {
    return Promise.all(this.params.map(async (p) => ({ shape: p.shape.slice(), data: await p.read() })));
  }

  async setWeights(weights: { shape: number[]; data: Float32Array }[]): Promise<void> {
    if (weights.length !== this.params.length) {
      throw new Error(`${this.name}.setWeights: expected ${this.params.length} arrays (${this.params.map((p) => shapeStr(p.shape)).join(', ') || 'none'}), got ${weights.length}`);
    }
    weights.forEach((w, i) => {
      const p = this.params[i];
      const n = sizeOf(w.shape);
      if (w.shape.length !== p.shape.length || w.shape.some((d, j) => d !== p.shape[j])) {
        throw new Error(`${this.name}.setWeights: weight ${i} (${p.name}) has shape ${shapeStr(p.shape)}, got ${shapeStr(w.shape)}`);
      }
      if (w.data.length !== n) throw new Error(`${this.name}.setWeights: weight ${i} (${p.name}) shape ${shapeStr(w.shape)} needs ${n} values, got ${w.data.length}`);
    });
    weights.forEach((w, i) => this.params[i].write(w.data));
  }

  /** One line for summaries and error messages. */
  describe(): string {
    return `${this.name} (${this.className})`;
  }

  // ---- what the plan asks (defaults: a plain layer with a kernel of its own)

  /** The output is input 0's buffer, unchanged (Flatten; Dropout outside training): no op, no copy. */
  isAlias(_training: boolean): boolean {
    return false;
  }

  /** Computes differently in a training step (Dropout, BatchNormalization): separate programs per mode. */
  get trainingDependent(): boolean {
    return false;
  }

  /** Backward is dx_i = dy for every input (Add): the plan shares dy's buffer instead of copying. */
  get passesGradient(): boolean {
    return false;
  }

  /** Which tensors backward reads for this context. */
  backwardReads(_ctx: Pick<ProgramContext, 'activation' | 'training' | 'paramGrads' | 'inputGrads'>): BackwardReads {
    return { inputs: true, output: true };
  }

  /** For activation layers: the activation they would add to the producer's epilogue. */
  fusibleActivation(): Act | null {
    return null;
  }

  /** For producers: whether their epilogue can apply `act` (their own activation being linear). */
  acceptsActivation(_act: Act): boolean {
    return false;
  }

  /** The epilogue this layer applies by itself (Conv2D/Dense activation argument). */
  get ownActivation(): Act {
    return { kind: 'linear' };
  }

  /**
   * For a BatchNormalization in inference mode (frozen): the producer's kernel and bias with this
   * layer's per-channel affine folded in (host values); null when this layer cannot fold.
   */
  foldWeights(_kernel: Param, _bias: Param | null): { kernel: Float32Array; bias: Float32Array } | null {
    return null;
  }

  /** Whether foldWeights() would fold now (cheap: the plan asks before building anything). */
  get canFold(): boolean {
    return false;
  }

  /** For producers: whether a per-output-channel affine can fold into the weights (kernel last axes = output channels). */
  get acceptsFold(): boolean {
    return false;
  }

  /** The kernels for one context. Layers without computation (pure aliases) never get asked. */
  abstract createProgram(ctx: ProgramContext): Promise<LayerProgram>;
}

/** A layer of one input: subclasses give the shape rule for that input. */
export abstract class UnaryLayer extends Layer {
  abstract computeOutputShape(inputShape: number[]): number[];
  computeOutputShapes(inputShapes: number[][]): number[] {
    return this.computeOutputShape(inputShapes[0]);
  }
}

export class InputLayer extends UnaryLayer {
  readonly className = 'InputLayer';
  constructor(readonly shape: number[], name?: string) {
    super(name, 'input');
    this.trainable = false;
  }
  computeOutputShape(s: number[]): number[] {
    return s;
  }
  createProgram(): Promise<LayerProgram> {
    throw new Error('internal: an InputLayer has no program');
  }
}

/** Keras's Input(): a symbolic tensor with the given per-example shape (no batch dimension). */
export function Input(config: { shape: number[]; name?: string }): SymbolicTensor {
  const shape = config.shape;
  if (!Array.isArray(shape) || shape.length === 0 || shape.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new Error(`Input: shape must be positive integers without the batch dimension, e.g. [240, 360, 3]; got ${JSON.stringify(shape)}`);
  }
  const layer = new InputLayer(shape.slice(), config.name);
  layer.output = new SymbolicTensor(shape.slice(), layer, []);
  return layer.output;
}

/** A number or a pair of positive integers (kernel sizes, strides, pool sizes). */
export function pair(v: number | [number, number] | undefined, fallback: [number, number], what: string, layer: string): [number, number] {
  const p: [number, number] = v === undefined ? fallback : typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || p.some((d) => !Number.isInteger(d) || d <= 0)) throw new Error(`${layer}: ${what} must be a positive integer or a pair of them, got ${JSON.stringify(v)}`);
  return [p[0], p[1]];
}

/** Keras's conv/pool output size along one axis. */
export function convOutSize(size: number, k: number, s: number, padding: 'same' | 'valid'): number {
  return padding === 'same' ? Math.ceil(size / s) : Math.floor((size - k) / s) + 1;
}

/** Checks a [height, width, channels] input. */
export function expectImage(layer: Layer, s: number[]): [number, number, number] {
  if (s.length !== 3) throw new Error(`${layer.name} (${layer.className}) expects an input of shape [height, width, channels], got ${shapeStr(s)}`);
  return [s[0], s[1], s[2]];
}
