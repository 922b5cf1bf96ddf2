// The execution plan: a model compiled for one batch size into fixed buffers and op lists. It
// knows no layer kind: layers declare shapes, fusions, what backward reads, and build their own
// programs (src/graph/layer.ts); the plan fuses, splits the graph into a forward-only region and
// the region that needs gradients, schedules, and allocates by liveness (src/graph/schedule.ts).
import { fmtBytes, type Gpu, type GpuOp } from '../gpu/index.ts';
import { AddKernel } from '../kernels/add.ts';
import { SigmoidBceKernel } from '../kernels/sigmoid-bce.ts';
import { SigmoidKernel } from '../kernels/sigmoid.ts';
import { SoftmaxCeKernel } from '../kernels/softmax-ce.ts';
import { activationName, LINEAR, type Act } from './activations.ts';
import { readersOf } from './graph.ts';
import { InputLayer, sizeOf, type Layer, type LayerProgram, type Param, type ProgramContext } from './layer.ts';
import type { MetricSpec } from './metrics.ts';
import type { OptimizerKernel } from './optimizers.ts';
import { Schedule, SlotPool, VBuf } from './schedule.ts';
import type { SymbolicTensor } from './symbolic.ts';

/** Device bytes of a plan, by kind (like the answer to "where does the memory go"). */
export interface PlanMemory {
  batch: number;
  /** Images per pass of the forward-only region (smaller than batch when a tensor exceeds the binding limit). */
  microBatch: number;
  weights: number;
  gradients: number;
  optimizer: number;
  activations: number;
  staging: number;
  /** Kernel scratch (split-K partials, uniforms, folded weights); known once the plan is built on a device. */
  scratch: number;
  total: number;
}

export type LossName = 'binary_crossentropy' | 'categorical_crossentropy' | 'sparse_categorical_crossentropy';

export interface PlanSpec {
  /** model.layers (Keras order, the input layer first). */
  layers: readonly Layer[];
  input: SymbolicTensor;
  output: SymbolicTensor;
  /** null: a prediction-only plan (an uncompiled model, e.g. a feature extractor). */
  loss: LossName | null;
  batch: number;
  maxBinding: number;
  /** Optimizer state buffers per trainable weight element (SGD momentum: 1). */
  optimizerSlots: number;
  /** Stateful metrics beyond accuracy (AUC, precision, ...), accumulated by training and evaluation steps. */
  metrics?: readonly MetricSpec[];
}

/** Model-owned accumulators, one per metric in spec order: training steps add to `train`, evaluation steps to `eval`. */
export interface MetricCounts {
  train: GPUBuffer[];
  eval: GPUBuffer[];
}

const F32 = 4;

/** A plan node: one layer, with a frozen BatchNormalization and/or an activation fused into it. */
export interface PlanNode {
  layer: Layer;
  members: Layer[];
  inputs: SymbolicTensor[];
  output: SymbolicTensor;
  activation: Act;
  /** The folded BatchNormalization, if any. */
  fold: Layer | null;
  /** Has weights the optimizer updates. */
  trainable: boolean;
  /** Needs a backward pass (trainable at or before it). */
  grad: boolean;
  /** Index in model.layers (seeds). */
  index: number;
  /** The output node's sigmoid/softmax, applied by the loss or the probabilities kernel instead. */
  head?: Act;
}

const soleReader = (readers: Map<SymbolicTensor, Layer[]>, t: SymbolicTensor, output: SymbolicTensor) => {
  const r = readers.get(t);
  return r && r.length === 1 && t !== output ? r[0] : null;
};

/** Fuses frozen BN and activations into their producers; marks what needs gradients. */
export function planNodes(spec: Pick<PlanSpec, 'layers' | 'output' | 'loss'>): PlanNode[] {
  const readers = readersOf(spec.layers);
  const absorbed = new Set<Layer>();
  const nodes: PlanNode[] = [];
  const producer = new Map<SymbolicTensor, PlanNode>();
  spec.layers.forEach((layer, index) => {
    if (layer instanceof InputLayer || absorbed.has(layer)) return;
    const node: PlanNode = { layer, members: [layer], inputs: layer.inputs, output: layer.output!, activation: layer.ownActivation, fold: null, trainable: layer.trainableParams.length > 0, grad: false, index };
    let next = soleReader(readers, node.output, spec.output);
    if (next && layer.acceptsFold && next.canFold && !node.trainable && node.activation.kind === 'linear' && layer.params.length > 0) {
      node.fold = next;
      node.members.push(next);
      absorbed.add(next);
      node.output = next.output!;
      next = soleReader(readers, node.output, spec.output);
    }
    const act = next?.fusibleActivation();
    if (next && act && act.kind !== 'linear' && node.activation.kind === 'linear' && layer.acceptsActivation(act)) {
      node.activation = act;
      node.members.push(next);
      absorbed.add(next);
      node.output = next.output!;
    }
    node.grad = node.trainable || node.inputs.some((t) => producer.get(t)?.grad === true);
    producer.set(node.output, node);
    nodes.push(node);
  });
  const last = nodes[nodes.length - 1];
  if (!last || last.output !== spec.output) throw new Error('internal: the plan does not end at the model output');
  if (spec.loss) checkHead(last, spec.loss);
  // a sigmoid/softmax head runs linear: the loss (or, in predict, a probabilities kernel) takes the logits
  if (spec.loss || last.activation.kind === 'softmax') {
    last.head = last.activation;
    last.activation = LINEAR;
  }
  return nodes;
}

/** Checks that the model's last layer fits the loss, as Keras's losses expect. */
export function checkHead(last: PlanNode, loss: LossName): void {
  const act = last.activation.kind; // before the head is split off
  const size = sizeOf(last.output.shape);
  const shape = `[${last.output.shape.join(', ')}]`;
  const canLogits = last.layer.acceptsActivation(last.activation) || last.activation === last.layer.ownActivation;
  if (loss === 'binary_crossentropy') {
    if (size !== 1 || act !== 'sigmoid' || !canLogits) {
      throw new Error(`binary_crossentropy needs the model to end in Dense({ units: 1, activation: 'sigmoid' }); it ends in ${last.layer.describe()} with output shape ${shape} and activation '${activationName(last.activation)}'`);
    }
  } else if (act !== 'softmax' || size < 2 || last.output.shape.length !== 1 || !canLogits) {
    throw new Error(`${loss} needs the model to end in Dense({ units: K, activation: 'softmax' }) with K >= 2 classes; it ends in ${last.layer.describe()} with output shape ${shape} and activation '${activationName(last.activation)}'`);
  }
}

/** Label floats per example: one-hot rows for categorical_crossentropy, else one value. */
export function labelSize(loss: LossName | null, output: SymbolicTensor): number {
  return loss === 'categorical_crossentropy' ? sizeOf(output.shape) : 1;
}

type Mode = 'train' | 'eval' | 'predict';

/** Where each mode's tensors live, before any device exists. */
interface Layout {
  nodes: PlanNode[];
  microBatch: number;
  /** Forward-only nodes and the rest. */
  region: { forward: PlanNode[]; grad: PlanNode[] };
  /** Tensors crossing from the forward-only region (full batch, fixed buffers). */
  boundaries: SymbolicTensor[];
  /** Whether the gradient region reads only boundary tensors (then a feature cache can replay them). */
  cacheable: boolean;
  schedules: Map<Mode, Schedule<GpuOp>>;
  /** The forward-only section of each schedule when it runs in micro-batches. */
  chunks: Map<Mode, ChunkInfo>;
  /** Sizes (floats) of the gradient sums at fan-out. */
  addSizes: Set<number>;
  pool: SlotPool;
  fixed: Map<string, number>;
  memory: PlanMemory;
}

interface Binder {
  /** The program of a node for the mode (at the micro-batch being emitted, or the full batch). */
  program(node: PlanNode, training: boolean): LayerProgram;
  params(node: PlanNode): GPUBuffer[];
  grads(node: PlanNode): (GPUBuffer | null)[];
  head: { train(logits: GPUBuffer, dlogits: GPUBuffer): GpuOp[]; eval(logits: GPUBuffer): GpuOp[]; probs(logits: GPUBuffer): GpuOp | null } | null;
  guard(): GpuOp | null;
  updates(): GpuOp[];
  add(size: number): AddKernel;
  copy(label: string, src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): GpuOp;
}

const isAliasIn = (n: PlanNode, training: boolean) => n.members.length === 1 && n.layer.isAlias(training);
const programKey = (n: PlanNode, batch: number, training: boolean) => `${n.index}|${batch}|${n.members.some((l) => l.trainingDependent) ? training : '-'}`;

function ctxFlags(node: PlanNode, nodeOf: Map<SymbolicTensor, PlanNode>) {
  return { inputGrads: node.inputs.map((t) => nodeOf.get(t)?.grad === true), paramGrads: node.trainable };
}

/** Builds the pure layout: regions, micro-batch, schedules and slots for every mode. */
export function layoutPlan(spec: PlanSpec, binder?: () => Binder): Layout {
  const { batch, maxBinding } = spec;
  const nodes = planNodes(spec);
  const nodeOf = new Map(nodes.map((n) => [n.output, n]));
  const training = spec.loss !== null;
  const forward = training ? nodes.filter((n) => !n.grad) : nodes;
  const grad = training ? nodes.filter((n) => n.grad) : [];
  const inForward = new Set(forward);

  // Gradient region at the full batch: every tensor must fit one binding.
  for (const n of grad) {
    for (const t of [...n.inputs, n.output]) {
      const bytes = sizeOf(t.shape) * batch * F32;
      if (bytes > maxBinding) {
        throw new Error(`${n.layer.name}: a batch of ${batch} needs a ${fmtBytes(bytes)} tensor ([${batch}, ${t.shape.join(', ')}]) in a layer that needs gradients, over this device's maxStorageBufferBindingSize of ${fmtBytes(maxBinding)}. Freeze more layers (only layers before every trainable one are micro-batched), or use a smaller batch or input size.`);
      }
    }
  }
  // Forward-only region: the largest micro-batch whose tensors fit one binding.
  const widest = Math.max(sizeOf(spec.input.shape), ...forward.flatMap((n) => [n.output, ...n.inputs].map((t) => sizeOf(t.shape))));
  const microBatch = forward.length ? Math.min(batch, Math.floor(maxBinding / (widest * F32))) : batch;
  if (microBatch < 1) throw new Error(`a single image needs a ${fmtBytes(widest * F32)} tensor, over this device's maxStorageBufferBindingSize of ${fmtBytes(maxBinding)}; use a smaller input size`);
  const chunked = microBatch < batch;

  // Tensors the full-batch part reads from the forward-only part (the output too: the loss reads it).
  const boundaries: SymbolicTensor[] = [];
  const crossing = (t: SymbolicTensor) => t !== spec.input && inForward.has(nodeOf.get(t)!) && !boundaries.includes(t);
  for (const n of grad) for (const t of n.inputs) if (crossing(t)) boundaries.push(t);
  if (crossing(spec.output)) boundaries.push(spec.output);

  const inSize = sizeOf(spec.input.shape);
  const outSize = sizeOf(spec.output.shape);
  const fixed = new Map<string, number>();
  const fixedBufs = new Map<string, VBuf>();
  const fixedBuf = (name: string, floats: number) => {
    let v = fixedBufs.get(name);
    if (!v) {
      v = new VBuf(name, floats, name);
      fixedBufs.set(name, v);
      fixed.set(name, floats);
    }
    return v;
  };
  const inputBuf = fixedBuf('input', inSize * batch);
  const boundaryBuf = (t: SymbolicTensor) => fixedBuf(`boundary ${t.sourceLayer.name}`, sizeOf(t.shape) * batch);

  const pool = new SlotPool();
  const schedules = new Map<Mode, Schedule<GpuOp>>();
  const chunks = new Map<Mode, ChunkInfo>();
  const addSizes = new Set<number>();
  const B = () => {
    if (!binder) throw new Error('internal: a layout without a device has no ops');
    return binder();
  };
  fixedBuf('labels', labelSize(spec.loss, spec.output) * batch);
  if (training) fixedBuf('sample weights', batch);
  const modes: Mode[] = training ? ['train', 'eval', 'predict'] : ['predict'];
  let cacheable = forward.length > 0 && !grad.some((n) => n.inputs.includes(spec.input)) && spec.output !== spec.input;
  for (const mode of modes) {
    const s = new Schedule<GpuOp>();
    const isTrain = mode === 'train';
    const buf = new Map<SymbolicTensor, VBuf>();

    // ---- forward-only region, per micro-batch (the chunk section is repeated by the plan)
    s.forwardOnly = true;
    const chunkIn = chunked ? new VBuf('chunk input', inSize * microBatch) : inputBuf;
    buf.set(spec.input, chunkIn);
    const chunkStart = s.steps.length;
    if (chunked) s.add('chunk input', [chunkIn, inputBuf], () => []);
    const rows = chunked ? microBatch : batch;
    for (const n of forward) forwardStep(s, n, isTrain, buf, (t) => (!chunked && boundaries.includes(t) ? boundaryBuf(t) : new VBuf(`${t.sourceLayer.name} output`, sizeOf(t.shape) * rows)));
    const copies: { from: VBuf; to: VBuf; floats: number }[] = [];
    for (const t of boundaries) {
      const from = buf.get(t)!;
      // an alias of the input (a Flatten of it) is the input buffer itself: nothing to cache then
      if (from === chunkIn || from === inputBuf) { buf.set(t, inputBuf); cacheable = false; continue; }
      if (from.fixed) continue;
      const to = boundaryBuf(t); // an alias (Flatten) of a forward-only tensor, or a micro-batch piece
      copies.push({ from, to, floats: sizeOf(t.shape) });
      buf.set(t, to);
    }
    if (chunked) s.add('chunk outputs', copies.flatMap((c) => [c.from, c.to]), () => []);
    else for (const c of copies) s.add(`${c.to.label} copy`, [c.from, c.to], (get) => [B().copy(c.to.label, get(c.from), 0, get(c.to), 0, c.floats * batch * F32)]);
    chunks.set(mode, chunked ? { start: chunkStart, end: s.steps.length, copies, chunkIn } : undefined);
    buf.set(spec.input, inputBuf);
    s.forwardOnly = false;

    // ---- full-batch region
    for (const n of grad) forwardStep(s, n, isTrain, buf, (t) => new VBuf(`${t.sourceLayer.name} output`, sizeOf(t.shape) * batch));
    const logits = buf.get(spec.output)!;
    if (mode === 'predict') {
      const out = fixedBuf('output', outSize * batch);
      s.add('output', [logits, out], (get) => {
        const p = B().head?.probs(get(logits));
        return p ? [p] : [B().copy('model output', get(logits), 0, get(out), 0, outSize * batch * F32)];
      });
    } else if (mode === 'eval') {
      s.add('loss', [logits], (get) => B().head!.eval(get(logits)));
    } else {
      const dlogits = new VBuf('dlogits', outSize * batch);
      s.add('loss and dlogits', [logits, dlogits], (get) => [...B().head!.train(get(logits), get(dlogits)), ...(B().guard() ? [B().guard()!] : [])]);
      backwardSteps(s, grad, batch, buf, dlogits, spec.output, nodeOf, addSizes, B);
      s.add('optimizer updates', [], () => B().updates());
    }
    pool.assign(s);
    schedules.set(mode, s);
  }

  function forwardStep(s: Schedule<GpuOp>, n: PlanNode, train: boolean, buf: Map<SymbolicTensor, VBuf>, out: (t: SymbolicTensor) => VBuf) {
    const xs = n.inputs.map((t) => buf.get(t)!);
    if (isAliasIn(n, train)) {
      buf.set(n.output, xs[0]);
      return;
    }
    const y = out(n.output);
    buf.set(n.output, y);
    s.add(`${n.layer.name} forward`, [...xs, y], (get) => {
      const prog = B().program(n, train);
      return prog.forward({ xs: xs.map(get), y: get(y), params: B().params(n) });
    });
  }

  function backwardSteps(s: Schedule<GpuOp>, region: PlanNode[], size: number, buf: Map<SymbolicTensor, VBuf>, dlogits: VBuf, output: SymbolicTensor, nodes: Map<SymbolicTensor, PlanNode>, addSizes: Set<number>, bind: () => Binder) {
    // dT per tensor; `shared` when the buffer is also another tensor's gradient (pass-through layers)
    const grads = new Map<SymbolicTensor, { v: VBuf; shared: boolean }>([[output, { v: dlogits, shared: false }]]);
    const needs = (t: SymbolicTensor) => nodes.get(t)?.grad === true && region.includes(nodes.get(t)!);
    /** Adds `contribution` into dT: the first one becomes dT, later ones are summed in. */
    const contribute = (t: SymbolicTensor, contribution: VBuf, shared: boolean) => {
      const cur = grads.get(t);
      if (!cur) { grads.set(t, { v: contribution, shared }); return; }
      const floats = sizeOf(t.shape) * size;
      addSizes.add(floats);
      if (!cur.shared) {
        s.add(`d${t.sourceLayer.name} += contribution`, [cur.v, contribution], (get) => [bind().add(floats).accumulate({ x: get(contribution), y: get(cur.v) })]);
        return;
      }
      const sum = new VBuf(`d${t.sourceLayer.name} (sum)`, floats);
      s.add(`d${t.sourceLayer.name} = sum`, [cur.v, contribution, sum], (get) => [bind().add(floats).forward({ xs: [get(cur.v), get(contribution)], y: get(sum) })]);
      grads.set(t, { v: sum, shared: false });
    };
    for (let i = region.length - 1; i >= 0; i--) {
      const n = region[i];
      const dy = grads.get(n.output);
      if (!dy) continue; // nothing downstream needs it (cannot happen for layers on the path to the output)
      const inputGrads = n.inputs.map(needs);
      if (isAliasIn(n, true) || n.layer.passesGradient) {
        n.inputs.forEach((t, j) => { if (inputGrads[j]) contribute(t, dy.v, true); });
        if (n.layer.passesGradient && inputGrads.filter(Boolean).length > 0) grads.get(n.output)!.shared = true;
        continue;
      }
      const reads = n.layer.backwardReads({ activation: n.activation, training: true, paramGrads: n.trainable, inputGrads });
      const xs = n.inputs.map((t) => buf.get(t)!);
      const y = buf.get(n.output)!;
      const dxs = n.inputs.map((t, j) => {
        if (!inputGrads[j]) return null;
        return new VBuf(`d${t.sourceLayer.name}`, sizeOf(t.shape) * size);
      });
      s.add(`${n.layer.name} backward`, [...(reads.inputs ? xs : []), reads.output ? y : null, dy.v, ...dxs], (get) => {
        const prog = bind().program(n, true);
        if (!prog.backward) throw new Error(`internal: ${n.layer.name} has no backward pass`);
        // buffers backward does not read are passed anyway (kernels may bind them); they are not kept alive
        return prog.backward({ xs: xs.map((v) => (reads.inputs ? get(v) : get(dy.v))), y: reads.output ? get(y) : get(dy.v), dy: get(dy.v), dxs: dxs.map((v) => (v ? get(v) : null)), params: bind().params(n), grads: bind().grads(n) });
      });
      n.inputs.forEach((t, j) => { if (dxs[j]) contribute(t, dxs[j]!, false); });
    }
  }

  // ---- memory, by kind
  const params = new Set(nodes.flatMap((n) => n.members.flatMap((l) => l.params)));
  const trainParams = grad.filter((n) => n.trainable).flatMap((n) => n.layer.trainableParams);
  const weights = [...params].reduce((a, p) => a + p.size * F32, 0);
  const gradients = trainParams.reduce((a, p) => a + p.size * F32, 0);
  const optimizer = gradients * spec.optimizerSlots;
  const fixedFloats = [...fixed.entries()].filter(([k]) => k !== 'output').reduce((a, [, f]) => a + f, 0);
  const activations = (pool.totalFloats + fixedFloats) * F32;
  const staging = (2 + 3 + outSize * batch) * F32 + 4 * 16; // stats, totals, output, readback ring
  const memory: PlanMemory = { batch, microBatch, weights, gradients, optimizer, activations, staging, scratch: 0, total: weights + gradients + optimizer + activations + staging };
  return { nodes, microBatch, region: { forward, grad }, boundaries, cacheable, schedules, chunks, addSizes, pool, fixed, memory };
}

type ChunkInfo = { start: number; end: number; copies: { from: VBuf; to: VBuf; floats: number }[]; chunkIn: VBuf } | undefined;

/**
 * A compiled plan for one batch size: fixed buffers, kernels bound once, op lists for a
 * training step (one submit), an evaluation step and prediction.
 */
export class Plan {
  readonly layout: Layout;
  readonly input: GPUBuffer;
  readonly labels: GPUBuffer;
  readonly stats: GPUBuffer;
  readonly totals: GPUBuffer;
  /** predict(): the model's output (probabilities for a sigmoid/softmax head). */
  readonly probs: GPUBuffer;
  /** Tensors crossing into the gradient region, full batch: what a feature cache stores and restores. */
  boundaries: { buffer: GPUBuffer; floats: number }[] = [];
  trainOps: GpuOp[] = [];
  evalOps: GpuOp[] = [];
  predictOps: GpuOp[] = [];
  /** The same steps without the forward-only region: run after the boundaries were filled from a cache. */
  suffixTrainOps: GpuOp[] = [];
  suffixEvalOps: GpuOp[] = [];
  accumulateOps: GpuOp[] = [];
  /** Whether the forward-only region gives the same output for the same image every time (no dropout). */
  prefixDeterministic = false;
  private readonly owned: GPUBuffer[] = [];
  private readonly slots: GPUBuffer[] = [];
  private readonly fixedBuffers = new Map<string, GPUBuffer>();
  private readonly programs = new Map<string, LayerProgram>();
  private readonly destroyers: (() => void)[] = [];
  private readonly folds: { node: PlanNode; kernel: GPUBuffer; bias: GPUBuffer; versions: string }[] = [];

  /** Per-example weights of a training step (class weights; ones otherwise). */
  readonly sampleWeights: GPUBuffer | null;
  /** Whether sampleWeights holds something other than ones. */
  private weighted = false;

  private constructor(readonly gpu: Gpu, readonly spec: PlanSpec, layout: Layout, private readonly paramGrads: Map<Param, GPUBuffer>, private readonly metricCounts: MetricCounts | null) {
    this.layout = layout;
    for (const [name, floats] of layout.fixed) this.fixedBuffers.set(name, this.alloc(name, floats));
    layout.pool.sizes.forEach((floats, i) => this.slots.push(this.alloc(`slot ${i}`, floats)));
    this.input = this.fixedBuffers.get('input')!;
    this.labels = this.fixedBuffers.get('labels')!;
    this.probs = this.fixedBuffers.get('output') ?? this.alloc('output', sizeOf(spec.output.shape) * spec.batch);
    this.stats = this.alloc('stats [loss, acc]', 2);
    this.totals = this.alloc('totals [loss sum, correct, count]', 3);
    this.sampleWeights = this.fixedBuffers.get('sample weights') ?? null;
    if (this.sampleWeights) gpu.write(this.sampleWeights, new Float32Array(spec.batch).fill(1));
  }

  private alloc(label: string, floats: number): GPUBuffer {
    const buf = this.gpu.createBuffer(`plan b${this.spec.batch} ${label}`, Math.max(1, floats) * F32);
    this.owned.push(buf);
    return buf;
  }

  /** Builds kernels and op lists; `optimizer` updates trainable weights (null: no training). */
  static async build(gpu: Gpu, spec: PlanSpec, optimizer: OptimizerKernel | null, seed: number, paramGrads: Map<Param, GPUBuffer>, metricCounts: MetricCounts | null = null): Promise<Plan> {
    for (const l of spec.layers) for (const p of l.params) p.place(gpu);
    const before = gpu.memory().numBytes;
    const gradsBefore = paramGrads.size;
    let plan: Plan | null = null;
    const binder = () => plan!.binder(optimizer);
    const layout = layoutPlan(spec, binder);
    plan = new Plan(gpu, spec, layout, paramGrads, metricCounts);
    plan.seed = seed;
    await plan.compile();
    const newGrads = [...paramGrads.values()].slice(gradsBefore).reduce((a, b) => a + b.size, 0);
    plan.layout.memory.scratch = Math.max(0, gpu.memory().numBytes - before - plan.ownedBytes() - newGrads * (1 + spec.optimizerSlots));
    plan.layout.memory.total += plan.layout.memory.scratch;
    return plan;
  }

  private ownedBytes(): number {
    return this.owned.reduce((a, b) => a + b.size, 0);
  }

  private binderCache: Binder | null = null;
  private adds = new Map<number, AddKernel>();
  private head: Binder['head'] = null;

  private binder(optimizer: OptimizerKernel | null): Binder {
    if (this.binderCache) return this.binderCache;
    const plan = this;
    const b: Binder = {
      program: (node, training) => {
        const key = programKey(node, this.chunkSize ?? this.spec.batch, training);
        const p = this.programs.get(key);
        if (!p) throw new Error(`internal: program ${key} (${node.layer.name}) was not built`);
        return p;
      },
      params: (node) => {
        const f = this.folds.find((x) => x.node === node);
        return f ? [f.kernel, f.bias] : node.layer.params.map((p) => p.buffer!);
      },
      grads: (node) => node.layer.params.map((p) => (node.trainable && p.trainable ? this.gradOf(p) : null)),
      // the loss head is built after the layers' programs: read it when ops are emitted
      get head() {
        return plan.head;
      },
      guard: () => optimizer?.guard(this.stats) ?? null,
      updates: () => {
        if (!optimizer) return [];
        const targets = this.layout.region.grad.filter((n) => n.trainable).flatMap((n) => n.layer.trainableParams);
        return optimizer.updates(targets.map((p) => ({ param: p.buffer!, grad: this.gradOf(p), size: p.size, label: p.name })));
      },
      add: (size) => {
        const k = this.adds.get(size);
        if (!k) throw new Error(`internal: no add kernel of size ${size}`);
        return k;
      },
      copy: (label, src, so, dst, d, bytes) => this.gpu.copy(label, src, so, dst, d, bytes),
    };
    this.binderCache = b;
    return b;
  }

  private gradOf(p: Param): GPUBuffer {
    let g = this.paramGrads.get(p);
    if (!g) {
      g = this.gpu.createBuffer(`grad ${p.name}`, p.size * F32);
      this.paramGrads.set(p, g);
    }
    return g;
  }

  /** Gradient buffers by parameter name (tests check no frozen parameter has one). */
  get gradientBuffers(): Map<string, GPUBuffer> {
    return new Map([...this.paramGrads].map(([p, g]) => [p.name, g]));
  }

  private async compile(): Promise<void> {
    const { spec, layout, gpu } = this;
    const { batch } = spec;
    const nodeOf = new Map(layout.nodes.map((n) => [n.output, n]));
    const training = spec.loss !== null;
    // dropout in the forward-only region makes its output differ from step to step
    this.prefixDeterministic = layout.region.forward.every((n) => n.members.every((l) => l.isAlias(true) || !l.isAlias(false)));

    // ---- folded weights (frozen conv + inference BN), refreshed when either changes
    for (const n of layout.nodes) {
      if (!n.fold) continue;
      // host copies are stale once training wrote the device (a BN's moving statistics, a conv trained before it was frozen)
      for (const l of n.members) for (const p of l.params) await p.read();
      const k = n.layer.params[0];
      const f = n.fold.foldWeights(k, n.layer.params[1] ?? null)!;
      const entry = { node: n, kernel: gpu.upload(`${n.layer.name} kernel (${n.fold.name} folded)`, f.kernel), bias: gpu.upload(`${n.layer.name} bias (${n.fold.name} folded)`, f.bias), versions: this.foldVersions(n) };
      this.folds.push(entry);
      this.owned.push(entry.kernel, entry.bias);
    }

    // ---- programs for every (node, batch, mode) the schedules use
    const chunkSizes: number[] = [];
    if (layout.microBatch < batch) for (let s = 0; s < batch; s += layout.microBatch) chunkSizes.push(Math.min(layout.microBatch, batch - s));
    const forwardSet = new Set(layout.region.forward);
    const builds: Promise<void>[] = [];
    const want = (n: PlanNode, size: number, trainingMode: boolean) => {
      if (isAliasIn(n, trainingMode)) return;
      const key = programKey(n, size, trainingMode);
      if (this.programs.has(key) || this.building.has(key)) return;
      this.building.add(key);
      const flags = ctxFlags(n, nodeOf);
      const ctx: ProgramContext = {
        gpu, batch: size, inShapes: n.inputs.map((t) => t.shape), outShape: n.output.shape, training: trainingMode && training,
        activation: n.activation, folded: n.fold !== null, inputGrads: forwardSet.has(n) ? flags.inputGrads.map(() => false) : flags.inputGrads,
        paramGrads: forwardSet.has(n) ? false : flags.paramGrads, seed: this.seed + n.index - 1, // position after the input layer
        label: n.members.map((l) => l.name).join('+'),
      };
      builds.push(n.layer.createProgram(ctx).then((p) => {
        this.programs.set(key, p);
        this.destroyers.push(() => p.destroy());
      }));
    };
    const modes = training ? [true, false] : [false];
    for (const m of modes) {
      for (const n of layout.region.forward) for (const s of layout.microBatch < batch ? new Set(chunkSizes) : [batch]) want(n, s, m);
      for (const n of layout.region.grad) want(n, batch, m);
    }
    await Promise.all(builds);

    // ---- loss head, add kernels for gradient sums
    const last = layout.nodes[layout.nodes.length - 1];
    const classes = sizeOf(spec.output.shape);
    const label = `${last.layer.name} ${spec.loss ?? 'output'}`;
    if (spec.loss) {
      // training steps use the weighted pipelines (all-ones weights give bit-identical results)
      const headK = spec.loss === 'binary_crossentropy'
        ? await SigmoidBceKernel.create(gpu, { batch, label, weighted: true })
        : await SoftmaxCeKernel.create(gpu, { batch, classes, labels: spec.loss === 'categorical_crossentropy' ? 'onehot' : 'sparse', label, weighted: true });
      this.destroyers.push(() => headK.destroy());
      const specs = spec.metrics ?? [];
      const counts = this.metricCounts;
      if (specs.length && (!counts || counts.train.length !== specs.length || counts.eval.length !== specs.length)) throw new Error('internal: metric accumulators do not match the metrics');
      const metricKs = await Promise.all(specs.map((m) => m.createKernel(gpu, batch, `${label} ${m.name}`)));
      for (const k of metricKs) this.destroyers.push(() => k.destroy());
      const metricOps = (logits: GPUBuffer, weights: GPUBuffer | null, into: GPUBuffer[]) => metricKs.map((k, i) => k.accumulate({ logits, labels: this.labels, weights, counts: into[i] }));
      const probs = headK instanceof SoftmaxCeKernel
        ? (logits: GPUBuffer) => headK.probabilities({ logits, probs: this.probs })
        : await (async () => { const sk = await SigmoidKernel.create(gpu, { size: batch, label: `${last.layer.name} sigmoid` }); return (logits: GPUBuffer) => sk.forward({ x: logits, y: this.probs }); })();
      this.head = {
        train: (logits, dlogits) => [headK.lossAndGradient({ logits, labels: this.labels, dlogits, stats: this.stats, weights: this.sampleWeights! }), ...metricOps(logits, this.sampleWeights, counts?.train ?? [])],
        // Keras weighs only training data by class: validation is unweighted
        eval: (logits) => [headK.loss({ logits, labels: this.labels, stats: this.stats }), ...metricOps(logits, null, counts?.eval ?? [])],
        probs,
      };
      this.accumulateOps = [headK.accumulate({ stats: this.stats, totals: this.totals })];
    } else if (last.head?.kind === 'softmax') {
      const sm = await SoftmaxCeKernel.create(gpu, { batch, classes, labels: 'sparse', label });
      this.destroyers.push(() => sm.destroy());
      this.head = { train: () => { throw new Error('internal'); }, eval: () => { throw new Error('internal'); }, probs: (logits) => sm.probabilities({ logits, probs: this.probs }) };
    } else {
      this.head = { train: () => { throw new Error('internal'); }, eval: () => { throw new Error('internal'); }, probs: () => null };
    }
    for (const floats of layout.addSizes) {
      const k = await AddKernel.create(gpu, { size: floats, inputs: 2, label: `gradient sum (${floats} floats)` });
      this.adds.set(floats, k);
      this.destroyers.push(() => k.destroy());
    }

    // ---- emit
    const get = (v: VBuf) => (v.fixed ? this.fixedBuffers.get(v.fixed)! : this.slots[v.slot]);
    const emit = (mode: Mode): { all: GpuOp[]; suffix: GpuOp[] } => {
      const steps = layout.schedules.get(mode)!.steps;
      const chunk = layout.chunks.get(mode);
      const all: GpuOp[] = [];
      const suffix: GpuOp[] = [];
      if (chunk) {
        const inSize = sizeOf(spec.input.shape);
        let start = 0;
        for (const size of chunkSizes) {
          all.push(gpu.copy(`chunk ${start}+${size} input`, this.input, start * inSize * F32, get(chunk.chunkIn), 0, size * inSize * F32));
          for (const step of steps.slice(chunk.start, chunk.end)) all.push(...this.withChunk(size, () => step.emit(get)));
          for (const c of chunk.copies) all.push(gpu.copy(`chunk ${start}+${size} ${c.to.label}`, get(c.from), 0, get(c.to), start * c.floats * F32, size * c.floats * F32));
          start += size;
        }
      }
      for (const step of chunk ? steps.slice(chunk.end) : steps) {
        const ops = step.emit(get);
        all.push(...ops);
        if (!step.forwardOnly) suffix.push(...ops);
      }
      return { all, suffix };
    };
    if (training) {
      const t = emit('train');
      this.trainOps = t.all;
      this.suffixTrainOps = t.suffix;
      const e = emit('eval');
      this.evalOps = e.all;
      this.suffixEvalOps = e.suffix;
    }
    this.predictOps = emit('predict').all;
    this.boundaries = layout.cacheable ? layout.boundaries.map((t) => ({ buffer: this.fixedBuffers.get(`boundary ${t.sourceLayer.name}`)!, floats: sizeOf(t.shape) })) : [];
  }

  private building = new Set<string>();
  private seed = 0;
  private chunkSize: number | null = null;

  /** Emits a forward-only step for one micro-batch size (its programs are keyed by that size). */
  private withChunk(size: number, f: () => GpuOp[]): GpuOp[] {
    this.chunkSize = size;
    try {
      return f();
    } finally {
      this.chunkSize = null;
    }
  }

  private foldVersions(n: PlanNode): string {
    return n.members.flatMap((l) => l.params.map((p) => p.version)).join(',');
  }

  /** Re-folds BatchNormalization into conv weights whose sources changed (setWeights, loading). */
  refresh(): void {
    for (const f of this.folds) {
      const v = this.foldVersions(f.node);
      if (v === f.versions) continue;
      const w = f.node.fold!.foldWeights(f.node.layer.params[0], f.node.layer.params[1] ?? null)!;
      this.gpu.write(f.kernel, w.kernel);
      this.gpu.write(f.bias, w.bias);
      f.versions = v;
    }
  }

  /**
   * Writes a batch, its per-example weights for a training step (null: all ones) and the
   * per-step counters; call before submitting trainOps/evalOps.
   */
  load(x: Float32Array | null, y: Float32Array | null, step: number, weights: Float32Array | null = null): void {
    this.refresh();
    if (x) this.gpu.write(this.input, x);
    if (y) this.gpu.write(this.labels, y);
    if (this.sampleWeights && (weights || this.weighted)) {
      if (weights && weights.length !== this.spec.batch) throw new Error(`internal: ${weights.length} sample weights for a batch of ${this.spec.batch}`);
      this.gpu.write(this.sampleWeights, weights ?? new Float32Array(this.spec.batch).fill(1));
      this.weighted = !!weights;
    }
    for (const p of this.programs.values()) p.setStep?.(step);
  }

  resetTotals(): void {
    this.gpu.write(this.totals, new Float32Array(3));
  }

  destroy(): void {
    for (const d of this.destroyers) d();
    for (const b of this.owned) this.gpu.destroyBuffer(b);
  }
}
