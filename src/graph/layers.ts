import type { Gpu } from '../gpu/index.ts';
import { glorotUniform, seededRandom, type Random } from './initializers.ts';
import { SymbolicTensor } from './symbolic.ts';

export type ActivationName = 'linear' | 'relu' | 'sigmoid' | 'softmax';

/** One weight tensor of a layer: a host copy until a model places it on the device. */
export class Param {
  readonly name: string;
  readonly shape: number[];
  /** Host values; stale once `buffer` exists (the device copy is the truth during training). */
  host: Float32Array;
  buffer: GPUBuffer | null = null;
  gpu: Gpu | null = null;
  /** Bumped by every write from outside training (setWeights, loading): invalidates feature caches. */
  version = 0;

  constructor(name: string, shape: number[], values: Float32Array) {
    this.name = name;
    this.shape = shape;
    this.host = values;
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

const shapeStr = (s: readonly number[]) => `[${s.join(', ')}]`;

export abstract class Layer {
  readonly name: string;
  abstract readonly className: string;
  trainable = true;
  input: SymbolicTensor | null = null;
  output: SymbolicTensor | null = null;
  params: Param[] = [];

  constructor(name: string | undefined, prefix: string) {
    this.name = name ?? uniqueName(prefix);
  }

  /** Output shape for an input shape (both without the batch dimension). Throws on a mismatch. */
  abstract computeOutputShape(inputShape: number[]): number[];

  /** Creates this layer's weights for an input shape. */
  protected build(_inputShape: number[], _random: Random): void {}

  apply(x: SymbolicTensor): SymbolicTensor {
    if (!(x instanceof SymbolicTensor)) throw new Error(`${this.name}.apply() expects a symbolic tensor (from Input() or another layer's apply()), got ${typeof x}`);
    if (this.output) throw new Error(`${this.name} was already applied; sharing a layer between two places in a graph is not supported`);
    const outShape = this.computeOutputShape(x.shape);
    this.build(x.shape, initRandom);
    this.input = x;
    this.output = new SymbolicTensor(outShape, this, x);
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

  /** Weights in Keras's order and layout (conv kernel HWIO then bias; dense kernel [in, out] then bias). */
  async getWeights(): Promise<{ shape: number[]; data: Float32Array }[]> {
    return Promise.all(this.params.map(async (p) => ({ shape: p.shape.slice(), data: await p.read() })));
  }

  async setWeights(weights: { shape: number[]; data: Float32Array }[]): Promise<void> {
    if (weights.length !== this.params.length) {
      throw new Error(`${this.name}.setWeights: expected ${this.params.length} arrays (${this.params.map((p) => shapeStr(p.shape)).join(', ') || 'none'}), got ${weights.length}`);
    }
    weights.forEach((w, i) => {
      const p = this.params[i];
      const n = w.shape.reduce((a, b) => a * b, 1);
      if (w.shape.length !== p.shape.length || w.shape.some((d, j) => d !== p.shape[j])) {
        throw new Error(`${this.name}.setWeights: weight ${i} (${p.name}) has shape ${shapeStr(p.shape)}, got ${shapeStr(w.shape)}`);
      }
      if (w.data.length !== n) throw new Error(`${this.name}.setWeights: weight ${i} (${p.name}) shape ${shapeStr(w.shape)} needs ${n} values, got ${w.data.length}`);
    });
    weights.forEach((w, i) => this.params[i].write(w.data));
  }

  /** One line of config for summaries and error messages. */
  describe(): string {
    return `${this.name} (${this.className})`;
  }
}

export class InputLayer extends Layer {
  readonly className = 'InputLayer';
  constructor(readonly shape: number[], name?: string) {
    super(name, 'input');
    this.trainable = false;
  }
  computeOutputShape(s: number[]): number[] {
    return s;
  }
}

/** Keras's Input(): a symbolic tensor with the given per-example shape (no batch dimension). */
export function Input(config: { shape: number[]; name?: string }): SymbolicTensor {
  const shape = config.shape;
  if (!Array.isArray(shape) || shape.length === 0 || shape.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new Error(`Input: shape must be positive integers without the batch dimension, e.g. [240, 360, 3]; got ${JSON.stringify(shape)}`);
  }
  const layer = new InputLayer(shape.slice(), config.name);
  layer.output = new SymbolicTensor(shape.slice(), layer, null);
  return layer.output;
}

function pair(v: number | [number, number] | undefined, fallback: [number, number], what: string, layer: string): [number, number] {
  const p: [number, number] = v === undefined ? fallback : typeof v === 'number' ? [v, v] : v;
  if (p.length !== 2 || p.some((d) => !Number.isInteger(d) || d <= 0)) throw new Error(`${layer}: ${what} must be a positive integer or a pair of them, got ${JSON.stringify(v)}`);
  return p;
}

function activationOf(a: string | undefined, layer: string): ActivationName {
  const name = a ?? 'linear';
  if (name !== 'linear' && name !== 'relu' && name !== 'sigmoid' && name !== 'softmax') {
    throw new Error(`${layer}: activation '${name}' is not supported (use 'relu', 'sigmoid', 'softmax' or 'linear')`);
  }
  return name;
}

export interface Conv2DConfig {
  filters: number;
  kernelSize: number | [number, number];
  padding?: 'same' | 'valid';
  activation?: ActivationName;
  strides?: number | [number, number];
  useBias?: boolean;
  name?: string;
}

export class Conv2D extends Layer {
  readonly className = 'Conv2D';
  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly padding: 'same' | 'valid';
  readonly activation: ActivationName;

  constructor(config: Conv2DConfig) {
    super(config.name, 'conv2d');
    if (!Number.isInteger(config.filters) || config.filters <= 0) throw new Error(`${this.name}: filters must be a positive integer, got ${config.filters}`);
    this.filters = config.filters;
    this.kernelSize = pair(config.kernelSize, [3, 3], 'kernelSize', this.name);
    const strides = pair(config.strides, [1, 1], 'strides', this.name);
    if (strides[0] !== 1 || strides[1] !== 1) throw new Error(`${this.name}: only strides 1 are supported, got ${JSON.stringify(config.strides)}`);
    if (config.useBias === false) throw new Error(`${this.name}: useBias false is not supported`);
    this.padding = config.padding ?? 'valid';
    if (this.padding !== 'same' && this.padding !== 'valid') throw new Error(`${this.name}: padding must be 'same' or 'valid', got '${this.padding}'`);
    this.activation = activationOf(config.activation, this.name);
    if (this.activation !== 'relu' && this.activation !== 'linear') throw new Error(`${this.name}: a ${this.activation} activation on Conv2D is not supported (use 'relu' or 'linear')`);
  }

  computeOutputShape(s: number[]): number[] {
    if (s.length !== 3) throw new Error(`${this.name} (Conv2D) expects an input of shape [height, width, channels], got ${shapeStr(s)}`);
    const [h, w] = s;
    const [kh, kw] = this.kernelSize;
    if (this.padding === 'same') return [h, w, this.filters];
    if (h < kh || w < kw) throw new Error(`${this.name} (Conv2D): a ${kh}x${kw} 'valid' kernel does not fit an input of ${h}x${w}`);
    return [h - kh + 1, w - kw + 1, this.filters];
  }

  protected override build(s: number[], random: Random): void {
    const shape = [this.kernelSize[0], this.kernelSize[1], s[2], this.filters];
    this.params = [
      new Param(`${this.name}/kernel`, shape, glorotUniform(shape, random)),
      new Param(`${this.name}/bias`, [this.filters], new Float32Array(this.filters)),
    ];
  }
}

export interface MaxPooling2DConfig {
  poolSize?: number | [number, number];
  strides?: number | [number, number];
  padding?: 'valid';
  name?: string;
}

export class MaxPooling2D extends Layer {
  readonly className = 'MaxPooling2D';
  readonly poolSize: [number, number];
  readonly strides: [number, number];

  constructor(config: MaxPooling2DConfig = {}) {
    super(config.name, 'max_pooling2d');
    this.poolSize = pair(config.poolSize, [2, 2], 'poolSize', this.name);
    this.strides = pair(config.strides, this.poolSize, 'strides', this.name);
    if (config.padding && config.padding !== 'valid') throw new Error(`${this.name}: only padding 'valid' is supported`);
    if (this.poolSize.some((d) => d !== 2) || this.strides.some((d) => d !== 2)) {
      throw new Error(`${this.name}: only poolSize 2 with strides 2 is supported, got poolSize ${JSON.stringify(this.poolSize)} strides ${JSON.stringify(this.strides)}`);
    }
  }

  computeOutputShape(s: number[]): number[] {
    if (s.length !== 3) throw new Error(`${this.name} (MaxPooling2D) expects an input of shape [height, width, channels], got ${shapeStr(s)}`);
    const [h, w, c] = s;
    const oh = Math.floor((h - this.poolSize[0]) / this.strides[0]) + 1;
    const ow = Math.floor((w - this.poolSize[1]) / this.strides[1]) + 1;
    if (oh <= 0 || ow <= 0) throw new Error(`${this.name} (MaxPooling2D): a 2x2 pool does not fit an input of ${h}x${w}`);
    return [oh, ow, c];
  }
}

export class Flatten extends Layer {
  readonly className = 'Flatten';
  constructor(config: { name?: string } = {}) {
    super(config.name, 'flatten');
  }
  computeOutputShape(s: number[]): number[] {
    return [s.reduce((a, b) => a * b, 1)];
  }
}

export interface DenseConfig {
  units: number;
  activation?: ActivationName;
  useBias?: boolean;
  name?: string;
}

export class Dense extends Layer {
  readonly className = 'Dense';
  readonly units: number;
  readonly activation: ActivationName;

  constructor(config: DenseConfig) {
    super(config.name, 'dense');
    if (!Number.isInteger(config.units) || config.units <= 0) throw new Error(`${this.name}: units must be a positive integer, got ${config.units}`);
    if (config.useBias === false) throw new Error(`${this.name}: useBias false is not supported`);
    this.units = config.units;
    this.activation = activationOf(config.activation, this.name);
  }

  computeOutputShape(s: number[]): number[] {
    if (s.length !== 1) throw new Error(`${this.name} (Dense) expects a flat input [features], got ${shapeStr(s)}: add a Flatten() layer before it`);
    return [this.units];
  }

  protected override build(s: number[], random: Random): void {
    const shape = [s[0], this.units];
    this.params = [
      new Param(`${this.name}/kernel`, shape, glorotUniform(shape, random)),
      new Param(`${this.name}/bias`, [this.units], new Float32Array(this.units)),
    ];
  }
}

export class Dropout extends Layer {
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
}

export class Activation extends Layer {
  readonly className = 'Activation';
  readonly activation: ActivationName;
  constructor(config: { activation: ActivationName; name?: string }) {
    super(config.name, 'activation');
    this.activation = activationOf(config.activation, this.name);
  }
  computeOutputShape(s: number[]): number[] {
    return s;
  }
}
