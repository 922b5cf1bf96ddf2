/**
 * Keras 3's learning-rate schedules (keras.optimizers.schedules), evaluated on the host in
 * float64. `step` is the optimizer's iteration count before the update (0 for the first step),
 * as Keras passes `optimizer.iterations` to the schedule.
 */
export interface LearningRateSchedule {
  /** The learning rate for the update made at `step`. */
  at(step: number): number;
  getConfig(): object;
  readonly name: string;
}

function finite(who: string, key: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${who}: ${key} must be a finite number, got ${String(v)}`);
  return v;
}

function positive(who: string, key: string, v: unknown): number {
  const n = finite(who, key, v);
  // Keras's own message for decay_steps, in camelCase
  if (n <= 0) throw new Error(`${who}: argument \`${key}\` must be > 0. Received: ${key}=${n}`);
  return n;
}

function checkStep(who: string, step: number): void {
  if (!Number.isFinite(step) || step < 0) throw new Error(`${who}: step must be a finite number >= 0 (the optimizer iteration), got ${step}`);
}

export interface ExponentialDecayOptions {
  initialLearningRate: number;
  decaySteps: number;
  decayRate: number;
  staircase?: boolean;
  name?: string;
}

/** lr0 * decayRate^(step / decaySteps); with staircase the exponent is floored. */
export class ExponentialDecay implements LearningRateSchedule {
  readonly initialLearningRate: number;
  readonly decaySteps: number;
  readonly decayRate: number;
  readonly staircase: boolean;
  readonly name: string;

  constructor(o: ExponentialDecayOptions) {
    const who = 'ExponentialDecay';
    if (!o || typeof o !== 'object') throw new Error(`${who}: pass an options object { initialLearningRate, decaySteps, decayRate, staircase? }`);
    this.initialLearningRate = finite(who, 'initialLearningRate', o.initialLearningRate);
    this.decaySteps = positive(who, 'decaySteps', o.decaySteps);
    this.decayRate = finite(who, 'decayRate', o.decayRate);
    if (this.decayRate < 0) throw new Error(`${who}: decayRate must be >= 0 (a negative base has no real power), got ${this.decayRate}`);
    this.staircase = o.staircase ?? false;
    if (typeof this.staircase !== 'boolean') throw new Error(`${who}: staircase must be true or false, got ${String(o.staircase)}`);
    this.name = o.name ?? 'ExponentialDecay';
  }

  at(step: number): number {
    checkStep(this.name, step);
    let p = step / this.decaySteps;
    if (this.staircase) p = Math.floor(p);
    return this.initialLearningRate * Math.pow(this.decayRate, p);
  }

  getConfig(): Required<ExponentialDecayOptions> {
    return { initialLearningRate: this.initialLearningRate, decaySteps: this.decaySteps, decayRate: this.decayRate, staircase: this.staircase, name: this.name };
  }
}

export interface CosineDecayOptions {
  initialLearningRate: number;
  decaySteps: number;
  /** Floor of the decay as a fraction of the rate it decays from (default 0). */
  alpha?: number;
  /** Warm up linearly from initialLearningRate to this over warmupSteps, then decay from it. */
  warmupTarget?: number | null;
  warmupSteps?: number;
  name?: string;
}

/**
 * Cosine decay with optional linear warmup, as Keras 3: without warmupTarget,
 * lr0 * ((1 - alpha) * 0.5 * (1 + cos(pi * min(step, decaySteps) / decaySteps)) + alpha);
 * with it, a line from lr0 to warmupTarget over warmupSteps, then the cosine from warmupTarget.
 */
export class CosineDecay implements LearningRateSchedule {
  readonly initialLearningRate: number;
  readonly decaySteps: number;
  readonly alpha: number;
  readonly warmupTarget: number | null;
  readonly warmupSteps: number;
  readonly name: string;

  constructor(o: CosineDecayOptions) {
    const who = 'CosineDecay';
    if (!o || typeof o !== 'object') throw new Error(`${who}: pass an options object { initialLearningRate, decaySteps, alpha?, warmupTarget?, warmupSteps? }`);
    this.initialLearningRate = finite(who, 'initialLearningRate', o.initialLearningRate);
    this.decaySteps = positive(who, 'decaySteps', o.decaySteps);
    this.alpha = finite(who, 'alpha', o.alpha ?? 0);
    this.warmupTarget = o.warmupTarget === undefined || o.warmupTarget === null ? null : finite(who, 'warmupTarget', o.warmupTarget);
    this.warmupSteps = finite(who, 'warmupSteps', o.warmupSteps ?? 0);
    if (this.warmupSteps < 0) throw new Error(`${who}: warmupSteps must be >= 0, got ${this.warmupSteps}`);
    // warmupSteps without a warmupTarget is ignored, as in Keras (no warmup)
    this.name = o.name ?? 'CosineDecay';
  }

  private decay(step: number, from: number): number {
    const cosine = 0.5 * (1 + Math.cos(Math.PI * (step / this.decaySteps)));
    return from * ((1 - this.alpha) * cosine + this.alpha);
  }

  at(step: number): number {
    checkStep(this.name, step);
    if (this.warmupTarget === null) return this.decay(Math.min(step, this.decaySteps), this.initialLearningRate);
    const s = Math.min(step, this.decaySteps + this.warmupSteps);
    if (s < this.warmupSteps) return (this.warmupTarget - this.initialLearningRate) * (s / this.warmupSteps) + this.initialLearningRate;
    return this.decay(s - this.warmupSteps, this.warmupTarget);
  }

  getConfig(): Required<CosineDecayOptions> {
    return { initialLearningRate: this.initialLearningRate, decaySteps: this.decaySteps, alpha: this.alpha, name: this.name, warmupTarget: this.warmupTarget, warmupSteps: this.warmupSteps };
  }
}

export interface PiecewiseConstantDecayOptions {
  /** Strictly increasing steps; values[i] holds up to and including boundaries[i]. */
  boundaries: number[];
  /** One more than boundaries. */
  values: number[];
  name?: string;
}

/** values[0] while step <= boundaries[0], values[i] while boundaries[i-1] < step <= boundaries[i], values[last] after. */
export class PiecewiseConstantDecay implements LearningRateSchedule {
  readonly boundaries: number[];
  readonly values: number[];
  readonly name: string;

  constructor(o: PiecewiseConstantDecayOptions) {
    const who = 'PiecewiseConstantDecay';
    if (!o || typeof o !== 'object' || !Array.isArray(o.boundaries) || !Array.isArray(o.values)) {
      throw new Error(`${who}: pass { boundaries: number[], values: number[] } with one more value than boundaries`);
    }
    if (o.boundaries.length !== o.values.length - 1) {
      throw new Error(`${who}: the length of boundaries should be 1 less than the length of values. Received: boundaries=[${o.boundaries.join(', ')}] of length ${o.boundaries.length}, and values=[${o.values.join(', ')}] of length ${o.values.length}`);
    }
    if (o.boundaries.length === 0) throw new Error(`${who}: needs at least one boundary; for a constant learning rate pass a number as learningRate`);
    o.boundaries.forEach((b, i) => {
      finite(who, `boundaries[${i}]`, b);
      if (i > 0 && !(b > o.boundaries[i - 1])) throw new Error(`${who}: boundaries must be strictly increasing, but boundaries[${i}]=${b} follows ${o.boundaries[i - 1]}`);
    });
    o.values.forEach((v, i) => finite(who, `values[${i}]`, v));
    this.boundaries = [...o.boundaries];
    this.values = [...o.values];
    this.name = o.name ?? 'PiecewiseConstant';
  }

  at(step: number): number {
    checkStep(this.name, step);
    const b = this.boundaries;
    for (let i = 0; i < b.length; i++) if (step <= b[i]) return this.values[i];
    return this.values[b.length];
  }

  getConfig(): Required<PiecewiseConstantDecayOptions> {
    return { boundaries: [...this.boundaries], values: [...this.values], name: this.name };
  }
}

/** True for anything usable as a schedule (ours or a user's object with at()). */
export function isSchedule(x: unknown): x is LearningRateSchedule {
  return typeof x === 'object' && x !== null && typeof (x as LearningRateSchedule).at === 'function';
}
