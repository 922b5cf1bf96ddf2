// Keras 3's training callbacks (keras.callbacks): EarlyStopping, ReduceLROnPlateau,
// LearningRateScheduler, ModelCheckpoint, with Keras's rules and messages. Browser-safe: files are
// written only through the model's saveWeights(); CSVLogger lives in src/io/csv-logger-node.ts.

/** What fit() passes at the end of a step or an epoch: loss, acc (or other metrics), val_*, learning_rate. */
export type Logs = Record<string, number>;

export type WeightList = { name: string; shape: number[]; data: Float32Array }[];

/** The model as callbacks see it (fit() hands it to setModel before training begins). */
export interface CallbackModel {
  /** Keras's model.stop_training: fit stops after the current epoch's callbacks. */
  stopTraining: boolean;
  /** learningRate: a settable number; reading gives an object and setting throws when the optimizer was built from a schedule. */
  readonly optimizer: { learningRate: number | object };
  /** Fresh copies (callbacks keep them across epochs). */
  getWeights(): Promise<WeightList>;
  setWeights(weights: WeightList): Promise<void>;
  saveWeights(path: string): Promise<void>;
}

type MaybePromise = void | Promise<void>;

/** Everything fit() may call; every hook is optional, so plain objects work too. */
export interface CallbackHooks {
  setModel?(model: CallbackModel): void;
  onTrainBegin?(logs?: Logs): MaybePromise;
  onTrainEnd?(logs?: Logs): MaybePromise;
  onEpochBegin?(epoch: number, logs?: Logs): MaybePromise;
  onEpochEnd?(epoch: number, logs: Logs): MaybePromise;
  onBatchEnd?(step: number, logs: Logs): MaybePromise;
}

/** Base class: override the hooks you need (Keras's keras.callbacks.Callback). */
export abstract class Callback implements CallbackHooks {
  private current: CallbackModel | null = null;

  setModel(model: CallbackModel): void {
    this.current = model;
  }

  get model(): CallbackModel {
    if (!this.current) throw new Error(`${this.constructor.name}: no model yet; pass the callback to fit({ callbacks: [...] }), which calls setModel() before training begins`);
    return this.current;
  }

  onTrainBegin(_logs?: Logs): MaybePromise {}
  onTrainEnd(_logs?: Logs): MaybePromise {}
  onEpochBegin(_epoch: number, _logs?: Logs): MaybePromise {}
  onEpochEnd(_epoch: number, _logs: Logs): MaybePromise {}
  onBatchEnd(_step: number, _logs: Logs): MaybePromise {}
}

/** Calls a list of callbacks in order, each hook awaited before the next (what fit() needs). */
export class CallbackList {
  constructor(readonly callbacks: CallbackHooks[], model: CallbackModel) {
    for (const cb of callbacks) cb.setModel?.(model);
  }
  async trainBegin(logs?: Logs): Promise<void> {
    for (const cb of this.callbacks) await cb.onTrainBegin?.(logs);
  }
  async trainEnd(logs?: Logs): Promise<void> {
    for (const cb of this.callbacks) await cb.onTrainEnd?.(logs);
  }
  async epochBegin(epoch: number, logs?: Logs): Promise<void> {
    for (const cb of this.callbacks) await cb.onEpochBegin?.(epoch, logs);
  }
  async epochEnd(epoch: number, logs: Logs): Promise<void> {
    for (const cb of this.callbacks) await cb.onEpochEnd?.(epoch, logs);
  }
  async batchEnd(step: number, logs: Logs): Promise<void> {
    for (const cb of this.callbacks) await cb.onBatchEnd?.(step, logs);
  }
}

export type Print = (line: string) => void;
export type Mode = 'auto' | 'min' | 'max';

/** Where messages go. Keras prefixes some with '\n' (to break its progress line); ours do not. */
interface Output {
  /** verbose messages (default console.log) */
  print?: Print;
  /** Keras's warnings.warn (default console.warn); each distinct text is shown once per callback */
  warn?: Print;
}

class Messages {
  private readonly seen = new Set<string>();
  readonly print: Print;
  private readonly warnTo: Print;
  constructor(o: Output) {
    this.print = o.print ?? ((s) => console.log(s));
    this.warnTo = o.warn ?? ((s) => console.warn(s));
  }
  warn(text: string): void {
    if (this.seen.has(text)) return; // Python shows a repeated warning once
    this.seen.add(text);
    this.warnTo(text);
  }
}

// ---- Python's float repr and str.format, for Keras's messages, file names and CSV cells ----

/** The exact decimal expansion of |x| (finite): integer digits and fraction digits. */
function exactDecimal(x: number): { int: string; frac: string } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(x));
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  let mant = bits & ((1n << 52n) - 1n);
  let e = -1074;
  if (biased) {
    mant |= 1n << 52n;
    e = biased - 1075;
  }
  if (e >= 0) return { int: (mant << BigInt(e)).toString(), frac: '' };
  const s = (mant * 5n ** BigInt(-e)).toString().padStart(-e + 1, '0'); // value = s / 10^-e
  return { int: s.slice(0, s.length + e).replace(/^0+(?=\d)/, ''), frac: s.slice(s.length + e) };
}

/** The first `keep` digits of `digits`, rounded half to even on the rest (Python's rounding); may gain a digit. */
function roundDigits(digits: string, keep: number): string {
  if (keep >= digits.length) return digits.padEnd(keep, '0');
  const head = keep > 0 ? digits.slice(0, keep) : '';
  const next = keep >= 0 ? digits.charCodeAt(keep) - 48 : 0;
  const rest = digits.slice(Math.max(0, keep + 1));
  const lastOdd = head.length > 0 && (head.charCodeAt(head.length - 1) - 48) % 2 === 1;
  const up = keep >= 0 && (next > 5 || (next === 5 && (/[1-9]/.test(rest) || lastOdd)));
  if (!up) return head;
  return (BigInt(head || '0') + 1n).toString().padStart(Math.max(keep, 1), '0');
}

function fixedDigits(x: number, prec: number): string {
  const { int, frac } = exactDecimal(x);
  const r = roundDigits(int + frac, int.length + prec).padStart(prec + 1, '0');
  const whole = r.slice(0, r.length - prec).replace(/^0+(?=\d)/, '');
  return prec > 0 ? `${whole}.${r.slice(r.length - prec)}` : whole;
}

/** Mantissa digits (prec + 1 significant) and decimal exponent of |x|. */
function sciParts(x: number, prec: number): { digits: string; exp: number } {
  if (x === 0) return { digits: '0'.repeat(prec + 1), exp: 0 };
  const { int, frac } = exactDecimal(x);
  const all = int + frac;
  const first = all.search(/[1-9]/);
  let exp = int.length - first - 1;
  let digits = roundDigits(all.slice(first), prec + 1);
  if (digits.length > prec + 1) {
    exp++;
    digits = digits.slice(0, prec + 1);
  }
  return { digits, exp };
}

function sciText(digits: string, exp: number, upper = false): string {
  const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  return `${m}${upper ? 'E' : 'e'}${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
}

function stripZeros(s: string): string {
  const [m, e] = s.split(/(?=[eE])/);
  const t = m.includes('.') ? m.replace(/0+$/, '').replace(/\.$/, '') : m;
  return e ? t + e : t;
}

/** Python's repr(float): shortest round-trip digits, fixed for 1e-4 <= |x| < 1e16, e.g. '0.5', '1.0', '1e-05'. */
export function pyRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  if (x === 0) return `${sign}0.0`;
  const [m, e] = Math.abs(x).toExponential().split('e'); // JS and Python pick the same shortest digits
  const digits = m.replace('.', '');
  const exp = Number(e);
  if (exp < -4 || exp >= 16) return sign + sciText(digits, exp);
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const padded = digits.padEnd(exp + 1, '0');
  return `${sign}${padded.slice(0, exp + 1)}.${padded.slice(exp + 1) || '0'}`;
}

/** format(value, spec) for a number, Python's subset: [[fill]align][sign][0][width][.prec][type], type one of d f F e E g G % or none. */
export function pyFormatNumber(value: number, spec: string, isInt = false): string {
  const m = /^(?:(.)?([<>=^]))?([-+ ])?(0)?(\d+)?(?:\.(\d+))?([dfFeEgG%])?$/s.exec(spec);
  if (!m) throw new Error(`Invalid format specifier '${spec}' (supported: [[fill]align][sign][0][width][.precision][type], type one of d f e g % or none, e.g. '02d' or '.4f')`);
  const [, fillGiven, alignGiven, signOpt = '-', zero, widthText, precText, type = ''] = m;
  const prec = precText === undefined ? undefined : Number(precText);
  const neg = value < 0 || Object.is(value, -0);
  const a = Math.abs(value);
  let body: string;
  if (type === 'd') {
    if (!Number.isInteger(value)) throw new Error(`Unknown format code 'd' for object of type 'float' (value ${pyRepr(value)}): use '.Nf' for a metric, e.g. '{val_loss:.2f}'`);
    if (prec !== undefined) throw new Error('Precision not allowed in integer format specifier');
    body = exactDecimal(a).int;
  } else if (!Number.isFinite(a)) {
    body = Number.isNaN(a) ? 'nan' : 'inf';
    if (type === 'F' || type === 'E' || type === 'G') body = body.toUpperCase();
    if (type === '%') body += '%';
  } else if (type === 'f' || type === 'F') {
    body = fixedDigits(a, prec ?? 6);
  } else if (type === '%') {
    body = `${fixedDigits(a * 100, prec ?? 6)}%`;
  } else if (type === 'e' || type === 'E') {
    const p = sciParts(a, prec ?? 6);
    body = sciText(p.digits, p.exp, type === 'E');
  } else if (type === 'g' || type === 'G' || (type === '' && prec !== undefined)) {
    // 'g' rules; no type with a precision is 'g' that keeps one fraction digit and goes scientific at exp >= p - 1
    const p = Math.max(1, prec ?? 6);
    const { exp } = sciParts(a, p - 1);
    const limit = type === '' ? p - 1 : p;
    if (exp >= -4 && exp < limit) {
      body = stripZeros(fixedDigits(a, p - 1 - exp));
      if (type === '' && !body.includes('.')) body += '.0';
    } else {
      const s = sciParts(a, p - 1);
      body = stripZeros(sciText(s.digits, s.exp, type === 'G'));
    }
  } else {
    body = isInt ? exactDecimal(a).int : pyRepr(a);
  }
  const sign = neg && !(Number.isNaN(value)) ? '-' : signOpt === '+' ? '+' : signOpt === ' ' ? ' ' : '';
  const width = widthText === undefined ? 0 : Number(widthText);
  const fill = fillGiven ?? (zero && !alignGiven ? '0' : ' ');
  const align = alignGiven ?? (zero ? '=' : '>');
  const pad = Math.max(0, width - sign.length - body.length);
  if (align === '=') return sign + fill.repeat(pad) + body;
  const text = sign + body;
  if (align === '<') return text + fill.repeat(pad);
  if (align === '^') return fill.repeat(Math.floor(pad / 2)) + text + fill.repeat(pad - Math.floor(pad / 2));
  return fill.repeat(pad) + text;
}

/**
 * Python's str.format(**values) for Keras file names such as 'weights.{epoch:02d}-{val_loss:.2f}.h5':
 * '{name}' or '{name:spec}', '{{' and '}}' for braces. Names in `ints` print as integers.
 * A missing name throws a KeyError-like error naming it.
 */
export function pyFormat(template: string, values: Record<string, number>, ints: ReadonlySet<string> = new Set()): string {
  let out = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c === '}') {
      if (template[i + 1] !== '}') throw new Error(`Single '}' encountered in format string '${template}' (write '}}' for a literal brace)`);
      out += '}';
      i++;
    } else if (c !== '{') {
      out += c;
    } else if (template[i + 1] === '{') {
      out += '{';
      i++;
    } else {
      const end = template.indexOf('}', i);
      if (end < 0) throw new Error(`Single '{' encountered in format string '${template}' (write '{{' for a literal brace)`);
      const field = template.slice(i + 1, end);
      const colon = field.indexOf(':');
      const name = colon < 0 ? field : field.slice(0, colon);
      const spec = colon < 0 ? '' : field.slice(colon + 1);
      if (!name) throw new Error(`format string '${template}' has an empty field '{}'; name the value, e.g. '{epoch:02d}'`);
      if (!Object.hasOwn(values, name)) throw new KeyError(name);
      out += pyFormatNumber(values[name], spec, ints.has(name));
      i = end;
    }
  }
  return out;
}

/** A template named a value that is not there (Python's KeyError); `key` is the name. */
export class KeyError extends Error {
  constructor(readonly key: string) {
    super(`'${key}'`);
    this.name = 'KeyError';
  }
}

// ---- monitoring ----

type Direction = 'less' | 'greater';

// Keras 3 compares the monitored metric in the direction its metric object declares; these are
// the directions of Keras's metrics by their default names (this engine logs loss and accuracy).
const UP = new Set(['acc', 'accuracy', 'binary_accuracy', 'categorical_accuracy', 'sparse_categorical_accuracy', 'top_k_categorical_accuracy', 'sparse_top_k_categorical_accuracy', 'auc', 'precision', 'recall', 'f1_score', 'fbeta_score', 'r2_score', 'iou', 'mean_iou', 'binary_iou', 'one_hot_iou', 'one_hot_mean_iou', 'cosine_similarity', 'pearson_correlation', 'concordance_correlation', 'true_positives', 'true_negatives', 'precision_at_recall', 'recall_at_precision', 'sensitivity_at_specificity', 'specificity_at_sensitivity']);
const DOWN = new Set(['loss', 'mse', 'mae', 'mape', 'msle', 'mean_squared_error', 'mean_absolute_error', 'mean_absolute_percentage_error', 'mean_squared_logarithmic_error', 'root_mean_squared_error', 'log_cosh', 'logcosh', 'binary_crossentropy', 'categorical_crossentropy', 'sparse_categorical_crossentropy', 'binary_focal_crossentropy', 'categorical_focal_crossentropy', 'kl_divergence', 'kld', 'poisson', 'hinge', 'squared_hinge', 'categorical_hinge', 'false_positives', 'false_negatives']);

/**
 * mode 'auto' as EarlyStopping and ModelCheckpoint resolve it in Keras 3: the name without a
 * 'val_' prefix; 'loss' is minimized, a metric by its declared direction; any other name is an error.
 */
export function monitorDirection(monitor: string, mode: Mode): Direction | null {
  if (mode === 'min') return 'less';
  if (mode === 'max') return 'greater';
  const name = monitor.startsWith('val_') ? monitor.slice(4) : monitor;
  return UP.has(name) ? 'greater' : DOWN.has(name) ? 'less' : null;
}

function checkMode(mode: string, warning: string, messages: Messages): Mode {
  if (mode === 'auto' || mode === 'min' || mode === 'max') return mode;
  messages.warn(warning);
  return 'auto';
}

function logValue(logs: Logs | undefined, key: string): number | undefined {
  const v = logs?.[key];
  return v === undefined || v === null ? undefined : v;
}

function availableKeys(logs: Logs | undefined): string {
  return Object.keys(logs ?? {}).join(',');
}

// Keras keeps the rate in a float32 variable: what it reads back (logs, messages) is that float32's value.
function readRate(model: CallbackModel): number | null {
  const lr = model.optimizer.learningRate;
  return typeof lr === 'number' ? Math.fround(lr) : null;
}

function setRate(model: CallbackModel, lr: number, who: string): void {
  if (typeof model.optimizer.learningRate !== 'number') {
    throw new Error(`${who}: the optimizer's learning rate is a schedule, so ${who} cannot change it; build the optimizer with a number learningRate (e.g. new SGD({ learningRate: 0.01 })) to use ${who}, or leave the rate to the schedule`);
  }
  (model.optimizer as { learningRate: number }).learningRate = lr;
}

// ---- EarlyStopping ----

export interface EarlyStoppingConfig extends Output {
  monitor?: string;
  minDelta?: number;
  patience?: number;
  verbose?: number;
  mode?: Mode;
  /** Training stops unless the monitored value beats this (the wait resets only when it does). */
  baseline?: number;
  /** At train end (also without an early stop), put back the weights of the best epoch. */
  restoreBestWeights?: boolean;
  /** Epochs (0-based) before this one are not monitored. */
  startFromEpoch?: number;
}

/** keras.callbacks.EarlyStopping (Keras 3 rules). */
export class EarlyStopping extends Callback {
  readonly monitor: string;
  readonly patience: number;
  readonly verbose: number;
  readonly baseline: number | undefined;
  readonly restoreBestWeights: boolean;
  readonly startFromEpoch: number;
  readonly mode: Mode;
  /** Signed as Keras keeps it: negative when minimizing. */
  readonly minDelta: number;
  private readonly op: Direction;
  private readonly messages: Messages;
  wait = 0;
  /** The epoch (0-based) at which training was stopped, 0 when it was not. */
  stoppedEpoch = 0;
  /** The best epoch (0-based) so far. */
  bestEpoch = 0;
  best: number | null = null;
  private bestWeights: WeightList | null = null;
  private resumed = false;

  /** The monitoring state, as JSON, for a run continued by a later fit() (a resumed command-line run). */
  getState(): EarlyStoppingState {
    return { wait: this.wait, stoppedEpoch: this.stoppedEpoch, bestEpoch: this.bestEpoch, best: this.best };
  }

  /**
   * Restores getState()'s result (with the best epoch's weights when restoreBestWeights): the
   * next onTrainBegin keeps it instead of starting over, so the run goes on as if never stopped.
   */
  setState(state: EarlyStoppingState, bestWeights: WeightList | null = null): void {
    this.wait = state.wait;
    this.stoppedEpoch = state.stoppedEpoch;
    this.bestEpoch = state.bestEpoch;
    this.best = state.best;
    this.bestWeights = bestWeights;
    this.resumed = true;
  }

  constructor(config: EarlyStoppingConfig = {}) {
    super();
    this.messages = new Messages(config);
    this.monitor = config.monitor ?? 'val_loss';
    this.patience = config.patience ?? 0;
    this.verbose = config.verbose ?? 0;
    this.baseline = config.baseline ?? undefined;
    this.restoreBestWeights = config.restoreBestWeights ?? false;
    this.startFromEpoch = config.startFromEpoch ?? 0;
    const mode = config.mode ?? 'auto';
    this.mode = checkMode(mode, `EarlyStopping mode ${mode} is unknown, fallback to auto mode.`, this.messages);
    const op = monitorDirection(this.monitor, this.mode);
    if (!op) {
      throw new Error(`EarlyStopping callback received monitor=${this.monitor} but Keras isn't able to automatically determine whether that metric should be maximized or minimized. Pass \`mode='max'\` in order to do early stopping based on the highest metric value, or pass \`mode='min'\` in order to use the lowest value.`);
    }
    this.op = op;
    const delta = Math.abs(config.minDelta ?? 0);
    this.minDelta = op === 'less' ? -delta : delta;
  }

  private isImprovement(value: number, reference: number | null): boolean {
    if (reference === null) return true;
    const v = value - this.minDelta;
    return this.op === 'less' ? v < reference : v > reference;
  }

  override onTrainBegin(): void {
    if (this.resumed) {
      this.resumed = false;
      return;
    }
    // instances may be reused across fit() calls
    this.wait = 0;
    this.stoppedEpoch = 0;
    this.best = null;
    this.bestWeights = null;
    this.bestEpoch = 0;
  }

  override async onEpochEnd(epoch: number, logs: Logs): Promise<void> {
    const current = logValue(logs, this.monitor);
    if (current === undefined) {
      this.messages.warn(`Early stopping conditioned on metric \`${this.monitor}\` which is not available. Available metrics are: ${availableKeys(logs)}`);
      return;
    }
    if (epoch < this.startFromEpoch) return;
    if (this.restoreBestWeights && this.bestWeights === null) {
      // the first monitored epoch's weights are the best until one improves on them
      this.bestWeights = await this.model.getWeights();
      this.bestEpoch = epoch;
    }
    this.wait++;
    if (this.isImprovement(current, this.best)) {
      this.best = current;
      this.bestEpoch = epoch;
      if (this.restoreBestWeights) this.bestWeights = await this.model.getWeights();
      // the wait restarts only when the value beats the baseline as well as the best so far
      if (this.baseline === undefined || this.isImprovement(current, this.baseline)) this.wait = 0;
      return;
    }
    if (this.wait >= this.patience && epoch > 0) {
      this.stoppedEpoch = epoch;
      this.model.stopTraining = true;
    }
  }

  override async onTrainEnd(): Promise<void> {
    if (this.stoppedEpoch > 0 && this.verbose > 0) this.messages.print(`Epoch ${this.stoppedEpoch + 1}: early stopping`);
    if (this.restoreBestWeights && this.bestWeights !== null) {
      if (this.verbose > 0) this.messages.print(`Restoring model weights from the end of the best epoch: ${this.bestEpoch + 1}.`);
      await this.model.setWeights(this.bestWeights);
    }
  }
}

export interface EarlyStoppingState {
  wait: number;
  stoppedEpoch: number;
  bestEpoch: number;
  best: number | null;
}

// ---- ReduceLROnPlateau ----

export interface ReduceLROnPlateauState {
  wait: number;
  cooldownCounter: number;
  /** null before the first monitored epoch (JSON has no infinities) */
  best: number | null;
}

export interface ReduceLROnPlateauConfig extends Output {
  monitor?: string;
  factor?: number;
  patience?: number;
  verbose?: number;
  mode?: Mode;
  minDelta?: number;
  cooldown?: number;
  minLr?: number;
}

/** keras.callbacks.ReduceLROnPlateau (Keras 3 rules); also logs `learning_rate` each epoch. */
export class ReduceLROnPlateau extends Callback {
  readonly monitor: string;
  readonly factor: number;
  readonly patience: number;
  readonly verbose: number;
  mode: Mode;
  readonly minDelta: number;
  readonly cooldown: number;
  readonly minLr: number;
  private readonly messages: Messages;
  wait = 0;
  cooldownCounter = 0;
  best = Infinity;
  private maximize = false;
  private resumed = false;

  /** The plateau state, as JSON, for a run continued by a later fit(). */
  getState(): ReduceLROnPlateauState {
    return { wait: this.wait, cooldownCounter: this.cooldownCounter, best: Number.isFinite(this.best) ? this.best : null };
  }

  /** Restores getState()'s result; the next onTrainBegin keeps it. */
  setState(state: ReduceLROnPlateauState): void {
    this.reset();
    this.wait = state.wait;
    this.cooldownCounter = state.cooldownCounter;
    if (state.best !== null) this.best = state.best;
    this.resumed = true;
  }

  constructor(config: ReduceLROnPlateauConfig = {}) {
    super();
    this.messages = new Messages(config);
    this.monitor = config.monitor ?? 'val_loss';
    this.factor = config.factor ?? 0.1;
    if (!(this.factor < 1)) throw new Error(`ReduceLROnPlateau does not support a factor >= 1.0. Received factor=${pyRepr(this.factor)}`);
    this.patience = config.patience ?? 10;
    this.verbose = config.verbose ?? 0;
    this.mode = config.mode ?? 'auto';
    this.minDelta = config.minDelta ?? 1e-4; // not made positive: Keras uses it as given
    this.cooldown = config.cooldown ?? 0;
    this.minLr = config.minLr ?? 0;
    this.reset();
  }

  private reset(): void {
    this.mode = checkMode(this.mode, `Learning rate reduction mode ${this.mode} is unknown, fallback to auto mode.`, this.messages);
    // unlike EarlyStopping, Keras 3 decides 'auto' here by whether the name contains 'acc'
    this.maximize = this.mode === 'max' || (this.mode === 'auto' && this.monitor.includes('acc'));
    this.best = this.maximize ? -Infinity : Infinity;
    this.cooldownCounter = 0;
    this.wait = 0;
  }

  private improved(current: number): boolean {
    return this.maximize ? current > this.best + this.minDelta : current < this.best - this.minDelta;
  }

  inCooldown(): boolean {
    return this.cooldownCounter > 0;
  }

  override onTrainBegin(): void {
    if (this.resumed) this.resumed = false;
    else this.reset();
  }

  override onEpochEnd(epoch: number, logs: Logs): void {
    const rate = readRate(this.model);
    if (rate !== null) logs.learning_rate = rate;
    const current = logValue(logs, this.monitor);
    if (current === undefined) {
      this.messages.warn(`Learning rate reduction is conditioned on metric \`${this.monitor}\` which is not available. Available metrics are: ${availableKeys(logs)}.`);
      return;
    }
    if (this.inCooldown()) {
      this.cooldownCounter--;
      this.wait = 0;
    }
    if (this.improved(current)) {
      this.best = current;
      this.wait = 0;
    } else if (!this.inCooldown()) {
      this.wait++;
      if (this.wait >= this.patience) {
        const old = readRate(this.model);
        if (old === null) setRate(this.model, NaN, 'ReduceLROnPlateau'); // throws the schedule error
        if (old! > Math.fround(this.minLr)) {
          const lr = Math.max(old! * this.factor, this.minLr);
          setRate(this.model, lr, 'ReduceLROnPlateau');
          if (this.verbose > 0) this.messages.print(`Epoch ${epoch + 1}: ReduceLROnPlateau reducing learning rate to ${pyRepr(lr)}.`);
          this.cooldownCounter = this.cooldown;
          this.wait = 0;
        }
      }
    }
  }
}

// ---- LearningRateScheduler ----

/** keras.callbacks.LearningRateScheduler: sets the rate at each epoch's start; logs `learning_rate`. */
export class LearningRateScheduler extends Callback {
  private readonly messages: Messages;
  readonly verbose: number;

  /** `schedule(epoch, lr)`: the epoch index (from 0) and the current rate; returns the new rate. */
  constructor(readonly schedule: (epoch: number, lr: number) => number, config: { verbose?: number } & Output = {}) {
    super();
    if (typeof schedule !== 'function') throw new Error(`LearningRateScheduler: schedule must be a function (epoch, lr) => number, got ${String(schedule)}`);
    this.messages = new Messages(config);
    this.verbose = config.verbose ?? 0;
  }

  override onEpochBegin(epoch: number): void {
    const current = readRate(this.model);
    if (current === null) setRate(this.model, NaN, 'LearningRateScheduler'); // throws the schedule error
    const lr = this.schedule(epoch, current!);
    if (typeof lr !== 'number' || Number.isNaN(lr)) throw new Error(`The output of the \`schedule\` function should be a float. Got: ${String(lr)}`);
    setRate(this.model, lr, 'LearningRateScheduler');
    if (this.verbose > 0) this.messages.print(`Epoch ${epoch + 1}: LearningRateScheduler setting learning rate to ${pyRepr(lr)}.`);
  }

  override onEpochEnd(_epoch: number, logs: Logs): void {
    const rate = readRate(this.model);
    if (rate !== null) logs.learning_rate = rate;
  }
}

// ---- ModelCheckpoint ----

export interface CheckpointInfo {
  /** 0-based epoch index, as in onEpochEnd (file names use epoch + 1, as Keras does). */
  epoch: number;
  /** 0-based step within the epoch when saving every saveFreq steps; absent for per-epoch saves. */
  batch?: number;
  logs: Logs;
}

export type CheckpointTarget = string | ((weights: WeightList, info: CheckpointInfo) => void | Promise<void>);

export interface ModelCheckpointConfig extends Output {
  /**
   * A path for model.saveWeights (a .h5 file, a manifest .json or a folder), with Python
   * format fields filled from epoch (1-based), batch and the logs: 'ckpt/w.{epoch:02d}-{val_loss:.2f}.h5'.
   * Or a function that receives the weights (for a browser: store them where you like).
   */
  filepath: CheckpointTarget;
  monitor?: string;
  verbose?: number;
  saveBestOnly?: boolean;
  /** Must stay true: this engine saves weights only (Keras's default is false: the whole model). */
  saveWeightsOnly?: boolean;
  mode?: Mode;
  /** 'epoch' or a number of steps. */
  saveFreq?: 'epoch' | number;
  /** Keras's initial_value_threshold: the best value to beat before the first save (saveBestOnly). */
  initialValueThreshold?: number;
}

/** keras.callbacks.ModelCheckpoint (Keras 3 rules), weights only. */
export class ModelCheckpoint extends Callback {
  readonly filepath: CheckpointTarget;
  readonly monitor: string;
  readonly verbose: number;
  readonly saveBestOnly: boolean;
  readonly mode: Mode;
  readonly saveFreq: 'epoch' | number;
  best: number;
  private readonly op: Direction;
  private readonly messages: Messages;
  private currentEpoch = 0;
  private batchesSinceSave = 0;
  private lastBatch = 0;

  constructor(config: ModelCheckpointConfig) {
    super();
    if (!config || (typeof config.filepath !== 'string' && typeof config.filepath !== 'function')) {
      throw new Error(`ModelCheckpoint: filepath must be a path string such as 'checkpoints/weights.{epoch:02d}.h5' or a function (weights, info) => void, got ${String(config?.filepath)}`);
    }
    if (config.saveWeightsOnly === false) {
      throw new Error(`ModelCheckpoint: saveWeightsOnly: false asks for the whole model (Keras's model.save to .keras), which this engine does not write; it saves weights only. Drop saveWeightsOnly (it defaults to true), rebuild the model in code and call model.loadWeights(path) to restore.`);
    }
    this.messages = new Messages(config);
    this.filepath = config.filepath;
    this.monitor = config.monitor ?? 'val_loss';
    this.verbose = config.verbose ?? 0;
    this.saveBestOnly = config.saveBestOnly ?? false;
    this.saveFreq = config.saveFreq ?? 'epoch';
    if (this.saveFreq !== 'epoch' && !(Number.isInteger(this.saveFreq) && this.saveFreq > 0)) {
      throw new Error(`ModelCheckpoint: unrecognized saveFreq ${String(this.saveFreq)}; use 'epoch' or a whole number of steps > 0`);
    }
    const mode = config.mode ?? 'auto';
    this.mode = checkMode(mode, `ModelCheckpoint mode '${mode}' is unknown, fallback to auto mode.`, this.messages);
    const op = monitorDirection(this.monitor, this.mode);
    if (!op) {
      throw new Error(`ModelCheckpoint callback received monitor=${this.monitor}, but Keras isn't able to automatically determine whether that metric should be maximized or minimized. Pass \`mode='max'\` in order to monitor based on the highest metric value, or pass \`mode='min'\` in order to use the lowest value.`);
    }
    this.op = op;
    this.best = config.initialValueThreshold ?? (op === 'less' ? Infinity : -Infinity);
  }

  override onEpochBegin(epoch: number): void {
    this.currentEpoch = epoch;
  }

  override async onBatchEnd(step: number, logs: Logs): Promise<void> {
    if (this.saveFreq === 'epoch') return;
    this.batchesSinceSave += step <= this.lastBatch ? step + 1 : step - this.lastBatch; // a smaller step: a new epoch
    this.lastBatch = step;
    if (this.batchesSinceSave < this.saveFreq) return;
    this.batchesSinceSave = 0;
    await this.save(this.currentEpoch, step, logs);
  }

  override async onEpochEnd(epoch: number, logs: Logs): Promise<void> {
    if (this.saveFreq === 'epoch') await this.save(epoch, undefined, logs);
  }

  /** The file name for an epoch (0-based) and its logs, as Keras formats it. */
  formatPath(epoch: number, logs: Logs, batch?: number): string {
    if (typeof this.filepath !== 'string') return this.filepath.name ? `the filepath function ${this.filepath.name}` : 'the filepath function';
    const values: Record<string, number> = { ...logs, epoch: epoch + 1 };
    if (batch !== undefined && !('batch' in logs)) values.batch = batch + 1;
    try {
      return pyFormat(this.filepath, values, new Set(['epoch', 'batch']));
    } catch (e) {
      if (e instanceof KeyError) throw new Error(`Failed to format this callback filepath: "${this.filepath}". Reason: ${e.message} (available: epoch, ${batch !== undefined ? 'batch, ' : ''}${Object.keys(logs).join(', ')})`);
      throw e;
    }
  }

  private shouldSave(epoch: number, logs: Logs, path: string): boolean {
    if (!this.saveBestOnly) {
      if (this.verbose > 0) this.messages.print(`Epoch ${epoch + 1}: saving model to ${path}`);
      return true;
    }
    const current = logValue(logs, this.monitor);
    if (current === undefined) {
      this.messages.warn(`Can save best model only with ${this.monitor} available.`);
      return true;
    }
    const bestText = pyFormatNumber(this.best, '.5f');
    if (this.op === 'less' ? current < this.best : current > this.best) {
      if (this.verbose > 0) this.messages.print(`Epoch ${epoch + 1}: ${this.monitor} improved from ${bestText} to ${pyFormatNumber(current, '.5f')}, saving model to ${path}`);
      this.best = current;
      return true;
    }
    if (this.verbose > 0) this.messages.print(`Epoch ${epoch + 1}: ${this.monitor} did not improve from ${bestText}`);
    return false;
  }

  private async save(epoch: number, batch: number | undefined, logs: Logs): Promise<void> {
    const path = this.formatPath(epoch, logs, batch); // before deciding, so a bad template fails at once
    if (!this.shouldSave(epoch, logs, path)) return;
    if (typeof this.filepath === 'string') await this.model.saveWeights(path);
    else await this.filepath(await this.model.getWeights(), batch === undefined ? { epoch, logs: { ...logs } } : { epoch, batch, logs: { ...logs } });
  }
}
