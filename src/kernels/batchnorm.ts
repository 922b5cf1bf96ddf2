import type { Gpu, GpuOp, Pipeline } from '../gpu/index.ts';

/** BatchNormalization over the last axis of [rows, channels] (NHWC: rows = batch*H*W). */
export interface BatchNormShape {
  rows: number;
  channels: number;
  /** default 1e-3 (Keras) */
  epsilon?: number;
  /** moving = moving*momentum + batch*(1 - momentum); default 0.99 (Keras) */
  momentum?: number;
  /** with beta; default true. false: no beta (0), never bound */
  center?: boolean;
  /** with gamma; default true. false: no gamma (1), never bound */
  scale?: boolean;
  label?: string;
}

const SHADER = 'batchnorm';
const WG = 128; // WG in batchnorm.wgsl
/** Rows each reduction lane aims to cover before more row chunks (workgroups) are added. */
const ROWS_PER_LANE = 32;
/** At most this many row chunks: bounds the partials and the final merge's serial length. */
const MAX_GROUPS = 1024;

type Binding = [GPUBuffer, number]; // buffer, floats it must hold

/**
 * Keras 3 BatchNormalization (axis -1) on [rows, channels] float tensors.
 *
 * Training (trainForward / trainBackward): batch mean and biased variance over the rows, from
 * a parallel Welford pass merged with Chan's formula (stable for |mean| >> std, unlike
 * E[x^2] - E[x]^2); the moving statistics are updated in place; the backward pass is the full
 * gradient through the batch statistics. Inference or a frozen layer (inferForward /
 * inferBackward): the moving statistics, nothing updated. Inference mode with gamma/beta
 * training (Keras's base(x, training=False) with the base unfrozen): inferForward and
 * inferAffineBackward, which adds dgamma / dbeta around the moving statistics.
 *
 * center=false / scale=false: the op takes no beta / gamma (and gives no dbeta / dgamma); the
 * kernel binds its own zeros / ones instead. Every output buffer is fully overwritten by each op,
 * except movingMean / movingVar, which trainForward updates in place (replaying the op updates
 * them again, as another training step would). Input and output tensors must be distinct
 * buffers. Channels % 4 == 0 runs the elementwise passes 4 channels per invocation.
 */
export class BatchNormKernel {
  readonly shape: Readonly<Required<BatchNormShape>>;
  private readonly owned: GPUBuffer[];

  private constructor(
    private readonly gpu: Gpu,
    shape: Required<BatchNormShape>,
    private readonly pipes: Record<'statsPartial' | 'statsFinal' | 'gradPartial' | 'gradFinal' | 'inferGradFinal' | 'inferPrep' | 'inferGradPrep' | 'affine' | 'gradInput' | 'scale', Pipeline>,
    private readonly params: GPUBuffer,
    private readonly scratch: { part: GPUBuffer; coef: GPUBuffer; dgamma: GPUBuffer; dbeta: GPUBuffer; ones: GPUBuffer | null; zeros: GPUBuffer | null },
    /** Row chunks (reduction workgroups along x) and channel tiles (along y). */
    private readonly groups: number,
    private readonly tiles: number,
    private readonly vec4: boolean,
  ) {
    this.shape = shape;
    const s = scratch;
    this.owned = [params, s.part, s.coef, s.dgamma, s.dbeta, ...(s.ones ? [s.ones] : []), ...(s.zeros ? [s.zeros] : [])];
  }

  static async create(gpu: Gpu, shape: BatchNormShape): Promise<BatchNormKernel> {
    const label = shape.label ?? 'batchnorm';
    const { rows: R, channels: C } = shape;
    const epsilon = shape.epsilon ?? 1e-3;
    const momentum = shape.momentum ?? 0.99;
    const center = shape.center ?? true;
    const scale = shape.scale ?? true;
    const what = `${label}: BatchNormalization input [${R},${C}] (rows = batch*H*W, channels last)`;
    for (const [k, v] of Object.entries({ rows: R, channels: C })) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`${what}: ${k} must be a positive integer, got ${v}`);
    }
    if (!(Number.isFinite(epsilon) && epsilon > 0)) throw new Error(`${what}: epsilon must be a finite number > 0, got ${epsilon}`);
    if (!(Number.isFinite(momentum) && momentum >= 0 && momentum <= 1)) throw new Error(`${what}: momentum must be in [0, 1], got ${momentum}`);
    const bytes = R * C * 4;
    const maxBinding = gpu.limits.maxStorageBufferBindingSize;
    if (bytes > maxBinding) {
      throw new Error(`${what}: the input is ${bytes} bytes, over this adapter's maxStorageBufferBindingSize of ${maxBinding} bytes; use a smaller batch (or micro-batches) or a smaller input size`);
    }
    if (R * C >= 2 ** 32) throw new Error(`${what}: more than 2^32 elements`);

    // Reduction layout: TC channels x TR = WG/TC row lanes per workgroup; TC a power of two so
    // the lanes tree-merge.
    const TC = Math.min(32, 2 ** Math.ceil(Math.log2(C)));
    const TR = WG / TC;
    const maxDim = gpu.limits.maxComputeWorkgroupsPerDimension;
    const tiles = Math.ceil(C / TC);
    if (tiles > maxDim) throw new Error(`${what}: ${C} channels need ${tiles} workgroups in one dimension, over this adapter's maxComputeWorkgroupsPerDimension of ${maxDim}`);
    let groups = Math.max(1, Math.min(MAX_GROUPS, maxDim, Math.ceil(R / (TR * ROWS_PER_LANE))));
    const chunk = Math.ceil(R / groups);
    groups = Math.ceil(R / chunk); // every chunk non-empty

    const vec4 = C % 4 === 0;
    const sfx = vec4 ? '4' : '';
    const reduce = (entryPoint: string) => gpu.pipeline(SHADER, { entryPoint, constants: { TC } });
    const plain = (entryPoint: string) => gpu.pipeline(SHADER, { entryPoint });
    const [statsPartial, statsFinal, gradPartial, gradFinal, inferGradFinal, inferPrep, inferGradPrep, affine, gradInput, scaleP] = await Promise.all([
      reduce('stats_partial'), reduce('stats_final'), reduce('grad_partial'), reduce('grad_final'), reduce('infer_grad_final'),
      plain('infer_prep'), plain('infer_grad_prep'), plain(`affine${sfx}`), plain(`grad_input${sfx}`), plain(`scale${sfx}`),
    ]);

    const data = new ArrayBuffer(48);
    new Uint32Array(data, 0, 8).set([R, C, chunk, groups, R * C, vec4 ? (R * C) / 4 : 0, vec4 ? C / 4 : 0, 0]);
    new Float32Array(data, 32, 2).set([epsilon, momentum]);
    const params = gpu.uniform(`${label} batchnorm.params`, new Uint32Array(data));
    const scratch = {
      part: gpu.createBuffer(`${label} batchnorm.partials`, groups * C * 8),
      coef: gpu.createBuffer(`${label} batchnorm.coef`, C * 16),
      // stand-ins for dgamma / dbeta outputs the caller does not want (or that do not exist)
      dgamma: gpu.createBuffer(`${label} batchnorm.dgamma scratch`, C * 4),
      dbeta: gpu.createBuffer(`${label} batchnorm.dbeta scratch`, C * 4),
      ones: scale ? null : gpu.upload(`${label} batchnorm.ones`, new Float32Array(C).fill(1)),
      zeros: center ? null : gpu.createBuffer(`${label} batchnorm.zeros`, C * 4), // zero-filled by WebGPU
    };
    const full = { rows: R, channels: C, epsilon, momentum, center, scale, label };
    return new BatchNormKernel(gpu, full,
      { statsPartial, statsFinal, gradPartial, gradFinal, inferGradFinal, inferPrep, inferGradPrep, affine, gradInput, scale: scaleP },
      params, scratch, groups, tiles, vec4);
  }

  /** rows * channels: the floats x, y, dy and dx hold. */
  get size(): number {
    return this.shape.rows * this.shape.channels;
  }

  private name(pass: string): string {
    const s = this.shape;
    return `${s.label} batchnorm.${pass} rows=${s.rows} C=${s.channels}${s.center ? '' : ' center=false'}${s.scale ? '' : ' scale=false'}`;
  }

  /** Checks sizes and distinctness of the caller's buffers. */
  private check(pass: string, buffers: Record<string, GPUBuffer>, sizes: Record<string, number>): void {
    const seen = new Map<GPUBuffer, string>();
    for (const [role, buffer] of Object.entries(buffers)) {
      const floats = sizes[role];
      if (buffer.size < floats * 4) {
        throw new Error(`${this.name(pass)}: buffer '${role}' (${buffer.label}) is ${buffer.size} bytes, needs ${floats * 4}`);
      }
      const other = seen.get(buffer);
      if (other) throw new Error(`${this.name(pass)}: '${other}' and '${role}' are the same buffer (${buffer.label}); pass distinct buffers`);
      seen.set(buffer, role);
    }
  }

  /** gamma / beta as the op's caller must give them: required with scale / center, else absent. */
  private affineParams(pass: string, gamma: GPUBuffer | undefined, beta: GPUBuffer | undefined, needBeta: boolean): { gamma: GPUBuffer; beta: GPUBuffer | null } {
    const s = this.shape;
    const param = (name: string, given: GPUBuffer | undefined, wanted: boolean, option: string, stand: GPUBuffer | null): GPUBuffer => {
      if (wanted && !given) throw new Error(`${this.name(pass)}: '${name}' is required (${option}=true)`);
      if (!wanted && given) throw new Error(`${this.name(pass)}: '${name}' given but the layer has ${option}=false (no ${name})`);
      return given ?? stand!;
    };
    return {
      gamma: param('gamma', gamma, s.scale, 'scale', this.scratch.ones),
      beta: needBeta ? param('beta', beta, s.center, 'center', this.scratch.zeros) : null,
    };
  }

  private bind(pass: string, pipeline: Pipeline, buffers: Record<string, Binding>): GPUBindGroup {
    const res: Record<string, GPUBuffer | { buffer: GPUBuffer; size: number }> = { p: this.params };
    for (const [role, [buffer, floats]] of Object.entries(buffers)) res[role] = { buffer, size: floats * 4 };
    return this.gpu.bindGroup(pipeline, res, this.name(pass));
  }

  private elementwise(pass: string, pipeline: Pipeline, tensors: Record<string, GPUBuffer>): GpuOp {
    const n = this.vec4 ? this.size / 4 : this.size;
    const b: Record<string, Binding> = { coef: [this.scratch.coef, this.shape.channels * 4] };
    for (const [role, buffer] of Object.entries(tensors)) b[this.vec4 ? `${role}4` : role] = [buffer, this.size];
    const bg = this.bind(pass, pipeline, b);
    return this.gpu.dispatch(this.name(pass), pipeline, bg, this.gpu.grid(Math.ceil(n / WG)));
  }

  private seq(pass: string, ops: GpuOp[]): GpuOp {
    return { label: this.name(pass), encode: (encoder) => { for (const op of ops) op.encode(encoder); } };
  }

  /**
   * Training forward: y [rows, C] = gamma*(x - mean)*invStd + beta with the batch mean and
   * invStd = 1/sqrt(var + epsilon) (biased variance over the rows). mean and invStd [C] are
   * overwritten (saved for trainBackward); movingMean and movingVar [C] are updated in place.
   */
  trainForward(b: { x: GPUBuffer; gamma?: GPUBuffer; beta?: GPUBuffer; y: GPUBuffer; mean: GPUBuffer; invStd: GPUBuffer; movingMean: GPUBuffer; movingVar: GPUBuffer }): GpuOp {
    const pass = 'trainForward';
    const C = this.shape.channels;
    const { gamma, beta } = this.affineParams(pass, b.gamma, b.beta, true);
    const given: Record<string, GPUBuffer> = { x: b.x, y: b.y, mean: b.mean, invStd: b.invStd, movingMean: b.movingMean, movingVar: b.movingVar };
    if (b.gamma) given.gamma = b.gamma;
    if (b.beta) given.beta = b.beta;
    this.check(pass, given, { x: this.size, y: this.size, mean: C, invStd: C, movingMean: C, movingVar: C, gamma: C, beta: C });
    const { part, coef } = this.scratch;
    const partial = this.bind(pass, this.pipes.statsPartial, { x: [b.x, this.size], part: [part, this.groups * C * 2] });
    const final = this.bind(pass, this.pipes.statsFinal, {
      part: [part, this.groups * C * 2], gamma: [gamma, C], beta: [beta!, C], mean: [b.mean, C], invStd: [b.invStd, C],
      movingMean: [b.movingMean, C], movingVar: [b.movingVar, C], coef: [coef, C * 4],
    });
    return this.seq(pass, [
      this.gpu.dispatch(this.name(`${pass} stats`), this.pipes.statsPartial, partial, [this.groups, this.tiles]),
      this.gpu.dispatch(this.name(`${pass} stats merge`), this.pipes.statsFinal, final, [this.tiles]),
      this.elementwise(pass, this.pipes.affine, { x: b.x, y: b.y }),
    ]);
  }

  /** Inference (or frozen) forward: y = gamma*(x - movingMean)/sqrt(movingVar + epsilon) + beta; nothing updated. */
  inferForward(b: { x: GPUBuffer; gamma?: GPUBuffer; beta?: GPUBuffer; movingMean: GPUBuffer; movingVar: GPUBuffer; y: GPUBuffer }): GpuOp {
    const pass = 'inferForward';
    const C = this.shape.channels;
    const { gamma, beta } = this.affineParams(pass, b.gamma, b.beta, true);
    const given: Record<string, GPUBuffer> = { x: b.x, y: b.y, movingMean: b.movingMean, movingVar: b.movingVar };
    if (b.gamma) given.gamma = b.gamma;
    if (b.beta) given.beta = b.beta;
    this.check(pass, given, { x: this.size, y: this.size, movingMean: C, movingVar: C, gamma: C, beta: C });
    const prep = this.bind(pass, this.pipes.inferPrep, {
      movingMean: [b.movingMean, C], movingVar: [b.movingVar, C], gamma: [gamma, C], beta: [beta!, C], coef: [this.scratch.coef, C * 4],
    });
    return this.seq(pass, [
      this.gpu.dispatch(this.name(`${pass} coefficients`), this.pipes.inferPrep, prep, this.gpu.grid(Math.ceil(C / WG))),
      this.elementwise(pass, this.pipes.affine, { x: b.x, y: b.y }),
    ]);
  }

  /**
   * Training backward through the batch statistics, from the x, mean and invStd of
   * trainForward: with xhat = (x - mean)*invStd and N = rows, dbeta = sum(dy),
   * dgamma = sum(dy*xhat) (per channel, over the rows), dx = gamma*invStd/N*(N*dy - dbeta -
   * xhat*dgamma). dx, dgamma and dbeta are overwritten; dgamma / dbeta may be omitted.
   */
  trainBackward(b: { x: GPUBuffer; dy: GPUBuffer; gamma?: GPUBuffer; mean: GPUBuffer; invStd: GPUBuffer; dx: GPUBuffer; dgamma?: GPUBuffer; dbeta?: GPUBuffer }): GpuOp {
    const pass = 'trainBackward';
    const s = this.shape;
    const C = s.channels;
    const { gamma } = this.affineParams(pass, b.gamma, undefined, false);
    if (!s.scale && b.dgamma) throw new Error(`${this.name(pass)}: 'dgamma' given but the layer has scale=false (no gamma)`);
    if (!s.center && b.dbeta) throw new Error(`${this.name(pass)}: 'dbeta' given but the layer has center=false (no beta)`);
    const given: Record<string, GPUBuffer> = { x: b.x, dy: b.dy, mean: b.mean, invStd: b.invStd, dx: b.dx };
    if (b.gamma) given.gamma = b.gamma;
    if (b.dgamma) given.dgamma = b.dgamma;
    if (b.dbeta) given.dbeta = b.dbeta;
    this.check(pass, given, { x: this.size, dy: this.size, dx: this.size, mean: C, invStd: C, gamma: C, dgamma: C, dbeta: C });
    const { part, coef } = this.scratch;
    const partial = this.bind(pass, this.pipes.gradPartial, { x: [b.x, this.size], dy: [b.dy, this.size], mean: [b.mean, C], part: [part, this.groups * C * 2] });
    const final = this.bind(pass, this.pipes.gradFinal, {
      part: [part, this.groups * C * 2], gamma: [gamma, C], mean: [b.mean, C], invStd: [b.invStd, C],
      dgamma: [b.dgamma ?? this.scratch.dgamma, C], dbeta: [b.dbeta ?? this.scratch.dbeta, C], coef: [coef, C * 4],
    });
    return this.seq(pass, [
      this.gpu.dispatch(this.name(`${pass} sums`), this.pipes.gradPartial, partial, [this.groups, this.tiles]),
      this.gpu.dispatch(this.name(`${pass} sums merge`), this.pipes.gradFinal, final, [this.tiles]),
      this.elementwise(pass, this.pipes.gradInput, { x: b.x, dy: b.dy, dx: b.dx }),
    ]);
  }

  /** Inference (frozen) backward: dx = dy*gamma/sqrt(movingVar + epsilon), overwritten. */
  inferBackward(b: { dy: GPUBuffer; gamma?: GPUBuffer; movingVar: GPUBuffer; dx: GPUBuffer }): GpuOp {
    const pass = 'inferBackward';
    const C = this.shape.channels;
    const { gamma } = this.affineParams(pass, b.gamma, undefined, false);
    const given: Record<string, GPUBuffer> = { dy: b.dy, dx: b.dx, movingVar: b.movingVar };
    if (b.gamma) given.gamma = b.gamma;
    this.check(pass, given, { dy: this.size, dx: this.size, movingVar: C, gamma: C });
    const prep = this.bind(pass, this.pipes.inferGradPrep, { movingVar: [b.movingVar, C], gamma: [gamma, C], coef: [this.scratch.coef, C * 4] });
    return this.seq(pass, [
      this.gpu.dispatch(this.name(`${pass} coefficients`), this.pipes.inferGradPrep, prep, this.gpu.grid(Math.ceil(C / WG))),
      this.elementwise(pass, this.pipes.scale, { dy: b.dy, dx: b.dx }),
    ]);
  }

  /**
   * Inference-mode backward of a layer whose gamma / beta train (moving statistics fixed, so
   * no gradient through them): with sd = sqrt(movingVar + epsilon), dx = dy*gamma/sd,
   * dgamma = sum(dy*(x - movingMean))/sd, dbeta = sum(dy) (per channel, over the rows). Each
   * given output is overwritten; dx, dgamma and dbeta may each be omitted, not all three.
   * dx is bit-identical to inferBackward's.
   */
  inferAffineBackward(b: { x: GPUBuffer; dy: GPUBuffer; gamma?: GPUBuffer; movingMean: GPUBuffer; movingVar: GPUBuffer; dx?: GPUBuffer; dgamma?: GPUBuffer; dbeta?: GPUBuffer }): GpuOp {
    const pass = 'inferAffineBackward';
    const s = this.shape;
    const C = s.channels;
    const { gamma } = this.affineParams(pass, b.gamma, undefined, false);
    if (!s.scale && b.dgamma) throw new Error(`${this.name(pass)}: 'dgamma' given but the layer has scale=false (no gamma)`);
    if (!s.center && b.dbeta) throw new Error(`${this.name(pass)}: 'dbeta' given but the layer has center=false (no beta)`);
    if (!b.dx && !b.dgamma && !b.dbeta) throw new Error(`${this.name(pass)}: no output given; pass at least one of dx, dgamma, dbeta`);
    const given: Record<string, GPUBuffer> = { x: b.x, dy: b.dy, movingMean: b.movingMean, movingVar: b.movingVar };
    if (b.gamma) given.gamma = b.gamma;
    if (b.dx) given.dx = b.dx;
    if (b.dgamma) given.dgamma = b.dgamma;
    if (b.dbeta) given.dbeta = b.dbeta;
    this.check(pass, given, { x: this.size, dy: this.size, dx: this.size, movingMean: C, movingVar: C, gamma: C, dgamma: C, dbeta: C });
    const { part, coef } = this.scratch;
    // grad_partial's sums around `mean`: here the moving mean (read only, though bound read_write)
    const partial = this.bind(pass, this.pipes.gradPartial, { x: [b.x, this.size], dy: [b.dy, this.size], mean: [b.movingMean, C], part: [part, this.groups * C * 2] });
    const final = this.bind(pass, this.pipes.inferGradFinal, {
      part: [part, this.groups * C * 2], gamma: [gamma, C], movingVar: [b.movingVar, C],
      dgamma: [b.dgamma ?? this.scratch.dgamma, C], dbeta: [b.dbeta ?? this.scratch.dbeta, C], coef: [coef, C * 4],
    });
    return this.seq(pass, [
      this.gpu.dispatch(this.name(`${pass} sums`), this.pipes.gradPartial, partial, [this.groups, this.tiles]),
      this.gpu.dispatch(this.name(`${pass} sums merge`), this.pipes.inferGradFinal, final, [this.tiles]),
      ...(b.dx ? [this.elementwise(pass, this.pipes.scale, { dy: b.dy, dx: b.dx })] : []),
    ]);
  }

  destroy(): void {
    for (const b of this.owned) this.gpu.destroyBuffer(b);
    this.owned.length = 0;
  }
}
