import { fmtBytes, type Gpu, type GpuOp } from '../gpu/index.ts';
import { Conv2dKernel } from '../kernels/conv2d.ts';
import { DenseKernel } from '../kernels/dense.ts';
import { DropoutKernel } from '../kernels/dropout.ts';
import { MaxPool2dKernel } from '../kernels/maxpool2d.ts';
import { SigmoidBceKernel } from '../kernels/sigmoid-bce.ts';
import { SigmoidKernel } from '../kernels/sigmoid.ts';
import { SoftmaxCeKernel } from '../kernels/softmax-ce.ts';
import { SgdKernel } from '../kernels/sgd.ts';
import type { Layer } from './layers.ts';
import { unitSize, type Unit } from './units.ts';

/** Device bytes of a plan, by kind (like the answer to "where does the memory go"). */
export interface PlanMemory {
  batch: number;
  /** Images per pass of the frozen prefix (smaller than batch when a tensor exceeds the binding limit). */
  microBatch: number;
  weights: number;
  gradients: number;
  optimizer: number;
  activations: number;
  staging: number;
  /** Kernel scratch (split-K partials, uniforms); known once the plan is built on a device. */
  scratch: number;
  total: number;
}

export type LossName = 'binary_crossentropy' | 'categorical_crossentropy' | 'sparse_categorical_crossentropy';

export interface PlanSpec {
  units: Unit[];
  loss: LossName;
  /** Layers whose weights train (frozen ones excluded), read at compile time. */
  trainable: ReadonlySet<Layer>;
  batch: number;
  inputShape: number[];
  maxBinding: number;
  momentum: boolean;
}

const F32 = 4;

/** Outputs per example of the model's last layer (1 for a sigmoid head, K for softmax). */
export function outputSize(units: Unit[]): number {
  return unitSize(units[units.length - 1].outShape);
}

/** Label floats per example: one-hot rows for categorical_crossentropy, else one value. */
export function labelSize(spec: Pick<PlanSpec, 'units' | 'loss'>): number {
  return spec.loss === 'categorical_crossentropy' ? outputSize(spec.units) : 1;
}

/** Checks that the model's last layer fits the loss, as Keras's losses expect. */
export function checkHead(units: Unit[], loss: LossName): void {
  const last = units[units.length - 1];
  const act = 'activation' in last ? last.activation : 'none';
  const shape = `[${last.outShape.join(', ')}]`;
  if (loss === 'binary_crossentropy') {
    if (last.kind !== 'dense' || unitSize(last.outShape) !== 1 || act !== 'sigmoid') {
      throw new Error(`binary_crossentropy needs the model to end in Dense({ units: 1, activation: 'sigmoid' }); it ends in ${last.layer.describe()} with output shape ${shape} and activation '${act}'`);
    }
  } else if (last.kind !== 'dense' || act !== 'softmax' || unitSize(last.outShape) < 2) {
    throw new Error(`${loss} needs the model to end in Dense({ units: K, activation: 'softmax' }) with K >= 2 classes; it ends in ${last.layer.describe()} with output shape ${shape} and activation '${act}'`);
  }
  for (const u of units.slice(0, -1)) {
    if ('activation' in u && u.activation === 'softmax') throw new Error(`${u.layer.name}: softmax is supported only on the last layer`);
  }
}

/** Pure layout of a plan: which units run forward-only, micro-batch size, buffer sizes. */
export interface PlanLayout {
  /** Index of the first unit with trainable weights (units.length when none train). */
  first: number;
  microBatch: number;
  memory: PlanMemory;
}

function isAlias(u: Unit, training: boolean): boolean {
  return u.kind === 'flatten' || (u.kind === 'dropout' && (!training || u.layer.rate === 0));
}

/** The largest per-image binding (floats) a unit's kernels touch. */
function perImageFloats(u: Unit): number {
  return Math.max(unitSize(u.inShape), unitSize(u.outShape));
}

export function layoutPlan(spec: PlanSpec): PlanLayout {
  const { units, batch, maxBinding } = spec;
  if (!units.length) throw new Error('the model has no layers after its input');
  let first = units.findIndex((u) => spec.trainable.has(u.layer) && u.layer.params.length > 0);
  if (first < 0) first = units.length;
  const prefix = units.slice(0, first);
  const suffix = units.slice(first);
  const inSize = unitSize(spec.inputShape);

  // Trainable part runs at the full batch: every tensor must fit one binding.
  for (const u of suffix) {
    const bytes = perImageFloats(u) * batch * F32;
    if (bytes > maxBinding) {
      throw new Error(`${u.layer.name}: a batch of ${batch} needs a ${fmtBytes(bytes)} tensor ([${batch}, ${(unitSize(u.inShape) >= unitSize(u.outShape) ? u.inShape : u.outShape).join(', ')}]) in a trainable layer, over this device's maxStorageBufferBindingSize of ${fmtBytes(maxBinding)}. Freeze more layers (only the frozen prefix is micro-batched), or use a smaller batch or input size.`);
    }
  }
  // Frozen prefix: the largest micro-batch whose tensors fit one binding.
  const widest = Math.max(inSize, ...prefix.map(perImageFloats));
  const microBatch = prefix.length ? Math.min(batch, Math.floor(maxBinding / (widest * F32))) : batch;
  if (microBatch < 1) {
    throw new Error(`a single image needs a ${fmtBytes(widest * F32)} tensor, over this device's maxStorageBufferBindingSize of ${fmtBytes(maxBinding)}; use a smaller input size`);
  }

  const params = units.flatMap((u) => u.layer.params);
  const trainParams = suffix.filter((u) => spec.trainable.has(u.layer)).flatMap((u) => u.layer.params);
  const weights = params.reduce((a, p) => a + p.size * F32, 0);
  const gradients = trainParams.reduce((a, p) => a + p.size * F32, 0);
  const optimizer = spec.momentum ? gradients : 0;

  const outs = outputSize(units);
  let acts = inSize * batch + labelSize(spec) * batch; // input, labels
  if (prefix.length) {
    const boundary = unitSize(prefix[prefix.length - 1].outShape);
    const inner = prefix.slice(0, -1).filter((u) => !isAlias(u, true)).map((u) => unitSize(u.outShape));
    acts += 2 * Math.max(0, ...inner) * microBatch; // ping-pong
    if (microBatch < batch) acts += (inSize + boundary) * microBatch; // chunk in/out
    acts += boundary * batch;
  }
  for (const u of suffix) if (!isAlias(u, true)) acts += unitSize(u.outShape) * batch;
  const gradAct = Math.max(0, ...suffix.slice(1).map((u) => unitSize(u.inShape)));
  acts += 2 * gradAct * batch + outs * batch; // activation-gradient ping-pong, dlogits
  const activations = acts * F32;
  const staging = (2 + 3 + outs * batch) * F32 + 4 * 16; // stats, totals, probs, readback ring

  const memory: PlanMemory = { batch, microBatch, weights, gradients, optimizer, activations, staging, scratch: 0, total: 0 };
  memory.total = weights + gradients + optimizer + activations + staging;
  return { first, microBatch, memory };
}

interface Chunk {
  start: number;
  size: number;
}

/**
 * A compiled plan for one batch size: fixed buffers, kernels bound once, op lists for a
 * training step (one submit), an evaluation step and prediction.
 */
export class Plan {
  readonly layout: PlanLayout;
  readonly input: GPUBuffer;
  readonly labels: GPUBuffer;
  readonly stats: GPUBuffer;
  readonly totals: GPUBuffer;
  readonly probs: GPUBuffer;
  /**
   * The frozen prefix's output for the batch (null without a frozen prefix) and its floats per
   * image: what a feature cache stores, and where cached features are put back.
   */
  boundary: GPUBuffer | null = null;
  boundaryFloats = 0;
  /** The same steps without the frozen prefix: run after the boundary was filled from a cache. */
  suffixTrainOps: GpuOp[] = [];
  suffixEvalOps: GpuOp[] = [];
  suffixPredictOps: GpuOp[] = [];
  /** Whether the prefix gives the same output for the same image every time (no dropout in it). */
  prefixDeterministic = false;
  trainOps: GpuOp[] = [];
  evalOps: GpuOp[] = [];
  accumulateOps: GpuOp[] = [];
  predictOps: GpuOp[] = [];
  private readonly owned: GPUBuffer[] = [];
  private readonly destroyers: (() => void)[] = [];
  private readonly dropouts: DropoutKernel[] = [];

  private constructor(readonly gpu: Gpu, readonly spec: PlanSpec, layout: PlanLayout, private readonly grads: Map<Layer, GPUBuffer[]>) {
    this.layout = layout;
    const b = spec.batch;
    this.input = this.alloc('input', unitSize(spec.inputShape) * b);
    this.labels = this.alloc('labels', labelSize(spec) * b);
    this.stats = this.alloc('stats [loss, acc]', 2);
    this.totals = this.alloc('totals [loss sum, correct, count]', 3);
    this.probs = this.alloc('probabilities', outputSize(spec.units) * b);
  }

  private alloc(label: string, floats: number): GPUBuffer {
    const buf = this.gpu.createBuffer(`plan b${this.spec.batch} ${label}`, Math.max(1, floats) * F32);
    this.owned.push(buf);
    return buf;
  }

  /** Builds kernels and op lists. `sgd` updates trainable weights; `seed` drives dropout masks. */
  static async build(gpu: Gpu, spec: PlanSpec, sgd: SgdKernel | null, seed: number, grads: Map<Layer, GPUBuffer[]>): Promise<Plan> {
    for (const u of spec.units) for (const p of u.layer.params) p.place(gpu);
    const sharedBefore = [...grads.values()].flat().length;
    const before = gpu.memory().numBytes;
    const layout = layoutPlan(spec);
    const plan = new Plan(gpu, spec, layout, grads);
    await plan.compile(sgd, seed);
    // What kernels allocated themselves; gradients and optimizer state created by this plan (shared
    // with later plans of the model) are counted under their own kinds.
    const shared = [...grads.values()].flat().slice(sharedBefore).reduce((a, b) => a + b.size, 0) * (sgd && sgd.momentum > 0 ? 2 : 1);
    plan.layout.memory.scratch = Math.max(0, gpu.memory().numBytes - before - plan.ownedBytes() - shared);
    plan.layout.memory.total += plan.layout.memory.scratch;
    return plan;
  }

  private ownedBytes(): number {
    return this.owned.reduce((a, b) => a + b.size, 0);
  }

  private async compile(sgd: SgdKernel | null, seed: number): Promise<void> {
    const { units, batch, trainable } = this.spec;
    const { first, microBatch } = this.layout;
    const prefix = units.slice(0, first);
    const suffix = units.slice(first);
    const last = units[units.length - 1];
    checkHead(units, this.spec.loss);
    const classes = outputSize(units);
    const inSize = unitSize(this.spec.inputShape);
    for (const u of units) for (const p of u.layer.params) p.place(this.gpu);

    // ---- frozen prefix (forward only, micro-batched, two ping-pong buffers)
    let boundary = this.input;
    const prefixTrain: GpuOp[] = [];
    const prefixEval: GpuOp[] = [];
    if (prefix.length) {
      const lastOut = unitSize(prefix[prefix.length - 1].outShape);
      boundary = this.alloc(`boundary ${prefix[prefix.length - 1].layer.name}`, lastOut * batch);
      this.boundary = boundary;
      this.boundaryFloats = lastOut;
      this.prefixDeterministic = prefix.every((u) => u.kind !== 'dropout' || u.layer.rate === 0);
      const inner = prefix.slice(0, -1).filter((u) => !isAlias(u, true)).map((u) => unitSize(u.outShape));
      const pingSize = Math.max(0, ...inner) * microBatch;
      const ping = pingSize ? [this.alloc('prefix ping', pingSize), this.alloc('prefix pong', pingSize)] : [];
      const chunked = microBatch < batch;
      const chunkIn = chunked ? this.alloc('prefix chunk input', inSize * microBatch) : this.input;
      const chunkOut = chunked ? this.alloc('prefix chunk output', lastOut * microBatch) : boundary;
      const chunks: Chunk[] = [];
      for (let s = 0; s < batch; s += microBatch) chunks.push({ start: s, size: Math.min(microBatch, batch - s) });
      const sizes = [...new Set(chunks.map((c) => c.size))];
      for (const training of [true, false]) {
        const bySize = new Map<number, GpuOp[]>();
        for (const size of sizes) bySize.set(size, await this.prefixOps(prefix, size, training, chunkIn, chunkOut, ping, seed));
        const out = training ? prefixTrain : prefixEval;
        for (const c of chunks) {
          if (chunked) out.push(this.gpu.copy(`prefix chunk ${c.start}+${c.size} in`, this.input, c.start * inSize * F32, chunkIn, 0, c.size * inSize * F32));
          out.push(...bySize.get(c.size)!);
          if (chunked) out.push(this.gpu.copy(`prefix chunk ${c.start}+${c.size} out`, chunkOut, 0, boundary, c.start * lastOut * F32, c.size * lastOut * F32));
        }
      }
    }

    // ---- trainable suffix: every output kept for backward
    const outs: GPUBuffer[] = []; // training-mode output of each suffix unit
    const fwdTrain: GpuOp[] = [];
    const fwdEval: GpuOp[] = [];
    let cur = boundary;
    let curEval = boundary;
    const ins: GPUBuffer[] = [];
    const kernels: (Conv2dKernel | DenseKernel | MaxPool2dKernel | DropoutKernel | null)[] = [];
    for (let i = 0; i < suffix.length; i++) {
      const u = suffix[i];
      ins.push(cur);
      const isLast = i === suffix.length - 1;
      if (u.kind === 'flatten') {
        outs.push(cur);
        kernels.push(null);
        continue;
      }
      if (u.kind === 'dropout') {
        if (u.layer.rate === 0) { outs.push(cur); kernels.push(null); continue; }
        const k = await DropoutKernel.create(this.gpu, { size: unitSize(u.inShape) * batch, rate: u.layer.rate, seed: u.layer.seed ?? seed + first + i, label: u.layer.name });
        this.dropouts.push(k);
        this.destroyers.push(() => k.destroy());
        const y = this.alloc(`${u.layer.name} output`, unitSize(u.outShape) * batch);
        fwdTrain.push(k.forward({ x: cur, y }));
        outs.push(y);
        kernels.push(k);
        cur = y;
        continue; // evaluation skips dropout: curEval stays
      }
      const y = this.alloc(`${u.layer.name} ${isLast ? 'logits' : 'output'}`, unitSize(u.outShape) * batch);
      const k = await this.kernelFor(u, batch, isLast ? 'linear' : undefined);
      fwdTrain.push(this.forwardOp(u, k, cur, y));
      fwdEval.push(curEval === cur ? fwdTrain[fwdTrain.length - 1] : this.forwardOp(u, k, curEval, y));
      outs.push(y);
      kernels.push(k);
      cur = y;
      curEval = y;
    }
    const logits = suffix.length ? cur : boundary;
    if (suffix.length && curEval !== cur) throw new Error('internal: evaluation and training routes end in different buffers');

    // ---- loss
    const lossLabel = `${last.layer.name} ${this.spec.loss}`;
    const head = this.spec.loss === 'binary_crossentropy'
      ? await SigmoidBceKernel.create(this.gpu, { batch, label: lossLabel })
      : await SoftmaxCeKernel.create(this.gpu, { batch, classes, labels: this.spec.loss === 'categorical_crossentropy' ? 'onehot' : 'sparse', label: lossLabel });
    this.destroyers.push(() => head.destroy());
    const dlogits = this.alloc('dlogits', classes * batch);
    const lossTrain = head.lossAndGradient({ logits, labels: this.labels, dlogits, stats: this.stats });
    const lossEval = head.loss({ logits, labels: this.labels, stats: this.stats });
    this.accumulateOps = [head.accumulate({ stats: this.stats, totals: this.totals })];

    // ---- backward, in reverse; the first trainable unit computes no input gradient
    const backward: GpuOp[] = [];
    const updates: GpuOp[] = [];
    if (suffix.length && sgd) {
      const gradSize = Math.max(0, ...suffix.slice(1).map((u) => unitSize(u.inShape))) * batch;
      const g = gradSize ? [this.alloc('activation grad A', gradSize), this.alloc('activation grad B', gradSize)] : [];
      let dy = dlogits;
      for (let i = suffix.length - 1; i >= 0; i--) {
        const u = suffix[i];
        const k = kernels[i];
        const needDx = i > 0;
        let dx = dy;
        if (needDx && u.kind !== 'flatten' && k !== null) dx = dy === g[0] ? g[1] : g[0];
        const train = trainable.has(u.layer);
        const x = ins[i];
        const y = outs[i];
        if (u.kind === 'conv2d') {
          const c = k as Conv2dKernel;
          const [w, b] = u.layer.params;
          if (train) {
            const [dw, db] = this.paramGrads(u.layer);
            backward.push(c.backwardFilter({ x, dy, y, dw, db }));
            updates.push(sgd.update(w.buffer!, dw, w.size, w.name), sgd.update(b.buffer!, db, b.size, b.name));
          }
          if (needDx) backward.push(c.backwardInput({ dy, y, w: w.buffer!, dx }));
        } else if (u.kind === 'dense') {
          const d = k as DenseKernel;
          const [w, b] = u.layer.params;
          const yMask = i === suffix.length - 1 ? undefined : y; // logits: the loss gave dL/dz
          if (train) {
            const [dw, db] = this.paramGrads(u.layer);
            backward.push(d.backwardWeights({ x, dy, y: yMask, dw, db }));
            updates.push(sgd.update(w.buffer!, dw, w.size, w.name), sgd.update(b.buffer!, db, b.size, b.name));
          }
          if (needDx) backward.push(d.backwardInput({ dy, y: yMask, w: w.buffer!, dx }));
        } else if (u.kind === 'maxpool') {
          if (needDx) backward.push((k as MaxPool2dKernel).backward({ x, dy, dx }));
        } else if (u.kind === 'dropout' && k) {
          if (needDx) backward.push((k as DropoutKernel).backward({ dy, dx }));
        }
        dy = dx;
      }
    }

    let probsOp: GpuOp;
    if (head instanceof SoftmaxCeKernel) probsOp = head.probabilities({ logits, probs: this.probs });
    else probsOp = (await SigmoidKernel.create(this.gpu, { size: batch, label: `${last.layer.name} sigmoid` })).forward({ x: logits, y: this.probs });
    this.suffixTrainOps = [...fwdTrain, lossTrain, ...(sgd ? [sgd.guard(this.stats)] : []), ...backward, ...updates];
    this.suffixEvalOps = [...fwdEval, lossEval];
    this.suffixPredictOps = [...fwdEval, probsOp];
    this.trainOps = [...prefixTrain, ...this.suffixTrainOps];
    this.evalOps = [...prefixEval, ...this.suffixEvalOps];
    this.predictOps = [...prefixEval, ...fwdEval, probsOp];
  }

  /** Gradient buffers for a trainable layer's weights, shared by all plans of a compiled model. */
  private paramGrads(layer: Layer): GPUBuffer[] {
    let g = this.grads.get(layer);
    if (!g) {
      g = layer.params.map((p) => this.gpu.createBuffer(`grad ${p.name}`, p.size * F32));
      this.grads.set(layer, g);
    }
    return g;
  }

  /** Gradient buffers by parameter name (tests check no frozen parameter has one). */
  get gradientBuffers(): Map<string, GPUBuffer> {
    const m = new Map<string, GPUBuffer>();
    for (const [layer, bufs] of this.grads) layer.params.forEach((p, i) => m.set(p.name, bufs[i]));
    return m;
  }

  private async prefixOps(prefix: Unit[], size: number, training: boolean, chunkIn: GPUBuffer, chunkOut: GPUBuffer, ping: GPUBuffer[], seed: number): Promise<GpuOp[]> {
    const ops: GpuOp[] = [];
    let cur = chunkIn;
    const real = prefix.map((u) => !isAlias(u, training));
    let pp = 0;
    for (let i = 0; i < prefix.length; i++) {
      const u = prefix[i];
      if (!real[i]) {
        if (i === prefix.length - 1) ops.push(this.gpu.copy(`${u.layer.name} (identity)`, cur, 0, chunkOut, 0, unitSize(u.outShape) * size * F32));
        continue;
      }
      const y = i === prefix.length - 1 ? chunkOut : ping[pp++ % 2];
      if (u.kind === 'dropout') {
        const k = await DropoutKernel.create(this.gpu, { size: unitSize(u.inShape) * size, rate: u.layer.rate, seed: u.layer.seed ?? seed + i, label: u.layer.name });
        this.dropouts.push(k);
        this.destroyers.push(() => k.destroy());
        ops.push(k.forward({ x: cur, y }));
      } else {
        const k = await this.kernelFor(u, size, i === prefix.length - 1 && u === this.spec.units[this.spec.units.length - 1] ? 'linear' : undefined);
        ops.push(this.forwardOp(u, k, cur, y));
      }
      cur = y;
    }
    return ops;
  }

  private async kernelFor(u: Unit, batch: number, activation?: 'linear'): Promise<Conv2dKernel | DenseKernel | MaxPool2dKernel> {
    let k: Conv2dKernel | DenseKernel | MaxPool2dKernel;
    const label = u.layer.name;
    if (u.kind === 'conv2d') {
      const [h, w, c] = u.inShape;
      k = await Conv2dKernel.create(this.gpu, { batch, height: h, width: w, inChannels: c, outChannels: u.layer.filters, kernelSize: u.layer.kernelSize, padding: u.layer.padding, activation: (activation ?? u.activation) as 'relu' | 'linear', label });
    } else if (u.kind === 'dense') {
      // softmax only ever ends a model, where the plan runs the layer linear into the loss
      k = await DenseKernel.create(this.gpu, { batch, inFeatures: u.inShape[0], outFeatures: u.layer.units, activation: (activation ?? u.activation) as 'linear' | 'relu' | 'sigmoid', label });
    } else if (u.kind === 'maxpool') {
      const [h, w, c] = u.inShape;
      k = await MaxPool2dKernel.create(this.gpu, { batch, height: h, width: w, channels: c, label });
    } else throw new Error(`internal: no kernel for ${u.kind}`);
    this.destroyers.push(() => k.destroy());
    return k;
  }

  private forwardOp(u: Unit, k: Conv2dKernel | DenseKernel | MaxPool2dKernel, x: GPUBuffer, y: GPUBuffer): GpuOp {
    if (u.kind === 'maxpool') return (k as MaxPool2dKernel).forward({ x, y });
    const [w, b] = u.layer.params;
    if (u.kind === 'conv2d') return (k as Conv2dKernel).forward({ x, w: w.buffer!, b: b.buffer!, y });
    return (k as DenseKernel).forward({ x, w: w.buffer!, b: b.buffer!, y });
  }

  /** Writes a batch and the per-step counters; call before submitting trainOps/evalOps. */
  load(x: Float32Array | null, y: Float32Array | null, step: number): void {
    if (x) this.gpu.write(this.input, x);
    if (y) this.gpu.write(this.labels, y);
    for (const d of this.dropouts) d.setStep(step);
  }

  resetTotals(): void {
    this.gpu.write(this.totals, new Float32Array(3));
  }

  destroy(): void {
    for (const d of this.destroyers) d();
    for (const b of this.owned) this.gpu.destroyBuffer(b);
  }
}
