import { MAP_READ, COPY_DST, type Gpu } from '../gpu/index.ts';
import { GuardKernel } from '../kernels/guard.ts';
import type { OptimizerUpdates } from '../kernels/optimizer.ts';
import { currentGpu, getGpu } from './backend.ts';
import { kerasLayerOrder } from './graph.ts';
import { sizeOf, type Layer, type Param } from './layer.ts';
import type { CallbackHooks } from './callbacks.ts';
import { BatchNormalization } from './layers/batchnorm.ts';
import { normalizeClassWeight, sampleWeights } from './class-weights.ts';
import { resolveMetrics, type MetricSpec } from './metrics.ts';
import { optimizerFromName, type Optimizer } from './optimizers.ts';
import { FeatureCache } from './feature-cache.ts';
import { labelSize, layoutPlan, planNodes, Plan, type LossName, type MetricCounts, type PlanMemory, type PlanSpec } from './plan.ts';
import { defaultSink, Progbar, type Sink } from './progbar.ts';
import { summaryLines } from './summary.ts';
import type { SymbolicTensor } from './symbolic.ts';

export interface Batch {
  x: Float32Array;
  y: Float32Array;
  /** Sample numbers within the source (needed for feature caching). */
  indices?: ArrayLike<number>;
}

export interface IndexBatch {
  indices: ArrayLike<number>;
  y: Float32Array;
}

/**
 * Anything that yields batches: an array, a generator, an async iterator, a directory flow.
 * A source whose images are the same every epoch (no random augmentation) may say so with
 * `featureCacheKey` and `samples`, and give `indices` with its batches: fit() then computes the
 * forward-only (frozen) part once per image and replays it. `indexBatches()` yields an epoch without pixels.
 */
export type BatchSource = (Iterable<Batch> | AsyncIterable<Batch>) & {
  length?: number;
  featureCacheKey?: string | null;
  samples?: number;
  indexBatches?(): AsyncIterable<IndexBatch> | Iterable<IndexBatch>;
};

export interface CompileConfig {
  /** 'sgd', 'adam', 'adamw', 'rmsprop' (Keras's defaults) or an instance such as new Adam({ learningRate: 1e-4 }) */
  optimizer: string | Optimizer;
  loss: LossName;
  metrics?: string[];
}

/** An epoch's logs, by Keras's keys: loss, acc and the other metrics, their val_ twins, learning_rate when a callback sets it. */
export type Logs = Record<string, number> & { loss: number; acc: number };

/** getOptimizerState's result: the update counter, the optimizer's name and current learning rate (a number, when not a schedule), every state buffer. */
export interface OptimizerState {
  iteration: number;
  /** absent in states saved before it was recorded */
  optimizer?: string;
  learningRate?: number;
  velocities: { name: string; data: Float32Array }[];
}

/** One weight tensor of the model, as getWeights gives and setWeights takes (Keras's get_weights order). */
export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface EvaluateConfig {
  steps?: number;
  verbose?: 0 | 1;
  featureCache?: boolean;
  featureCacheBudget?: number;
}

export interface FitConfig {
  /**
   * Keras's class_weight: {class index: weight}, classes not named weigh 1 (binary heads:
   * classes 0 and 1). Each training example's loss and metrics are weighted by its class; the
   * batch loss is the weighted sum over the batch size. Validation stays unweighted.
   */
  classWeight?: Record<number, number>;
  epochs?: number;
  initialEpoch?: number;
  validationData?: BatchSource;
  stepsPerEpoch?: number;
  validationSteps?: number;
  /**
   * Called in Keras's order: setModel, onTrainBegin, per epoch onEpochBegin, onBatchEnd per step
   * and onEpochEnd (user callbacks before History and the progress line, so a `learning_rate`
   * they add is recorded and printed), then onTrainEnd. EarlyStopping, ModelCheckpoint, ... or plain objects.
   */
  callbacks?: CallbackHooks[];
  verbose?: 0 | 1 | 2;
  /** Where progress text goes (defaults to stdout in Node, console in browsers). */
  sink?: Sink;
  /**
   * Aborting it stops fit between steps without finishing the epoch (no validation, no
   * onEpochEnd): the steps already submitted complete, their onBatchEnd callbacks run, then fit
   * rejects with the signal's reason. For Ctrl-C / a Stop button that checkpoints mid-epoch.
   */
  signal?: AbortSignal;
  /** Cache what the frozen part hands to the trainable layers, for unaugmented sources (default true). */
  featureCache?: boolean;
  /** Largest feature cache kept in device memory, bytes (default 512 MiB); larger ones stay in host memory. */
  featureCacheBudget?: number;
}

export interface History {
  epoch: number[];
  /** Per key of the epoch logs, one value per epoch (val_ keys only with validation data). */
  history: Record<string, number[]> & { loss: number[]; acc: number[] };
}

/** Raised when a step's loss is not finite (Keras's TerminateOnNaN); weights are the last good step's. */
export class NonFiniteLossError extends Error {
  constructor(readonly epoch: number | null, readonly step: number, readonly loss: number) {
    super(`loss became ${loss} at ${epoch === null ? '' : `epoch ${epoch + 1}, `}step ${step + 1}: training stopped; the weights are those after the last step with a finite loss. Lower the learning rate or check the data for bad values.`);
    this.name = 'NonFiniteLossError';
  }
}

const DEFAULT_BINDING = 128 * 1024 * 1024;

const inferenceModeOf = (l: Layer) => l instanceof BatchNormalization && l.inferenceMode;

interface Compiled {
  optimizer: Optimizer;
  loss: LossName;
  /** The trainable flags at compile time (Keras reads them there). */
  trainable: boolean[];
  /** BatchNormalization inferenceMode flags at compile time (plans build the mode in). */
  inferenceMode: boolean[];
  metrics: MetricSpec[];
}

/** Staging buffers for reading a step's [loss, acc] (and metric accumulators) without stalling the next submit. */
class StatsRing {
  private readonly slots: { buffer: GPUBuffer; busy: Promise<unknown> }[] = [];
  private next = 0;
  /** `floats`: the most a submit reads back. */
  constructor(private readonly gpu: Gpu, readonly floats: number, size = 4) {
    for (let i = 0; i < size; i++) this.slots.push({ buffer: gpu.createBuffer(`stats readback ${i}`, Math.max(16, floats * 4), MAP_READ | COPY_DST), busy: Promise.resolve() });
  }

  /**
   * Submits `ops` plus copies of `reads` (one after another) into a free slot. Resolves once
   * submitted, to a handle whose `values` resolve when the copy is read (a wrapper, since
   * promises cannot nest).
   */
  async submit(label: string, ops: Parameters<Gpu['submit']>[1], reads: { buffer: GPUBuffer; floats: number }[]): Promise<{ values: Promise<Float32Array> }> {
    const floats = reads.reduce((a, r) => a + r.floats, 0);
    if (floats > this.floats) throw new Error(`internal: reading ${floats} floats through a ring of ${this.floats}`);
    const slot = this.slots[this.next];
    this.next = (this.next + 1) % this.slots.length;
    await slot.busy; // only waits when more steps are in flight than there are slots
    const list = Array.isArray(ops) ? ops : [ops];
    let at = 0;
    const copies = reads.map((r) => {
      const c = this.gpu.copy(`${label} readback`, r.buffer, 0, slot.buffer, at * 4, r.floats * 4);
      at += r.floats;
      return c;
    });
    this.gpu.submit(label, [...list, ...copies]);
    const result = (async () => {
      await this.gpu.checkErrors();
      await slot.buffer.mapAsync(1);
      const out = new Float32Array(slot.buffer.getMappedRange().slice(0, floats * 4));
      slot.buffer.unmap();
      await this.gpu.checkErrors();
      return out;
    })();
    slot.busy = result.catch(() => undefined);
    return { values: result };
  }

  destroy(): void {
    for (const s of this.slots) this.gpu.destroyBuffer(s.buffer);
  }
}

function iterate(source: BatchSource): AsyncIterator<Batch> | Iterator<Batch> {
  const s = source as Partial<AsyncIterable<Batch> & Iterable<Batch>>;
  if (s[Symbol.asyncIterator]) return s[Symbol.asyncIterator]!();
  if (s[Symbol.iterator]) return s[Symbol.iterator]!();
  throw new Error('data must be an iterable or async iterable of { x, y } batches (e.g. an array, a generator, or flowFromDirectory())');
}

/** A Keras functional model: a DAG of layers from one Input to one output. */
export class Model {
  readonly name: string;
  readonly inputs: SymbolicTensor;
  readonly outputs: SymbolicTensor;
  readonly layers: Layer[];
  private compiled: Compiled | null = null;
  private gpu: Gpu | null = null;
  private plans = new Map<string, Promise<Plan>>();
  private updates: OptimizerUpdates | null = null;
  private guard: GuardKernel | null = null;
  private grads = new Map<Param, GPUBuffer>();
  private ring: StatsRing | null = null;
  private iteration = 0;
  /** Accumulators of the compiled stateful metrics (created with the first plan). */
  private metricCounts: MetricCounts | null = null;
  /** Seed for dropout masks (with the step counter); set before compile for reproducible runs. */
  seed = 42;
  /**
   * Keras's model.stop_training: set it (from a callback, a UI button, a signal handler) and fit
   * stops after the step in progress, finishing that epoch's validation and callbacks first.
   */
  stopTraining = false;

  constructor(config: { inputs: SymbolicTensor; outputs: SymbolicTensor; name?: string }) {
    this.name = config.name ?? 'model';
    this.inputs = config.inputs;
    this.outputs = config.outputs;
    const chain = kerasLayerOrder(config.inputs, config.outputs);
    const names = new Set<string>();
    for (const l of chain) {
      if (names.has(l.name)) throw new Error(`Model: two layers are named '${l.name}'; layer names must be unique`);
      names.add(l.name);
    }
    this.layers = chain;
  }

  get input(): SymbolicTensor {
    return this.inputs;
  }

  get output(): SymbolicTensor {
    return this.outputs;
  }

  getLayer(name: string): Layer {
    const l = this.layers.find((x) => x.name === name);
    if (!l) throw new Error(`no layer named '${name}' (layers: ${this.layers.map((x) => x.name).join(', ')})`);
    return l;
  }

  /** Prints Keras's summary table. Trainable counts follow the current `trainable` flags. */
  summary(print: (line: string) => void = console.log): void {
    for (const line of summaryLines(this.layers)) print(line);
  }

  compile(config: CompileConfig): void {
    const optimizer = typeof config.optimizer === 'string' ? optimizerFromName(config.optimizer) : config.optimizer;
    if (!optimizer || typeof (optimizer as Optimizer).createKernel !== 'function') throw new Error(`compile: optimizer must be 'sgd', 'adam', 'adamw', 'rmsprop' or an optimizer such as new Adam({...}), got ${String(config.optimizer)}`);
    const losses: LossName[] = ['binary_crossentropy', 'categorical_crossentropy', 'sparse_categorical_crossentropy'];
    if (!losses.includes(config.loss)) throw new Error(`compile: loss '${config.loss}' is not supported (use one of ${losses.join(', ')})`);
    // 'acc' resolves to the accuracy that matches the loss, as Keras does
    // accuracy comes from the loss kernels; the others are stateful metrics with their own kernels
    const metrics = resolveMetrics(config.metrics ?? [], config.loss, sizeOf(this.outputs.shape));
    planNodes({ layers: this.layers, output: this.outputs, loss: config.loss }); // checks the head fits the loss
    this.releaseDevice();
    this.compiled = { optimizer, loss: config.loss, trainable: this.layers.map((l) => l.trainable), inferenceMode: this.layers.map(inferenceModeOf), metrics };
    this.iteration = 0;
    this.pendingState = null; // a new optimizer starts from zero state, as in Keras after compile()
  }

  private spec(batch: number, predictOnly = false): PlanSpec {
    const c = predictOnly ? null : this.requireCompiled('memory');
    const limit = this.gpu?.limits.maxStorageBufferBindingSize ?? currentGpu()?.limits.maxStorageBufferBindingSize ?? DEFAULT_BINDING;
    return { layers: this.layers, input: this.inputs, output: this.outputs, loss: c?.loss ?? null, batch, maxBinding: this.maxBindingOverride ?? limit, optimizerSlots: c?.optimizer.stateSlots ?? 0, metrics: c?.metrics ?? [] };
  }

  /** For tests: pretend the device's maxStorageBufferBindingSize is this small (forces micro-batching). */
  maxBindingOverride: number | null = null;

  /** The plan's device bytes by kind for a batch size (plan only: nothing is allocated). */
  memory(batchSize: number): PlanMemory {
    return layoutPlan(this.spec(batchSize)).memory;
  }

  private requireCompiled(what: string): Compiled {
    if (!this.compiled) throw new Error(`${what}: compile the model first, e.g. model.compile({ optimizer: 'sgd', loss: 'binary_crossentropy', metrics: ['acc'] })`);
    return this.compiled;
  }

  /** The compiled plan for a batch size (built on first use); for inspection and tests. */
  compiledPlan(batch: number): Promise<Plan> {
    return this.plan(batch);
  }

  private async plan(batch: number, predictOnly = false): Promise<Plan> {
    const c = predictOnly ? null : this.requireCompiled('training');
    const changed = c ? this.layers.find((l, i) => l.trainable !== c.trainable[i]) : undefined;
    if (changed) throw new Error(`${changed.name}.trainable changed after compile(): call compile() again so the change takes effect (Keras reads trainable flags at compile time)`);
    const modeChanged = c ? this.layers.find((l, i) => inferenceModeOf(l) !== c.inferenceMode[i]) : undefined;
    if (modeChanged) throw new Error(`${modeChanged.name}.inferenceMode changed after compile(): call compile() again so the change takes effect (plans are built with each BatchNormalization's mode)`);
    const key = `${batch}${c ? '' : ' predict'}`;
    let p = this.plans.get(key);
    if (!p) {
      p = (async () => {
        this.gpu ??= await getGpu();
        const gpu = this.gpu;
        const readback = 2 + (c?.metrics ?? []).reduce((a, m) => a + m.floats, 0);
        if (this.ring && this.ring.floats < readback) {
          this.ring.destroy();
          this.ring = null;
        }
        this.ring ??= new StatsRing(gpu, readback);
        let opt = null;
        if (c) {
          await this.metricAccumulators();
          this.guard ??= await GuardKernel.create(this.gpu);
          this.updates ??= await c.optimizer.createKernel(this.gpu, this.guard.halt);
          const updates = this.updates;
          const guard = this.guard;
          opt = { updates: updates.updates.bind(updates), guard: (stats: GPUBuffer) => guard.check(stats) };
        }
        const plan = await Plan.build(this.gpu, this.spec(batch, !c), opt, this.seed, this.grads, c ? this.metricCounts : null);
        this.applyPendingState();
        return plan;
      })();
      this.plans.set(key, p);
      p.catch(() => this.plans.delete(key));
    }
    return p;
  }

  private checkBatch(x: Float32Array, y: Float32Array | null, what: string): number {
    const per = sizeOf(this.inputs.shape);
    if (!(x instanceof Float32Array)) throw new Error(`${what}: x must be a Float32Array in NHWC layout`);
    if (x.length === 0 || x.length % per !== 0) {
      throw new Error(`${what}: x has ${x.length} values, not a whole number of [${this.inputs.shape.join(', ')}] images (${per} values each)`);
    }
    const n = x.length / per;
    const c = this.compiled;
    const perLabel = c ? labelSize(c.loss, this.outputs) : 1;
    if (y && y.length !== n * perLabel) {
      throw new Error(`${what}: x holds ${n} images but y has ${y.length} values; ${c?.loss ?? 'the loss'} needs ${perLabel === 1 ? 'one label per image' : `${perLabel} values (a one-hot row) per image`}`);
    }
    return n;
  }

  /** Submits one training step; resolves when its [loss, acc] has been read back. */
  private async submitTrain(x: Float32Array, y: Float32Array, cache: FeatureCache | null = null, indices?: ArrayLike<number>, perClass: Float32Array | null = null): Promise<{ values: Promise<Float32Array>; stored?: Promise<void> }> {
    const n = this.checkBatch(x, y, 'trainOnBatch');
    const plan = await this.plan(n);
    plan.load(x, y, this.iteration, perClass ? sampleWeights(y, plan.spec.loss!, perClass, n) : null);
    this.updates!.setIteration(this.iteration);
    this.iteration++;
    const keep = cache && indices && plan.boundaries.length ? cache.storeOps(plan, indices) : [];
    const handle = await this.ring!.submit(`train step ${this.iteration} (batch ${n})`, [...plan.trainOps, ...keep], [{ buffer: plan.stats, floats: 2 }, ...this.metricReads('train')]);
    // a host cache copies the boundary now, before the next step is submitted and overwrites it
    const stored = cache && indices && plan.boundaries.length > 0 && !cache.onDevice ? cache.storeHost(plan, indices) : undefined;
    return { ...handle, stored };
  }

  /** A training step from cached features: only the trainable part runs. */
  private async submitCachedTrain(b: IndexBatch, cache: FeatureCache, perClass: Float32Array | null = null): Promise<{ values: Promise<Float32Array> }> {
    const n = b.indices.length;
    const plan = await this.plan(n);
    if (b.y.length !== n * labelSize(plan.spec.loss, this.outputs)) throw new Error(`fit: a batch of ${n} indices came with ${b.y.length} label values`);
    plan.load(null, b.y, this.iteration, perClass ? sampleWeights(b.y, plan.spec.loss!, perClass, n) : null);
    this.updates!.setIteration(this.iteration);
    this.iteration++;
    const load = cache.loadOps(plan, b.indices);
    return this.ring!.submit(`train step ${this.iteration} (batch ${n}, cached features)`, [...load, ...plan.suffixTrainOps], [{ buffer: plan.stats, floats: 2 }, ...this.metricReads('train')]);
  }

  /** The stateful metrics' accumulators of a mode, for a readback. */
  private metricReads(mode: 'train' | 'eval'): { buffer: GPUBuffer; floats: number }[] {
    const specs = this.compiled?.metrics ?? [];
    return specs.map((m, i) => ({ buffer: this.metricCounts![mode][i], floats: m.floats }));
  }

  /** The stateful metrics' values from a readback laid out as metricReads() gives (after `offset` floats). */
  private metricValues(values: Float32Array, offset = 2): Record<string, number> {
    const out: Record<string, number> = {};
    for (const m of this.compiled?.metrics ?? []) {
      out[m.name] = m.result(values.subarray(offset, offset + m.floats));
      offset += m.floats;
    }
    return out;
  }

  /** The compiled metrics' accumulators (zeroed when created), shared by every plan. */
  private async metricAccumulators(): Promise<MetricCounts> {
    const specs = this.requireCompiled('metrics').metrics;
    if (!this.metricCounts) {
      this.gpu ??= await getGpu();
      const gpu = this.gpu;
      const make = (mode: string) => specs.map((m) => gpu.createBuffer(`${m.name} ${mode} accumulator`, m.floats * 4));
      this.metricCounts = { train: make('train'), eval: make('eval') };
    }
    return this.metricCounts;
  }

  /** Starts a mode's stateful metrics over (Keras's reset_state, at an epoch's start). */
  private async resetMetrics(mode: 'train' | 'eval'): Promise<void> {
    if (!this.compiled?.metrics.length) return;
    await this.metricAccumulators();
    this.metricCounts![mode].forEach((b, i) => this.gpu!.write(b, new Float32Array(this.compiled!.metrics[i].floats)));
  }

  /**
   * The training metrics' accumulators (an epoch in progress), for a checkpoint taken mid-epoch;
   * setMetricState puts them back before the epoch continues with trainOnBatch({ resetMetrics: false }).
   */
  async getMetricState(): Promise<Float32Array[]> {
    const specs = this.requireCompiled('metric state').metrics;
    if (!specs.length) return [];
    await this.metricAccumulators();
    return Promise.all(this.metricReads('train').map((r) => this.gpu!.readF32(r.buffer, r.floats)));
  }

  /**
   * The stateful training metrics' values so far this epoch (Keras 3's get_metrics_result, for
   * the metrics beyond loss and accuracy, which fit averages on the host).
   */
  async getMetricsResult(): Promise<Record<string, number>> {
    const specs = this.requireCompiled('metrics').metrics;
    if (!specs.length) return {};
    await this.metricAccumulators();
    return this.metricValues(await this.readMetrics('train'), 0);
  }

  async setMetricState(state: Float32Array[]): Promise<void> {
    const specs = this.requireCompiled('metric state').metrics;
    if (state.length !== specs.length || state.some((a, i) => a.length !== specs[i].floats)) {
      throw new Error(`setMetricState: the model's metrics (${specs.map((m) => `${m.name}: ${m.floats} values`).join(', ') || 'none beyond accuracy'}) do not match the state given (${state.map((a) => a.length).join(', ') || 'empty'})`);
    }
    if (!specs.length) return;
    await this.metricAccumulators();
    state.forEach((a, i) => this.gpu!.write(this.metricCounts!.train[i], a));
  }

  /** Per-class weights for a classWeight map (binary heads have classes 0 and 1). */
  private perClassWeights(classWeight: Record<number, number> | undefined, what: string): Float32Array | null {
    if (!classWeight) return null;
    const units = sizeOf(this.outputs.shape);
    try {
      return normalizeClassWeight(classWeight, units === 1 ? 2 : units);
    } catch (e) {
      throw new Error(`${what}: ${(e as Error).message}`);
    }
  }

  private readonly caches = new Map<string, FeatureCache>();

  /**
   * The feature cache for a source, or null when caching does not apply: the source may be
   * augmented, the model may have no frozen part, or it may hold dropout. The key covers the
   * source, the input size, the frozen part and its weights' versions, so changing any
   * of them starts a new cache.
   */
  private async cacheFor(data: BatchSource, enabled: boolean | undefined, budget: number | undefined): Promise<FeatureCache | null> {
    if (enabled === false || !data.featureCacheKey || !data.samples) return null;
    const layout = layoutPlan(this.spec(1));
    const region = layout.region.forward;
    // worth it only when the forward-only region computes something (not just a Flatten), exact only without dropout
    if (!layout.cacheable || !region.some((n) => !n.layer.isAlias(false))) return null;
    if (region.some((n) => n.members.some((l) => l.isAlias(false) && !l.isAlias(true)))) return null;
    const weights = region.flatMap((n) => n.members.flatMap((l) => l.params.map((p) => `${p.name}@${p.version}`))).join(',');
    const rowFloats = layout.boundaries.reduce((a, t) => a + sizeOf(t.shape), 0);
    const key = `${data.featureCacheKey}|${this.inputs.shape.join('x')}|${region.map((n) => n.index).join(',')}|${weights}`;
    let cache = this.caches.get(key);
    if (!cache) {
      for (const [k, c] of this.caches) {
        if (k.startsWith(`${data.featureCacheKey}|`)) {
          c.destroy();
          this.caches.delete(k);
        }
      }
      this.gpu ??= await getGpu();
      cache = new FeatureCache(this.gpu, key, data.samples, rowFloats, budget ?? 512 * 1024 * 1024);
      this.caches.set(key, cache);
    }
    return cache;
  }

  /** After a non-finite loss: wait for the queue, re-arm the update guard, and throw. */
  private async nonFinite(epoch: number | null, step: number, loss: number): Promise<never> {
    await this.gpu!.sync();
    this.guard!.resume();
    throw new NonFiniteLossError(epoch, step, loss);
  }

  /**
   * One optimizer step on a batch; returns [loss, acc, ...the other compiled metrics] computed
   * before the update, for this batch alone (Keras's train_on_batch resets the metrics). With
   * `classWeight` the loss and metrics are weighted by each example's class, as in Keras.
   */
  async trainOnBatch(x: Float32Array, y: Float32Array, config: { classWeight?: Record<number, number>; resetMetrics?: boolean } = {}): Promise<number[]> {
    const perClass = this.perClassWeights(config.classWeight, 'trainOnBatch');
    // resetMetrics: false (Keras 2's reset_metrics) accumulates over calls, as within an epoch
    if (config.resetMetrics !== false) await this.resetMetrics('train');
    const stats = await (await this.submitTrain(x, y, null, undefined, perClass)).values;
    if (!Number.isFinite(stats[0])) await this.nonFinite(null, this.iteration - 1, stats[0]);
    return [stats[0], stats[1], ...Object.values(this.metricValues(stats))];
  }

  /** [loss, acc, ...the other compiled metrics] of one batch, without training. */
  async testOnBatch(x: Float32Array, y: Float32Array): Promise<number[]> {
    const n = this.checkBatch(x, y, 'testOnBatch');
    const plan = await this.plan(n);
    await this.resetMetrics('eval');
    plan.load(x, y, this.iteration);
    const stats = await (await this.ring!.submit(`test batch (batch ${n})`, plan.evalOps, [{ buffer: plan.stats, floats: 2 }, ...this.metricReads('eval')])).values;
    return [stats[0], stats[1], ...Object.values(this.metricValues(stats))];
  }

  /** Probabilities: one per image for a sigmoid output, K per image (rows) for softmax. */
  async predict(x: Float32Array, config: { batchSize?: number } = {}): Promise<Float32Array> {
    const total = this.checkBatch(x, null, 'predict');
    const per = sizeOf(this.inputs.shape);
    const bs = config.batchSize ?? 32;
    const k = sizeOf(this.outputs.shape);
    const out = new Float32Array(total * k);
    for (let s = 0; s < total; s += bs) {
      const n = Math.min(bs, total - s);
      const plan = await this.plan(n, !this.compiled);
      plan.load(x.subarray(s * per, (s + n) * per), null, this.iteration);
      this.gpu!.submit(`predict images ${s}..${s + n - 1}`, plan.predictOps);
      out.set(await this.gpu!.readF32(plan.probs, n * k), s * k);
    }
    return out;
  }

  /** [loss, acc, ...the other compiled metrics] over a batch source (Keras's evaluate), accumulated on the device. */
  async evaluate(data: BatchSource, config: EvaluateConfig = {}): Promise<number[]> {
    return Object.values(await this.evaluateLogs(data, config));
  }

  /** evaluate()'s values keyed by Keras's log names: loss, acc, then the stateful metrics. */
  async evaluateLogs(data: BatchSource, config: EvaluateConfig = {}): Promise<Logs> {
    this.requireCompiled('evaluate');
    await this.resetMetrics('eval');
    const cache = await this.cacheFor(data, config.featureCache, config.featureCacheBudget);
    const cached = !!cache?.complete && config.steps === undefined;
    const it = cached && data.indexBatches ? iterate(data.indexBatches() as BatchSource) : iterate(data);
    const steps = config.steps ?? data.length;
    const used = new Set<Plan>();
    const stores: Promise<void>[] = [];
    let count = 0;
    for (let step = 0; steps === undefined || step < steps; step++) {
      const r = await it.next();
      if (r.done) break;
      const b = r.value as Batch | IndexBatch;
      const indices = b.indices;
      const fromCache = cached && indices !== undefined;
      const n = fromCache ? indices.length : this.checkBatch((b as Batch).x, b.y, 'evaluate');
      const plan = await this.plan(n);
      if (!used.has(plan)) {
        plan.resetTotals();
        used.add(plan);
      }
      if (fromCache) {
        plan.load(null, b.y, this.iteration);
        this.gpu!.submit(`evaluate batch ${step + 1} (cached features)`, [...cache!.loadOps(plan, indices), ...plan.suffixEvalOps, ...plan.accumulateOps]);
      } else {
        plan.load((b as Batch).x, b.y, this.iteration);
        const keep = cache && indices && plan.boundaries.length ? cache.storeOps(plan, indices) : [];
        this.gpu!.submit(`evaluate batch ${step + 1}`, [...plan.evalOps, ...plan.accumulateOps, ...keep]);
        if (cache && indices && plan.boundaries.length > 0 && !cache.onDevice) stores.push(cache.storeHost(plan, indices));
      }
      count++;
    }
    await Promise.all(stores);
    if (!count) throw new Error('evaluate: the data source yielded no batches');
    let loss = 0;
    let correct = 0;
    let seen = 0;
    for (const plan of used) {
      const t = await this.gpu!.readF32(plan.totals, 3);
      loss += t[0];
      correct += t[1];
      seen += t[2];
    }
    const metrics = this.compiled!.metrics.length ? this.metricValues(await this.readMetrics('eval'), 0) : {};
    return { loss: loss / seen, acc: correct / seen, ...metrics };
  }

  private async readMetrics(mode: 'train' | 'eval'): Promise<Float32Array> {
    const parts = await Promise.all(this.metricReads(mode).map((r) => this.gpu!.readF32(r.buffer, r.floats)));
    const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /**
   * Where the last fit()'s time went, in ms: waiting for the data source, host work to record
   * and submit steps, waiting for the GPU (results of queued steps), and validation.
   */
  lastFitTiming = { totalMs: 0, dataWaitMs: 0, submitMs: 0, gpuWaitMs: 0, validationMs: 0, steps: 0, cachedSteps: 0 };

  /** Keras's fit / fit_generator: epochs of training steps, validation, progress, History. */
  async fit(data: BatchSource, config: FitConfig = {}): Promise<History> {
    this.requireCompiled('fit');
    const epochs = config.epochs ?? 1;
    const verbose = config.verbose ?? 1;
    const sink = config.sink ? { write: config.sink, live: false } : defaultSink();
    const callbacks = config.callbacks ?? [];
    const history: History = { epoch: [], history: { loss: [], acc: [] } };
    this.stopTraining = false;
    const perClass = this.perClassWeights(config.classWeight, 'fit');
    for (const cb of callbacks) cb.setModel?.(this);
    for (const cb of callbacks) await cb.onTrainBegin?.({});
    const timing = { totalMs: 0, dataWaitMs: 0, submitMs: 0, gpuWaitMs: 0, validationMs: 0, steps: 0, cachedSteps: 0 };
    this.lastFitTiming = timing;
    const clock = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());
    const fitStart = clock();
    for (let epoch = config.initialEpoch ?? 0; epoch < epochs; epoch++) {
      for (const cb of callbacks) await cb.onEpochBegin?.(epoch);
      if (verbose) sink.write(`Epoch ${epoch + 1}/${epochs}\n`);
      const steps = config.stepsPerEpoch ?? data.length;
      const bar = new Progbar(steps ?? 0, verbose === 1 && steps ? 1 : verbose === 0 ? 0 : 2, sink);
      const cache = await this.cacheFor(data, config.featureCache, config.featureCacheBudget);
      const cached = !!cache?.complete && config.stepsPerEpoch === undefined;
      const it = cached && data.indexBatches ? iterate(data.indexBatches() as BatchSource) : iterate(data);
      await this.resetMetrics('train');
      const inFlight: Promise<void>[] = [];
      let done = 0;
      let submitted = 0;
      for (let step = 0; steps === undefined || step < steps; step++) {
        if (config.signal?.aborted) break; // before taking a batch: the source stays in step with the model
        let t = clock();
        const r = await it.next();
        timing.dataWaitMs += clock() - t;
        if (r.done) break;
        const b = r.value as Batch | IndexBatch;
        const fromCache = cached && b.indices !== undefined;
        const size = fromCache ? b.indices!.length : (b as Batch).x.length / sizeOf(this.inputs.shape);
        t = clock();
        const stats = fromCache ? await this.submitCachedTrain(b as IndexBatch, cache!, perClass) : await this.submitTrain((b as Batch).x, b.y, cache, b.indices, perClass);
        timing.submitMs += clock() - t;
        timing.steps++;
        if (fromCache) timing.cachedSteps++;
        submitted++;
        const stored = 'stored' in stats ? stats.stored : undefined;
        const handled = Promise.all([stats.values, stored]).then(async ([s]) => {
          if (!Number.isFinite(s[0])) await this.nonFinite(epoch, step, s[0]);
          done++;
          const metrics = this.metricValues(s);
          bar.update(done, { loss: s[0], acc: s[1] }, size, metrics);
          for (const cb of callbacks) await cb.onBatchEnd?.(step, { loss: s[0], acc: s[1], ...metrics, size });
        });
        handled.catch(() => undefined); // the first failure is rethrown below; later ones are moot
        inFlight.push(handled);
        // Keep at most two steps queued: data loading overlaps GPU work without running ahead.
        if (inFlight.length > 2) {
          t = clock();
          await inFlight.shift();
          timing.gpuWaitMs += clock() - t;
        }
        if (this.stopTraining) break;
      }
      let t = clock();
      for (const p of inFlight) await p;
      timing.gpuWaitMs += clock() - t;
      config.signal?.throwIfAborted();
      if (!submitted) throw new Error(`fit: the data source yielded no batches in epoch ${epoch + 1}; pass an iterable that restarts each epoch (an array, flowFromDirectory()) or stepsPerEpoch with an endless source`);
      const logs = bar.means() as Logs;
      const trained = new Set(Object.keys(logs));
      if (config.validationData) {
        t = clock();
        const val = await this.evaluateLogs(config.validationData, { steps: config.validationSteps, featureCache: config.featureCache, featureCacheBudget: config.featureCacheBudget });
        timing.validationMs += clock() - t;
        for (const [k, v] of Object.entries(val)) logs[`val_${k}`] = v;
      }
      // user callbacks first (Keras appends History and the progress bar last): a learning_rate
      // set by ReduceLROnPlateau is recorded and printed; EarlyStopping sees every value
      for (const cb of callbacks) await cb.onEpochEnd?.(epoch, logs);
      bar.finish(submitted, Object.fromEntries(Object.entries(logs).filter(([k]) => !trained.has(k))));
      history.epoch.push(epoch);
      for (const [k, v] of Object.entries(logs)) (history.history[k] ??= []).push(v);
      if (this.stopTraining) break;
    }
    for (const cb of callbacks) await cb.onTrainEnd?.({});
    timing.totalMs = clock() - fitStart;
    return history;
  }

  /** Every weight of every layer in Keras's get_weights order (non-trainable statistics included). */
  async getWeights(): Promise<NamedTensor[]> {
    const out: NamedTensor[] = [];
    for (const l of this.layers) for (const p of l.params) out.push({ name: p.name, shape: p.shape.slice(), data: await p.read() });
    return out;
  }

  /**
   * Restores getWeights()'s result (Keras's set_weights: by order, every shape checked first).
   * Weights whose values are unchanged are not rewritten, so restoring the best epoch's weights
   * keeps the frozen part's feature cache and folds valid.
   */
  async setWeights(weights: NamedTensor[]): Promise<void> {
    const params = this.layers.flatMap((l) => l.params);
    if (weights.length !== params.length) throw new Error(`setWeights: the model has ${params.length} weight tensors, got ${weights.length}; pass what getWeights() returned for this model`);
    weights.forEach((w, i) => {
      const p = params[i];
      if (w.shape.length !== p.shape.length || w.shape.some((d, j) => d !== p.shape[j]) || w.data.length !== p.size) {
        throw new Error(`setWeights: weight ${i} ('${p.name}') has shape [${p.shape.join(', ')}], got '${w.name}' [${w.shape.join(', ')}] with ${w.data.length} values`);
      }
    });
    for (let i = 0; i < params.length; i++) {
      const now = await params[i].read();
      const w = weights[i].data;
      let same = true;
      for (let k = 0; k < now.length && same; k++) same = Object.is(now[k], w[k]);
      if (!same) params[i].write(w);
    }
  }

  /** The compiled optimizer (callbacks read and set its learningRate). */
  get optimizer(): Optimizer {
    return this.requireCompiled('optimizer').optimizer;
  }

  /** Trainable parameters in Keras order (those the optimizer updates). */
  private trainableParams(): Param[] {
    this.requireCompiled('optimizer state');
    return this.layers.flatMap((l) => l.trainableParams);
  }

  /** Optimizer state entries: one per trainable weight and state slot (SGD momentum: the velocity, named by the weight). */
  private stateEntries(): { param: Param; slot: number; name: string }[] {
    const c = this.requireCompiled('optimizer state');
    const slots = c.optimizer.stateSlots;
    const names = this.updates?.stateNames ?? Array.from({ length: slots }, (_, i) => `slot${i}`);
    return this.trainableParams().flatMap((param) => Array.from({ length: slots }, (_, slot) => ({ param, slot, name: slots === 1 ? param.name : `${param.name}/${names[slot]}` })));
  }

  /** State set before the optimizer's buffers exist, keyed by weight and slot number (slot names are known only once the kernels are). */
  private pendingState: Map<string, Float32Array> | null = null;
  private static slotKey(e: { param: Param; slot: number }): string {
    return `${e.param.name}#${e.slot}`;
  }

  /**
   * The optimizer's state for checkpoints: the update counter (it also drives dropout masks and
   * learning-rate decay) and every state buffer of every trainable weight (SGD with momentum: one
   * velocity each), in Keras order.
   */
  async getOptimizerState(): Promise<OptimizerState> {
    const velocities: { name: string; data: Float32Array }[] = [];
    for (const e of this.stateEntries()) {
      const pending = this.pendingState?.get(Model.slotKey(e));
      const v = e.param.buffer ? this.updates?.stateOf(e.param.buffer)[e.slot] : undefined;
      const data = pending ?? (v && this.gpu ? await this.gpu.readF32(v, e.param.size) : new Float32Array(e.param.size));
      velocities.push({ name: e.name, data });
    }
    const o = this.requireCompiled('optimizer state').optimizer;
    // a number set by a callback (ReduceLROnPlateau) is state; a schedule is a function of iteration
    return { iteration: this.iteration, optimizer: o.name, ...(typeof o.learningRate === 'number' ? { learningRate: o.learningRate } : {}), velocities };
  }

  /**
   * Restores getOptimizerState()'s result (after compile, before or after the first step).
   * State is matched by order, as Keras matches optimizer weights; sizes must agree.
   */
  async setOptimizerState(state: OptimizerState): Promise<void> {
    const entries = this.stateEntries();
    const o = this.requireCompiled('optimizer state').optimizer;
    if (!Number.isInteger(state.iteration) || state.iteration < 0) throw new Error(`setOptimizerState: iteration must be an integer >= 0, got ${state.iteration}`);
    if (state.optimizer !== undefined && state.optimizer !== o.name) throw new Error(`setOptimizerState: the state is ${state.optimizer}'s, the model is compiled with ${o.name}; compile with the optimizer the state was saved with`);
    if (state.learningRate !== undefined && (!Number.isFinite(state.learningRate) || state.learningRate < 0)) throw new Error(`setOptimizerState: learningRate must be a finite number >= 0, got ${state.learningRate}`);
    if (state.velocities.length && state.velocities.length !== entries.length) {
      const params = this.trainableParams();
      const what = entries.length === params.length ? 'velocities' : 'state arrays';
      throw new Error(`setOptimizerState: got ${state.velocities.length} ${what} for ${params.length} trainable weights (${params.map((p) => p.name).join(', ')}); was the state saved with other layers frozen, or with another optimizer?`);
    }
    state.velocities.forEach((v, i) => {
      if (v.data.length !== entries[i].param.size) throw new Error(`setOptimizerState: state ${i} ('${v.name}') has ${v.data.length} values, the weight '${entries[i].param.name}' has ${entries[i].param.size}`);
    });
    this.iteration = state.iteration;
    if (state.learningRate !== undefined && typeof o.learningRate === 'number') o.learningRate = state.learningRate;
    this.pendingState = new Map(state.velocities.map((v, i) => [Model.slotKey(entries[i]), v.data]));
    if (this.plans.size) {
      await Promise.all(this.plans.values());
      this.applyPendingState();
    }
  }

  private applyPendingState(): void {
    if (!this.pendingState || !this.updates || !this.gpu) return;
    for (const e of this.stateEntries()) {
      const data = this.pendingState.get(Model.slotKey(e));
      const v = e.param.buffer ? this.updates.stateOf(e.param.buffer)[e.slot] : undefined;
      if (data && v) this.gpu.write(v, data);
    }
    this.pendingState = null;
  }

  /** Frees device buffers of plans and optimizer state (weights stay on the device). */
  private releaseDevice(): void {
    for (const p of this.plans.values()) p.then((plan) => plan.destroy(), () => undefined);
    this.plans.clear();
    if (this.gpu) for (const g of this.grads.values()) this.gpu.destroyBuffer(g);
    this.grads.clear();
    this.updates?.destroy();
    this.updates = null;
    if (this.gpu && this.metricCounts) for (const b of [...this.metricCounts.train, ...this.metricCounts.eval]) this.gpu.destroyBuffer(b);
    this.metricCounts = null;
  }

  /** Releases everything this model holds on the device, weights included (read back first). */
  async dispose(): Promise<void> {
    for (const l of this.layers) for (const p of l.params) await p.read();
    this.releaseDevice();
    this.ring?.destroy();
    this.ring = null;
    if (this.gpu) {
      for (const l of this.layers) {
        for (const p of l.params) {
          if (p.buffer) this.gpu.destroyBuffer(p.buffer);
          p.buffer = null;
          p.gpu = null;
        }
      }
    }
  }

  // Weights files (src/io/weights.ts). Layers are matched by Keras's rules: by name where every
  // weighted layer's name matches, else by order, weightless layers skipped on both sides; shapes
  // must match. The io module loads on first use.
  /** Node: manifest.json + .bin (a folder, or a path ending in .json); Keras HDF5 for a .h5 path. */
  async saveWeights(path: string): Promise<void> {
    await (await import('../io/weights.ts')).saveWeightsTo(this, path);
  }

  /**
   * A Keras .h5 (any layout), a manifest.json or its folder (Node), a manifest URL, or
   * 'imagenet' for a model made by VGG16/MobileNetV2/ResNet50. Layers are matched by name when
   * every weighted layer's name matches, else by order as Keras's HDF5 loader does; the report
   * says which (and `log` gets it as a line).
   */
  async loadWeights(pathOrUrl: string, options: import('../io/weights.ts').LoadWeightsOptions = {}): Promise<import('../io/weights.ts').WeightsLoadReport> {
    return (await import('../io/weights.ts')).loadWeightsInto(this, pathOrUrl, options);
  }

  /** Node: Keras's HDF5 layout (layer_names, weight_names), for Keras's model.load_weights(). */
  async saveWeightsH5(path: string): Promise<void> {
    await (await import('../io/weights.ts')).saveWeightsH5To(this, path);
  }
}
