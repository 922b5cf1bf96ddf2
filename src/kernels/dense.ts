import type { Gpu, GpuOp, Pipeline } from '../gpu/index.ts';
import { gemmVariant, subgroupsUsable } from './variants.ts';

export type DenseActivation = 'linear' | 'relu' | 'sigmoid';

/**
 * Which GEMM implementation to use. 'tiled' (matmul.wgsl) stages tiles in workgroup memory
 * and runs everywhere; 'subgroup' (matmul_subgroup.wgsl) broadcasts tiles through subgroup
 * registers and needs the 'subgroups' feature with subgroups of >= 8 invocations and
 * dimensions that are multiples of 4. 'auto' takes 'subgroup' wherever it applies.
 */
export type DenseGemmKind = 'auto' | 'tiled' | 'subgroup';

export interface DenseShape {
  batch: number;
  inFeatures: number;
  outFeatures: number;
  activation: DenseActivation;
  label?: string;
  /**
   * Number of K (inFeatures) splits of the forward GEMM; chosen from the shape by default.
   * 1 fuses bias + activation into the GEMM; more writes partial sums to a scratch buffer and
   * a reduce pass adds them, the bias and the activation.
   */
  splitK?: number;
  /** GEMM implementation (tests and benchmarks); default 'auto'. */
  gemm?: DenseGemmKind;
}

const ACT_CODE: Record<DenseActivation, number> = { linear: 0, relu: 1, sigmoid: 2 };
const RED_WG = 128; // workgroup size of the 1-D passes (RED_WG in matmul.wgsl)

/** How one of the three products is computed. */
interface GemmPlan {
  kind: 'tiled' | 'subgroup';
  m: number; n: number; k: number;
  /** operand layouts: a stored [K,M], b stored [N,K] */
  aT: boolean; bT: boolean;
  /** invocations per workgroup, and rows per workgroup */
  wg: number; rows: number;
  /** tiled only: K step and rows/4; subgroup only: row groups of 8 */
  bk: number; bm4: number; g: number;
  splits: number; kChunk: number;
  grid: [number, number, number];
}

/** True when this device runs matmul_subgroup.wgsl: subgroups, all of at least 8 lanes. */
export const subgroupGemmSupported = subgroupsUsable;

function planGemm(
  gpu: Gpu, kind: DenseGemmKind, m: number, n: number, k: number,
  roles: { aT: boolean; bT: boolean }, splits: number | 'auto', label = 'dense',
): GemmPlan {
  const maxInv = Math.min(256, gpu.limits.maxComputeInvocationsPerWorkgroup);
  // The subgroup kernel reads vec4s along N, along K, and along M when a is transposed.
  const aligned = n % 4 === 0 && k % 4 === 0 && (!roles.aT || m % 4 === 0);
  const useSubgroup = kind === 'subgroup' || (kind === 'auto' && gemmVariant(gpu, aligned, label) === 'subgroup');
  let wg: number; let rows: number; let bk = 4; let bm4 = 0; let g = 0; let cols: number;
  if (useSubgroup) {
    // 4 columns per invocation; the workgroup no wider than N needs (powers of two, so
    // layers share pipelines).
    wg = 8;
    while (wg < 64 && wg < maxInv && 4 * wg < n) wg *= 2;
    g = roles.aT ? 4 : Math.min(4, Math.ceil(m / 8)); // (unused when a is transposed)
    rows = roles.aT ? 32 : 8 * g;
    cols = 4 * wg;
  } else {
    // Rows per tile follow M (the batch; padded rows are wasted work), one column per invocation.
    bm4 = Math.min(8, Math.ceil(m / 4));
    rows = 4 * bm4;
    wg = 64;
    while (wg > 8 && wg / 2 >= n) wg /= 2;
    wg = Math.min(wg, maxInv);
    bk = 32;
    cols = wg;
  }
  const tiles = Math.ceil(m / rows) * Math.ceil(n / cols);
  let s = 1;
  if (splits === 'auto') {
    // Few output tiles and a long K (32 x 39424 -> 256 is 1 tile): split K so there are
    // enough workgroups for every core / SM, keeping each chunk long enough to amortise the
    // partial sums. A CPU adapter (2+ cores) needs a handful; a GPU needs hundreds.
    const target = gpu.adapter.isFallbackAdapter ? 16 : 128;
    s = Math.max(1, Math.min(Math.ceil(target / tiles), Math.floor(k / 512)));
  } else {
    s = splits;
  }
  const kChunk = Math.ceil(Math.ceil(k / s) / bk) * bk;
  const nSplits = Math.ceil(k / kChunk);
  return {
    kind: useSubgroup ? 'subgroup' : 'tiled', m, n, k, ...roles, wg, rows, bk, bm4, g,
    splits: nSplits, kChunk, grid: [Math.ceil(n / cols), Math.ceil(m / rows), nSplits],
  };
}

/**
 * A plain c[M,N] = a[M,K] . b[K,N] by matmul_subgroup.wgsl (no bias, no split), for other kernels'
 * GEMMs (Winograd's 16 per convolution): its pipeline, dims uniform and grid. Needs
 * subgroupsUsable(gpu) and N, K multiples of 4.
 */
export async function plainSubgroupGemm(gpu: Gpu, m: number, n: number, k: number, label: string): Promise<{ pipeline: Pipeline; dims: GPUBuffer; grid: [number, number, number] }> {
  const plan = planGemm(gpu, 'subgroup', m, n, k, { aT: false, bT: false }, 1, label);
  const pipeline = await gemmPipeline(gpu, plan, null);
  return { pipeline, dims: gpu.uniform(`${label} gemm dims`, dimsData(plan)), grid: plan.grid };
}

/** The GEMM's pipeline; `act` matters only with the bias + activation epilogue. */
function gemmPipeline(gpu: Gpu, p: GemmPlan, epilogue: { act: number } | null): Promise<Pipeline> {
  const roles = { A_T: p.aT ? 1 : 0, B_T: p.bT ? 1 : 0, ACT: epilogue?.act ?? 0, EPILOGUE: epilogue ? 1 : 0 };
  if (p.kind === 'subgroup') {
    return gpu.pipeline('matmul_subgroup', { entryPoint: 'gemm', constants: { WG: p.wg, G: p.g, ...roles } });
  }
  return gpu.pipeline('matmul', { entryPoint: 'gemm', constants: { WG: p.wg, BM4: p.bm4, BK: p.bk, ...roles } });
}

function dimsData(p: GemmPlan): Uint32Array {
  return new Uint32Array([p.m, p.n, p.k, p.kChunk, p.splits, 0, 0, 0]);
}

interface Gemm { plan: GemmPlan; dims: GPUBuffer; pipeline: Pipeline }
type Operand = [role: string, buffer: GPUBuffer, floats: number];

/** The [batch, out] elementwise / column passes around the backward GEMMs. */
interface DzPasses {
  dims: GPUBuffer;                 // M = batch, N = out
  activation: Pipeline | null;     // dz = dy * act'(y); null for linear (dz = dy)
  columnSum: Pipeline;             // db = column sums of dz
}

/**
 * A Keras Dense layer's kernels: y = act(x·w + b) with x [B,in], w [in,out] (Keras layout),
 * b [out], y [B,out]; and its input, weight and bias gradients. All three products are GEMMs
 * (matmul.wgsl / matmul_subgroup.wgsl); the forward splits K when the output is too small to
 * fill the device (the 32 x 39424 -> 256 layer is a single output tile). The backward passes
 * first form dz = dy * act'(y) (from y: relu y > 0, sigmoid y(1-y)) in a [B,out] scratch buffer.
 */
export class DenseKernel {
  readonly shape: Readonly<DenseShape>;
  readonly label: string;
  private readonly owned: GPUBuffer[];
  private readonly partials: GPUBuffer | null = null;
  private readonly dz: GPUBuffer | null = null;

  private constructor(
    private readonly gpu: Gpu,
    shape: DenseShape,
    private readonly fwd: Gemm & { reduce: Pipeline | null },
    private readonly gin: Gemm,
    private readonly gw: Gemm,
    private readonly dzPasses: DzPasses,
  ) {
    this.shape = { ...shape };
    this.label = shape.label ?? 'dense';
    this.owned = [fwd.dims, gin.dims, gw.dims, dzPasses.dims];
    const { batch: B, outFeatures: O } = shape;
    const p = fwd.plan;
    if (p.splits > 1) this.partials = gpu.createBuffer(`${this.label} dense.forward split-K partials`, p.splits * B * O * 4);
    if (dzPasses.activation) this.dz = gpu.createBuffer(`${this.label} dense dz`, B * O * 4);
    for (const b of [this.partials, this.dz]) if (b) this.owned.push(b);
  }

  static async create(gpu: Gpu, shape: DenseShape): Promise<DenseKernel> {
    const label = shape.label ?? 'dense';
    const { batch: B, inFeatures: I, outFeatures: O, activation } = shape;
    const what = `${label}: Dense batch=${B} in=${I} out=${O} activation=${activation}`;
    for (const [k, v] of Object.entries({ batch: B, inFeatures: I, outFeatures: O })) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`${what}: ${k} must be a positive integer, got ${v}`);
    }
    if (!(activation in ACT_CODE)) throw new Error(`${what}: activation must be 'linear', 'relu' or 'sigmoid', got '${activation}'`);
    if (shape.splitK !== undefined && (!Number.isInteger(shape.splitK) || shape.splitK < 1)) {
      throw new Error(`${what}: splitK must be a positive integer, got ${shape.splitK}`);
    }
    const kind = shape.gemm ?? 'auto';
    if (kind === 'subgroup') {
      if (!subgroupGemmSupported(gpu)) throw new Error(`${what}: gemm 'subgroup' needs the 'subgroups' feature with subgroups of at least 8 invocations`);
      if (B % 4 || I % 4 || O % 4) throw new Error(`${what}: gemm 'subgroup' needs batch, in and out to be multiples of 4`);
    }

    const fwdPlan = planGemm(gpu, kind, B, O, I, { aT: false, bT: false }, shape.splitK ?? 'auto', label);
    const ginPlan = planGemm(gpu, kind, B, I, O, { aT: false, bT: true }, 1, label); // dx = dz·wᵀ
    const gwPlan = planGemm(gpu, kind, I, O, B, { aT: true, bT: false }, 1, label);  // dw = xᵀ·dz
    const kinds = [fwdPlan.kind, ginPlan.kind, gwPlan.kind];
    gpu.kernelChoices.set(label, `dense ${kinds.every((k) => k === kinds[0]) ? kinds[0] : `forward ${kinds[0]}, input gradient ${kinds[1]}, weight gradient ${kinds[2]}`}`);

    const maxBinding = gpu.limits.maxStorageBufferBindingSize;
    const tensors: Record<string, number> = {
      'x [batch,in]': B * I, 'w [in,out]': I * O, 'y [batch,out]': B * O,
      'split-K partials': fwdPlan.splits * B * O,
    };
    for (const [name, n] of Object.entries(tensors)) {
      if (n * 4 > maxBinding) {
        throw new Error(`${what}: ${name} is ${n * 4} bytes, over this adapter's maxStorageBufferBindingSize of ${maxBinding} bytes; use a smaller batch or a smaller layer`);
      }
    }
    const maxWg = gpu.limits.maxComputeWorkgroupsPerDimension;
    for (const [name, p] of [['forward', fwdPlan], ['backwardInput', ginPlan], ['backwardWeights', gwPlan]] as const) {
      if (p.grid.some((d) => d > maxWg)) {
        throw new Error(`${what}: the ${name} GEMM needs ${p.grid.join('x')} workgroups, over maxComputeWorkgroupsPerDimension ${maxWg}`);
      }
    }

    const act = ACT_CODE[activation];
    const split = fwdPlan.splits > 1;
    const [fGemm, fReduce, iGemm, wGemm, actBack, colSum] = await Promise.all([
      gemmPipeline(gpu, fwdPlan, split ? null : { act }),
      split ? gpu.pipeline('matmul', { entryPoint: 'splitk_reduce', constants: { ACT: act } }) : Promise.resolve(null),
      gemmPipeline(gpu, ginPlan, null),
      gemmPipeline(gpu, gwPlan, null),
      act ? gpu.pipeline('matmul', { entryPoint: 'activation_backward', constants: { ACT: act } }) : Promise.resolve(null),
      gpu.pipeline('matmul', { entryPoint: 'column_sum' }),
    ]);
    const dims = (p: GemmPlan, role: string) => gpu.uniform(`${label} dense.${role} dims`, dimsData(p));
    return new DenseKernel(
      gpu, shape,
      { plan: fwdPlan, dims: dims(fwdPlan, 'forward'), pipeline: fGemm, reduce: fReduce },
      { plan: ginPlan, dims: dims(ginPlan, 'backwardInput'), pipeline: iGemm },
      { plan: gwPlan, dims: dims(gwPlan, 'backwardWeights'), pipeline: wGemm },
      { dims: gpu.uniform(`${label} dense.dz dims`, new Uint32Array([B, O, 0, 0, 0, 0, 0, 0])), activation: actBack, columnSum: colSum },
    );
  }

  /** Floating-point operations (2 per multiply-add) of each pass. */
  flops(): { forward: number; backwardInput: number; backwardWeights: number } {
    const macs = this.shape.batch * this.shape.inFeatures * this.shape.outFeatures;
    return { forward: 2 * macs, backwardInput: 2 * macs, backwardWeights: 2 * macs };
  }

  /** How each product is computed (for logs and benchmarks). */
  describe(): string {
    const d = (name: string, p: GemmPlan) => `${name} ${p.kind} M=${p.m} N=${p.n} K=${p.k} grid=${p.grid.join('x')}${p.splits > 1 ? ` splitK=${p.splits}` : ''}`;
    return [d('forward', this.fwd.plan), d('backwardInput', this.gin.plan), d('backwardWeights', this.gw.plan)].join('; ');
  }

  /** Number of K splits the forward GEMM uses (1: bias and activation fused into the GEMM). */
  get forwardSplits(): number {
    return this.fwd.plan.splits;
  }

  private dimsText(): string {
    const s = this.shape;
    return `B=${s.batch} in=${s.inFeatures} out=${s.outFeatures} ${s.activation}`;
  }

  /** A binding of exactly `floats` elements of `buffer` (vec4 arrays then have the right length). */
  private bindingOf(role: string, buffer: GPUBuffer, floats: number): { buffer: GPUBuffer; size: number } {
    if (buffer.size < floats * 4) {
      throw new Error(`${this.label} dense ${this.dimsText()}: buffer '${role}' (${buffer.label}) is ${buffer.size} bytes, needs ${floats * 4}`);
    }
    return { buffer, size: floats * 4 };
  }

  /** One GEMM dispatch; operands are [role, buffer, floats]. */
  private gemmOp(name: string, g: Gemm, a: Operand, b: Operand, bias: Operand, c: Operand): GpuOp {
    const gpu = this.gpu;
    const bg = gpu.bindGroup(g.pipeline, {
      dims: g.dims, a: this.bindingOf(...a), b: this.bindingOf(...b), bias: this.bindingOf(...bias), c: this.bindingOf(...c),
    }, name);
    const p = g.plan;
    return gpu.dispatch(`${name} ${p.kind} gemm M=${p.m} N=${p.n} K=${p.k}${p.splits > 1 ? ` splitK=${p.splits}` : ''}`, g.pipeline, bg, p.grid);
  }

  /** y = act(x·w + b). */
  forward(bufs: { x: GPUBuffer; w: GPUBuffer; b: GPUBuffer; y: GPUBuffer }): GpuOp {
    const { batch: B, inFeatures: I, outFeatures: O } = this.shape;
    const gpu = this.gpu;
    const name = `${this.label} dense.forward ${this.dimsText()}`;
    const { plan, reduce } = this.fwd;
    const y = this.bindingOf('y', bufs.y, B * O);
    const gemm = this.gemmOp(name, this.fwd, ['x', bufs.x, B * I], ['w', bufs.w, I * O], ['b', bufs.b, O],
      this.partials ? ['partials', this.partials, plan.splits * B * O] : ['y', bufs.y, B * O]);
    if (!reduce || !this.partials) return gemm;
    const reduceOp = gpu.dispatch(`${name} splitk_reduce splits=${plan.splits}`, reduce,
      gpu.bindGroup(reduce, { dims: this.fwd.dims, partials: this.partials, bias: this.bindingOf('b', bufs.b, O), c: y }, `${name} reduce`),
      gpu.grid(Math.ceil((B * O) / RED_WG)));
    return sequence(name, [gemm, reduceOp]);
  }

  /**
   * The op that forms dz = dy * act'(y) in the scratch buffer, and the buffer dz lives in
   * (dy itself for a linear layer).
   */
  private dzOp(name: string, dy: GPUBuffer, y: GPUBuffer | undefined, pass: string): { ops: GpuOp[]; dz: GPUBuffer } {
    const { batch: B, outFeatures: O } = this.shape;
    const { dims, activation } = this.dzPasses;
    this.bindingOf('dy', dy, B * O);
    if (!activation || !this.dz) return { ops: [], dz: dy };
    if (!y) throw new Error(`${this.label} dense ${this.dimsText()}: ${pass} needs y (the forward output) for the ${this.shape.activation} derivative`);
    const gpu = this.gpu;
    const bg = gpu.bindGroup(activation, { dims, dy: this.bindingOf('dy', dy, B * O), yact: this.bindingOf('y', y, B * O), dz: this.dz }, `${name} dz`);
    return { ops: [gpu.dispatch(`${name} activation_backward`, activation, bg, gpu.grid(Math.ceil((B * O) / RED_WG)))], dz: this.dz };
  }

  /** dx = dz·wᵀ with dz = dy * act'(y) (y is needed unless the activation is linear). */
  backwardInput(bufs: { dy: GPUBuffer; y?: GPUBuffer; w: GPUBuffer; dx: GPUBuffer }): GpuOp {
    const { batch: B, inFeatures: I, outFeatures: O } = this.shape;
    const name = `${this.label} dense.backwardInput ${this.dimsText()}`;
    const { ops, dz } = this.dzOp(name, bufs.dy, bufs.y, 'backwardInput');
    // bias is not read without the epilogue (EPILOGUE = 0); w stands in.
    const gemm = this.gemmOp(name, this.gin, ['dz', dz, B * O], ['w', bufs.w, I * O], ['w', bufs.w, I * O], ['dx', bufs.dx, B * I]);
    return sequence(name, [...ops, gemm]);
  }

  /** dw = xᵀ·dz and db = column sums of dz, with dz = dy * act'(y). Both are overwritten. */
  backwardWeights(bufs: { x: GPUBuffer; dy: GPUBuffer; y?: GPUBuffer; dw: GPUBuffer; db: GPUBuffer }): GpuOp {
    const { batch: B, inFeatures: I, outFeatures: O } = this.shape;
    const gpu = this.gpu;
    const name = `${this.label} dense.backwardWeights ${this.dimsText()}`;
    const { ops, dz } = this.dzOp(name, bufs.dy, bufs.y, 'backwardWeights');
    const gemm = this.gemmOp(name, this.gw, ['x', bufs.x, B * I], ['dz', dz, B * O], ['dz', dz, B * O], ['dw', bufs.dw, I * O]);
    const { dims, columnSum } = this.dzPasses;
    const biasOp = gpu.dispatch(`${name} column_sum`, columnSum,
      gpu.bindGroup(columnSum, { dims, dzin: this.bindingOf('dz', dz, B * O), db: this.bindingOf('db', bufs.db, O) }, `${name} column_sum`),
      gpu.grid(Math.ceil(O / RED_WG)));
    return sequence(name, [...ops, gemm, biasOp]);
  }

  destroy(): void {
    for (const b of this.owned) this.gpu.destroyBuffer(b);
    this.owned.length = 0;
  }
}

function sequence(label: string, ops: GpuOp[]): GpuOp {
  return { label, encode: (encoder) => { for (const op of ops) op.encode(encoder); } };
}
