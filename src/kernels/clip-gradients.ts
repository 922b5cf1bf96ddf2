import type { Gpu, GpuOp, Pipeline } from '../gpu/index.ts';
import type { OptimizerUpdates, UpdateTarget } from './optimizer.ts';

/** Keras's gradient clipping options (at most one may be set; 0 means no clipping, as Keras). */
export interface ClipOptions {
  /** Clip each gradient tensor to this L2 norm. */
  clipnorm?: number | null;
  /** Clamp each gradient element to [-clipvalue, clipvalue]. */
  clipvalue?: number | null;
  /** Scale all gradients together so their global L2 norm is at most this. */
  globalClipnorm?: number | null;
}

export type ClipMode = 'none' | 'norm' | 'global' | 'value';

/** Value of the update shaders' CLIP override: how g is clipped before the update. */
export const CLIP_NONE = 0;
/** g * scales[k], the scale written by clip_gradients.wgsl (clipnorm, global clipnorm). */
export const CLIP_SCALE = 1;
/** clamp(g, -clipvalue, clipvalue). */
export const CLIP_VALUE = 2;

/**
 * Checks clipping options as Keras does (only one of clipnorm, clipvalue, globalClipnorm may be
 * set) and returns the active mode: Keras clips only when the value is > 0.
 */
export function resolveClip(who: string, o: ClipOptions): { mode: ClipMode; value: number } {
  const given = (['clipnorm', 'clipvalue', 'globalClipnorm'] as const).filter((k) => o[k] !== undefined && o[k] !== null);
  if (given.length > 1) {
    throw new Error(`${who}: only one of clipnorm, clipvalue and globalClipnorm can be set. Received: clipnorm=${o.clipnorm ?? null}, clipvalue=${o.clipvalue ?? null}, globalClipnorm=${o.globalClipnorm ?? null}`);
  }
  if (!given.length) return { mode: 'none', value: 0 };
  const key = given[0];
  const value = o[key] as number;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new Error(`${who}: ${key} must be a finite number >= 0 (or null for no clipping), got ${String(value)}`);
  }
  if (value === 0) return { mode: 'none', value: 0 };
  return { mode: key === 'clipnorm' ? 'norm' : key === 'globalClipnorm' ? 'global' : 'value', value };
}

const WG = 128; // the shaders' workgroup size (compatibility mode guarantees 128)
const PER = 8; // elements per invocation in clip_gradients.wgsl
const CHUNK = WG * PER;

/**
 * Clipping by L2 norm for one optimizer: per tensor (clipnorm) or over all tensors
 * (globalClipnorm). prepare() records the norm passes for a step's gradients and returns the
 * buffer of per-tensor scales the update kernels multiply g by. For clipvalue and no clipping
 * there are no passes; the scales buffer is a placeholder the shaders do not read.
 */
export class GradientClipping {
  readonly mode: ClipMode;
  readonly value: number;
  private readonly owned: GPUBuffer[] = [];
  private placeholder: GPUBuffer | null = null;

  private constructor(
    private readonly gpu: Gpu,
    private readonly who: string,
    clip: { mode: ClipMode; value: number },
    private readonly pipelines: { partial: Pipeline; partial4: Pipeline; finish: Pipeline } | null,
  ) {
    this.mode = clip.mode;
    this.value = clip.value;
  }

  static async create(gpu: Gpu, who: string, options: ClipOptions): Promise<GradientClipping> {
    const clip = resolveClip(who, options);
    let pipelines = null;
    if (clip.mode === 'norm' || clip.mode === 'global') {
      const [partial, partial4, finish] = await Promise.all([
        gpu.pipeline('clip_gradients', { entryPoint: 'partial' }),
        gpu.pipeline('clip_gradients', { entryPoint: 'partial4' }),
        gpu.pipeline('clip_gradients', { entryPoint: clip.mode === 'norm' ? 'finish_each' : 'finish_global' }),
      ]);
      pipelines = { partial, partial4, finish };
    }
    return new GradientClipping(gpu, who, clip, pipelines);
  }

  /** The CLIP override for the update shaders. */
  get constant(): number {
    return this.mode === 'norm' || this.mode === 'global' ? CLIP_SCALE : this.mode === 'value' ? CLIP_VALUE : CLIP_NONE;
  }

  /** The clamp bound for the update shaders' uniform (0 unless clipvalue). */
  get clipvalue(): number {
    return this.mode === 'value' ? this.value : 0;
  }

  /** The norm passes for these gradients (none unless clipping by norm) and the scales they write, one per target. */
  prepare(targets: UpdateTarget[]): { ops: GpuOp[]; scales: GPUBuffer } {
    const gpu = this.gpu;
    if (!this.pipelines) {
      this.placeholder ??= this.keep(gpu.upload(`${this.who}.clip unused`, new Float32Array([1])));
      return { ops: [], scales: this.placeholder };
    }
    const { partial, partial4, finish } = this.pipelines;
    let total = 0;
    const ranges = new Uint32Array(targets.length * 2);
    const plans = targets.map((t, k) => {
      const vec4 = t.size % 4 === 0;
      const n = vec4 ? t.size / 4 : t.size;
      const count = Math.max(1, Math.ceil(n / CHUNK));
      ranges.set([total, count], 2 * k);
      const p = { t, vec4, n, count, offset: total };
      total += count;
      return p;
    });
    const label = `${this.who}.clip ${this.mode === 'norm' ? 'clipnorm' : 'globalClipnorm'}`;
    const partials = this.keep(gpu.createBuffer(`${label} partials`, total * 4));
    const scales = this.keep(gpu.createBuffer(`${label} scales`, targets.length * 4));
    const ops: GpuOp[] = plans.map((p) => {
      const pipeline = p.vec4 ? partial4 : partial;
      const shape = this.keep(gpu.uniform(`${label} shape ${p.t.label}`, new Uint32Array([p.n, p.offset, p.count, 0])));
      const bg = gpu.bindGroup(pipeline, { part: shape, [p.vec4 ? 'grad4' : 'grad']: p.t.grad, partials });
      return gpu.dispatch(`${label} sum of squares ${p.t.label} n=${p.t.size}`, pipeline, bg, gpu.grid(p.count));
    });
    const fin = new ArrayBuffer(16);
    new Float32Array(fin, 0, 1)[0] = this.value;
    new Uint32Array(fin, 4, 2).set([targets.length, total]);
    const finU = this.keep(gpu.uniform(`${label} finish`, new Uint8Array(fin)));
    if (this.mode === 'norm') {
      const r = this.keep(gpu.upload(`${label} ranges`, ranges));
      const bg = gpu.bindGroup(finish, { fin: finU, ranges: r, partials, scales });
      ops.push(gpu.dispatch(`${label} norms of ${targets.length} tensors`, finish, bg, [targets.length]));
    } else {
      const bg = gpu.bindGroup(finish, { fin: finU, partials, scales });
      ops.push(gpu.dispatch(`${label} global norm of ${targets.length} tensors`, finish, bg, [1]));
    }
    return { ops, scales };
  }

  private keep(b: GPUBuffer): GPUBuffer {
    this.owned.push(b);
    return b;
  }

  destroy(): void {
    for (const b of this.owned) this.gpu.destroyBuffer(b);
    this.owned.length = 0;
    this.placeholder = null;
  }
}

/** How an optimizer's learning rate is given to its kernels: a constant, or the rate of each iteration. */
export interface LearningRateSource {
  learningRate?: number;
  /** The learning rate for the update at `iteration` (schedules, a settable rate); overrides learningRate. */
  learningRateAt?: (iteration: number) => number;
}

/**
 * The part shared by the elementwise optimizer kernels (SGD, Adam, RMSprop): per-weight state
 * buffers (zeroed on first use, shared by every updates() call naming the same param), clipping
 * passes first, then one in-place update dispatch per weight (vec4 path when size % 4 == 0).
 * Subclasses write their hyperparameter uniform in setIteration.
 */
export abstract class ElementwiseUpdates implements OptimizerUpdates {
  private readonly states = new Map<GPUBuffer, GPUBuffer[]>();
  private readonly owned: GPUBuffer[] = [];

  protected constructor(
    protected readonly gpu: Gpu,
    /** e.g. 'Adam' (errors, labels) */
    protected readonly who: string,
    private readonly pipeline: Pipeline,
    private readonly pipeline4: Pipeline,
    private readonly halt: GPUBuffer,
    protected readonly clipping: GradientClipping,
    /** The hyperparameter uniform, bound as `hyper`. */
    protected readonly hyper: GPUBuffer,
    /** State slots, Keras's variable order; also the WGSL names of the state buffers (`<name>`, `<name>4`). */
    readonly stateNames: string[],
    private readonly lr: LearningRateSource,
    /** State buffers the shader declares but this configuration never touches: bound to small placeholders. */
    unusedSlots: string[] = [],
  ) {
    for (const name of unusedSlots) this.placeholders.set(name, this.keep(gpu.createBuffer(`${who}.${name} (unused)`, 16)));
  }

  private readonly placeholders = new Map<string, GPUBuffer>();

  private keep(b: GPUBuffer): GPUBuffer {
    this.owned.push(b);
    return b;
  }

  abstract setIteration(iteration: number): void;

  /** The learning rate for the update at `iteration`, checked (a schedule may return anything). */
  learningRateAt(iteration: number): number {
    const lr = this.lr.learningRateAt ? this.lr.learningRateAt(iteration) : (this.lr.learningRate ?? 0);
    if (!Number.isFinite(lr) || lr < 0) {
      throw new Error(`${this.who}: the learning rate for iteration ${iteration} is ${lr}; it must be a finite number >= 0 (check the learning-rate schedule or the value set)`);
    }
    return lr;
  }

  protected static checkIteration(who: string, iteration: number): void {
    if (!Number.isInteger(iteration) || iteration < 0) throw new Error(`${who}: setIteration needs an integer >= 0 (0 for the first update), got ${iteration}`);
  }

  updates(targets: UpdateTarget[]): GpuOp[] {
    for (const t of targets) {
      if (!Number.isInteger(t.size) || t.size <= 0 || t.size * 4 > t.param.size || t.size * 4 > t.grad.size) {
        throw new Error(`${this.who}: weight ${t.label} has size ${t.size} floats but its buffers hold ${t.param.size / 4} (param) and ${t.grad.size / 4} (gradient) floats`);
      }
    }
    const { ops, scales } = this.clipping.prepare(targets);
    targets.forEach((t, k) => ops.push(this.dispatch(t, k, scales)));
    return ops;
  }

  private dispatch(t: UpdateTarget, k: number, scales: GPUBuffer): GpuOp {
    const gpu = this.gpu;
    const vec4 = t.size % 4 === 0; // 16-byte loads: much faster on CPU adapters
    const n = vec4 ? t.size / 4 : t.size;
    const sfx = vec4 ? '4' : '';
    const pipeline = vec4 ? this.pipeline4 : this.pipeline;
    const shape = this.keep(gpu.uniform(`${this.who}.shape ${t.label}`, new Uint32Array([n, k, 0, 0])));
    const resources: Record<string, GPUBuffer> = { shape, hyper: this.hyper, [`param${sfx}`]: t.param, [`grad${sfx}`]: t.grad, halt: this.halt, gscale: scales };
    let state = this.states.get(t.param);
    if (!state) {
      state = this.stateNames.map((name) => gpu.createBuffer(`${this.who}.${name} ${t.label}`, t.size * 4)); // zero-filled by WebGPU
      this.states.set(t.param, state);
    }
    this.stateNames.forEach((name, i) => { resources[`${name}${sfx}`] = state[i]; });
    for (const [name, b] of this.placeholders) resources[`${name}${sfx}`] = b;
    const [x, y] = gpu.grid(Math.ceil(n / WG));
    return gpu.dispatch(`${this.who} ${t.label} n=${t.size}`, pipeline, gpu.bindGroup(pipeline, resources), [x, y]);
  }

  /** A parameter's state buffers in stateNames order; empty before its first update op exists. */
  stateOf(param: GPUBuffer): GPUBuffer[] {
    return this.states.get(param) ?? [];
  }

  /** Every state buffer, by parameter in first-update order, slots in stateNames order. */
  get state(): GPUBuffer[] {
    return [...this.states.values()].flat();
  }

  destroy(): void {
    for (const s of this.states.values()) for (const b of s) this.gpu.destroyBuffer(b);
    this.states.clear();
    for (const b of this.owned) this.gpu.destroyBuffer(b);
    this.owned.length = 0;
    this.clipping.destroy();
    this.gpu.destroyBuffer(this.hyper);
  }
}
