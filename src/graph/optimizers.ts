import type { Gpu } from '../gpu/index.ts';
import type { OptimizerUpdates } from '../kernels/optimizer.ts';
import { resolveClip, type ClipOptions } from '../kernels/clip-gradients.ts';
import { SgdKernel } from '../kernels/sgd.ts';
import { AdamKernel } from '../kernels/adam.ts';
import { RmspropKernel } from '../kernels/rmsprop.ts';
import { isSchedule, type LearningRateSchedule } from './schedules.ts';

/**
 * An optimizer as compile() takes it: its settings, how many state buffers it keeps per weight,
 * and a factory for the kernels the plan drives (update ops for all trainable weights, inside the
 * step's single submit).
 */
export interface Optimizer {
  readonly name: string;
  /** State buffers per trainable weight (for memory estimates and checkpoints). */
  readonly stateSlots: number;
  /** The update kernels; `halt` is the non-finite guard's flag, which every update must honour. */
  createKernel(gpu: Gpu, halt: GPUBuffer): Promise<OptimizerUpdates>;
  /** A number, or the schedule the optimizer was created with. */
  learningRate: number | LearningRateSchedule;
  /** The learning rate of the update at `iteration` (0 for the first update; schedules and legacy decay applied). */
  currentLearningRate(iteration: number): number;
  getConfig(): OptimizerConfig;
}

/** Options every optimizer takes (Keras's base optimizer arguments). */
export interface BaseOptimizerOptions extends ClipOptions {
  learningRate?: number | LearningRateSchedule;
  /** Decoupled weight decay applied before each update: w -= w * weightDecay * lr. */
  weightDecay?: number | null;
}

/** getConfig(): the constructor options plus the name; a schedule appears as { name, config }. */
export interface OptimizerConfig {
  name: string;
  learningRate: number | { name: string; config: object };
  weightDecay: number | null;
  clipnorm: number | null;
  globalClipnorm: number | null;
  clipvalue: number | null;
  [key: string]: unknown;
}

function checkNumber(who: string, key: string, v: unknown, max?: number, maxExclusive = false): number {
  const bad = typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (max !== undefined && (maxExclusive ? v >= max : v > max));
  if (bad) {
    const range = max === undefined ? '>= 0' : `in [0, ${max}${maxExclusive ? ')' : ']'}`;
    throw new Error(`${who}: ${key} must be a finite number ${range}, got ${String(v)}`);
  }
  return v as number;
}

function checkBoolean(who: string, key: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new Error(`${who}: ${key} must be true or false, got ${String(v)}`);
  return v;
}

/**
 * The settings all optimizers share: the learning rate (a number the callbacks may change
 * between steps, or a schedule of the iteration), weight decay and clipping, checked as Keras
 * does (at most one clipping option).
 */
abstract class BaseOptimizer implements Optimizer {
  abstract readonly name: string;
  abstract readonly stateSlots: number;
  readonly weightDecay: number | null;
  readonly clipnorm: number | null;
  readonly clipvalue: number | null;
  readonly globalClipnorm: number | null;
  private lr: number | LearningRateSchedule;

  protected constructor(who: string, o: BaseOptimizerOptions, defaultLearningRate: number) {
    const lr = o.learningRate ?? defaultLearningRate;
    if (!isSchedule(lr)) checkNumber(who, 'learningRate', lr);
    this.lr = lr;
    const wd = o.weightDecay ?? null;
    this.weightDecay = wd === null ? null : checkNumber(who, 'weightDecay', wd);
    resolveClip(who, o); // throws for more than one clipping option or a bad value
    this.clipnorm = o.clipnorm ?? null;
    this.clipvalue = o.clipvalue ?? null;
    this.globalClipnorm = o.globalClipnorm ?? null;
  }

  get learningRate(): number | LearningRateSchedule {
    return this.lr;
  }

  /** Takes effect at the next step (the kernels read it in setIteration). Only for a numeric rate. */
  set learningRate(value: number | LearningRateSchedule) {
    if (isSchedule(this.lr)) {
      throw new TypeError(`${this.name}: this optimizer was created with a \`LearningRateSchedule\` object as its \`learningRate\` constructor argument, hence its learning rate is not settable. If you need the learning rate to be settable, you should instantiate the optimizer with a float \`learningRate\` argument.`);
    }
    if (isSchedule(value)) {
      throw new TypeError(`${this.name}: a schedule can only be given to the constructor (new ${this.name}({ learningRate: schedule })); set learningRate to a number here`);
    }
    this.lr = checkNumber(this.name, 'learningRate', value);
  }

  currentLearningRate(iteration: number): number {
    if (!Number.isInteger(iteration) || iteration < 0) throw new Error(`${this.name}: iteration must be an integer >= 0, got ${iteration}`);
    return isSchedule(this.lr) ? this.lr.at(iteration) : this.lr;
  }

  /** The options the kernels take for the shared settings. */
  protected kernelBase(): { learningRateAt: (iteration: number) => number; weightDecay: number | null } & ClipOptions {
    return {
      learningRateAt: (iteration) => this.currentLearningRate(iteration),
      weightDecay: this.weightDecay,
      clipnorm: this.clipnorm,
      clipvalue: this.clipvalue,
      globalClipnorm: this.globalClipnorm,
    };
  }

  getConfig(): OptimizerConfig {
    const lr = this.lr;
    return {
      name: this.name,
      learningRate: isSchedule(lr) ? { name: lr.name, config: lr.getConfig() } : lr,
      weightDecay: this.weightDecay,
      clipnorm: this.clipnorm,
      globalClipnorm: this.globalClipnorm,
      clipvalue: this.clipvalue,
    };
  }

  abstract createKernel(gpu: Gpu, halt: GPUBuffer): Promise<OptimizerUpdates>;
}

export interface SGDOptions extends BaseOptimizerOptions {
  momentum?: number;
  nesterov?: boolean;
  /** Keras 2's legacy decay: lr / (1 + decay * iteration) (Keras 3 ignores it; kept for the seed's SGD). */
  decay?: number;
}

/** Keras's SGD: learning rate 0.01, momentum 0, nesterov false, decay 0 by default. */
export class SGD extends BaseOptimizer {
  readonly name = 'SGD';
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly decay: number;

  constructor(config: SGDOptions = {}) {
    super('SGD', config, 0.01);
    this.momentum = checkNumber('SGD', 'momentum', config.momentum ?? 0, 1);
    this.nesterov = checkBoolean('SGD', 'nesterov', config.nesterov ?? false);
    this.decay = checkNumber('SGD', 'decay', config.decay ?? 0);
  }

  /** The constructor options in full (learningRate as given: a number or a schedule). */
  get config(): Required<Omit<SGDOptions, 'weightDecay' | 'clipnorm' | 'clipvalue' | 'globalClipnorm'>> & Pick<OptimizerConfig, 'weightDecay' | 'clipnorm' | 'clipvalue' | 'globalClipnorm'> {
    return { learningRate: this.learningRate, momentum: this.momentum, nesterov: this.nesterov, decay: this.decay, weightDecay: this.weightDecay, clipnorm: this.clipnorm, clipvalue: this.clipvalue, globalClipnorm: this.globalClipnorm };
  }

  get stateSlots(): number {
    return this.momentum > 0 ? 1 : 0;
  }

  override currentLearningRate(iteration: number): number {
    return super.currentLearningRate(iteration) / (1 + this.decay * iteration);
  }

  override getConfig(): OptimizerConfig {
    return { ...super.getConfig(), momentum: this.momentum, nesterov: this.nesterov, decay: this.decay };
  }

  createKernel(gpu: Gpu, halt: GPUBuffer): Promise<OptimizerUpdates> {
    const lr = this.learningRate;
    return SgdKernel.create(gpu, { ...this.kernelBase(), learningRate: typeof lr === 'number' ? lr : lr.at(0), momentum: this.momentum, nesterov: this.nesterov, decay: this.decay }, halt);
  }
}

export interface AdamOptions extends BaseOptimizerOptions {
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  amsgrad?: boolean;
}

/** Keras's Adam: learning rate 1e-3, beta1 0.9, beta2 0.999, epsilon 1e-7, amsgrad false. */
export class Adam extends BaseOptimizer {
  readonly name: string = 'Adam';
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly amsgrad: boolean;

  /** The name errors use (AdamW overrides it). */
  static readonly displayName: string = 'Adam';

  constructor(config: AdamOptions = {}) {
    const who = (new.target as typeof Adam).displayName;
    super(who, config, 0.001);
    this.beta1 = checkNumber(who, 'beta1', config.beta1 ?? 0.9, 1, true);
    this.beta2 = checkNumber(who, 'beta2', config.beta2 ?? 0.999, 1, true);
    this.epsilon = checkNumber(who, 'epsilon', config.epsilon ?? 1e-7);
    this.amsgrad = checkBoolean(who, 'amsgrad', config.amsgrad ?? false);
  }

  /** momentum, velocity (and velocity_hat with amsgrad) per weight. */
  get stateSlots(): number {
    return this.amsgrad ? 3 : 2;
  }

  override getConfig(): OptimizerConfig {
    return { ...super.getConfig(), beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon, amsgrad: this.amsgrad };
  }

  createKernel(gpu: Gpu, halt: GPUBuffer): Promise<OptimizerUpdates> {
    return AdamKernel.create(gpu, { ...this.kernelBase(), beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon, amsgrad: this.amsgrad, name: this.name }, halt);
  }
}

/** Keras's AdamW: Adam with weight decay 0.004 by default (it must be a number). */
export class AdamW extends Adam {
  override readonly name: string = 'AdamW';
  static override readonly displayName: string = 'AdamW';

  constructor(config: AdamOptions = {}) {
    if (config.weightDecay === null) throw new Error('AdamW: argument `weightDecay` must be a float. Received: weightDecay=null (use Adam for no weight decay)');
    super({ ...config, weightDecay: config.weightDecay ?? 0.004 });
  }
}

export interface RMSpropOptions extends BaseOptimizerOptions {
  rho?: number;
  momentum?: number;
  epsilon?: number;
  centered?: boolean;
}

/** Keras's RMSprop: learning rate 1e-3, rho 0.9, momentum 0, epsilon 1e-7, centered false. */
export class RMSprop extends BaseOptimizer {
  readonly name = 'RMSprop';
  readonly rho: number;
  readonly momentum: number;
  readonly epsilon: number;
  readonly centered: boolean;

  constructor(config: RMSpropOptions = {}) {
    super('RMSprop', config, 0.001);
    this.rho = checkNumber('RMSprop', 'rho', config.rho ?? 0.9, 1);
    this.momentum = checkNumber('RMSprop', 'momentum', config.momentum ?? 0);
    this.epsilon = checkNumber('RMSprop', 'epsilon', config.epsilon ?? 1e-7);
    this.centered = checkBoolean('RMSprop', 'centered', config.centered ?? false);
  }

  /** velocity, then momentum (momentum > 0), then average_gradient (centered), per weight. */
  get stateSlots(): number {
    return 1 + (this.momentum > 0 ? 1 : 0) + (this.centered ? 1 : 0);
  }

  override getConfig(): OptimizerConfig {
    return { ...super.getConfig(), rho: this.rho, momentum: this.momentum, epsilon: this.epsilon, centered: this.centered };
  }

  createKernel(gpu: Gpu, halt: GPUBuffer): Promise<OptimizerUpdates> {
    return RmspropKernel.create(gpu, { ...this.kernelBase(), rho: this.rho, momentum: this.momentum, epsilon: this.epsilon, centered: this.centered }, halt);
  }
}

const byName: Record<string, () => Optimizer> = {
  sgd: () => new SGD(),
  adam: () => new Adam(),
  adamw: () => new AdamW(),
  rmsprop: () => new RMSprop(),
};

/** An optimizer with Keras's defaults from its name, as compile({ optimizer: 'adam' }) takes it (case-insensitive). */
/** The names compile() and the tools take, in the order they are offered. */
export const OPTIMIZER_NAMES = ['sgd', 'adam', 'adamw', 'rmsprop'] as const;
export type OptimizerName = (typeof OPTIMIZER_NAMES)[number];

/** Keras's default learning rate of a named optimizer (its constructor's; SGD's 0.01 is the reference program's). */
export function defaultLearningRate(name: OptimizerName): number {
  return optimizerFromName(name).learningRate as number;
}

export function optimizerFromName(name: string): Optimizer {
  const make = typeof name === 'string' ? byName[name.toLowerCase()] : undefined;
  if (!make) throw new Error(`unknown optimizer '${String(name)}': use one of ${Object.keys(byName).map((n) => `'${n}'`).join(', ')}, or pass an optimizer object such as new Adam({ learningRate: 1e-4 })`);
  return make();
}

/** The plan's view: an optimizer's update kernels plus the guard op recorded before them. */
export interface OptimizerKernel {
  updates: OptimizerUpdates['updates'];
  guard(stats: GPUBuffer): import('../gpu/index.ts').GpuOp;
}
