import { fmtBytes, type Gpu, type GpuOp, type Pipeline } from '../gpu/index.ts';

export type DepthwiseActivation = 'linear' | 'relu' | 'relu6';

/** A Keras DepthwiseConv2D layer's shape: NHWC activations, depthwise_kernel [kh, kw, C, M]. */
export interface DepthwiseConv2dShape {
  batch: number;
  height: number;
  width: number;
  /** Input channels C; the output has C * depthMultiplier channels (c * M + m). */
  channels: number;
  /** [kh, kw], each 1..7 */
  kernelSize: [number, number];
  /** [sh, sw], each 1 or 2 */
  strides: [number, number];
  padding: 'same' | 'valid';
  depthMultiplier: number;
  useBias: boolean;
  activation: DepthwiseActivation;
  label?: string;
}

/** Overrides for tests and tuning; create() picks the defaults from the shape. */
export interface DepthwiseConv2dTuning {
  /**
   * Output rows (of N * outHeight) each partial sum of the filter gradient covers; the chunks'
   * partials are then reduced in parallel. Default: >= 256 positions a chunk, <= 1024 chunks.
   */
  rowsPerChunk: number;
}

const SHADER = 'depthwise_conv2d';
const WG = 128; // WG in depthwise_conv2d.wgsl
const MAX_CHUNKS = 1024;
const ACT = { linear: 0, relu: 1, relu6: 2 } as const;

/** A dispatch's pipeline and uniforms; `vec4` names the roles its entry binds as arrays of vec4f. */
interface Pass { pipeline: Pipeline; params: GPUBuffer; count: number; vec4: string[] }

/**
 * Keras DepthwiseConv2D (y = act(depthwise(x, w) + b), strides 1 or 2, TF 'same' / 'valid'
 * padding) and its gradients. The backward ops mask dy with the activation's derivative taken
 * from y (the forward output). Runs 4 output channels per invocation when C * M % 4 == 0 (4
 * input channels for the input gradient when C % 4 == 0), with every load a vec4 when also
 * M == 1 (MobileNet's depthwise layers).
 */
export class DepthwiseConv2dKernel {
  readonly label: string;
  readonly outHeight: number;
  readonly outWidth: number;
  /** TF padding at the top / left; the rest of 'same' padding is at the bottom / right. */
  readonly padTop: number;
  readonly padLeft: number;
  readonly shape: Readonly<Required<DepthwiseConv2dShape>>;
  readonly tuning: Readonly<DepthwiseConv2dTuning>;
  /** Partial sums the filter gradient's reduce pass adds up per weight. */
  readonly chunks: number;
  private readonly uniforms: GPUBuffer[];
  private readonly scratch: GPUBuffer[] = [];
  private partials?: GPUBuffer;
  private zeroBias?: GPUBuffer;
  private unusedDb?: GPUBuffer;

  private constructor(
    private readonly gpu: Gpu,
    shape: Required<DepthwiseConv2dShape>,
    geometry: { outH: number; outW: number; padTop: number; padLeft: number; rowsPerChunk: number; chunks: number },
    private readonly passes: { forward: Pass; backwardInput: Pass; filter: Pass; reduce: Pass },
  ) {
    this.shape = shape;
    this.label = shape.label;
    this.outHeight = geometry.outH;
    this.outWidth = geometry.outW;
    this.padTop = geometry.padTop;
    this.padLeft = geometry.padLeft;
    this.tuning = { rowsPerChunk: geometry.rowsPerChunk };
    this.chunks = geometry.chunks;
    this.uniforms = Object.values(passes).map((p) => p.params);
  }

  /**
   * Validates the shape (errors name the layer, the shape and what to change, including a
   * buffer over the adapter's maxStorageBufferBindingSize) and compiles the pipelines.
   */
  static async create(gpu: Gpu, shape: DepthwiseConv2dShape, tuning: Partial<DepthwiseConv2dTuning> = {}): Promise<DepthwiseConv2dKernel> {
    const label = shape.label ?? 'depthwise_conv2d';
    const fail = (what: string): never => {
      throw new Error(`${label}: DepthwiseConv2D ${describe(shape)}: ${what}`);
    };
    const ints: [string, unknown][] = [
      ['batch', shape.batch], ['height', shape.height], ['width', shape.width], ['channels', shape.channels],
      ['depthMultiplier', shape.depthMultiplier],
      ['kernelSize[0]', shape.kernelSize?.[0]], ['kernelSize[1]', shape.kernelSize?.[1]],
      ['strides[0]', shape.strides?.[0]], ['strides[1]', shape.strides?.[1]],
    ];
    for (const [name, v] of ints) {
      if (!Number.isInteger(v) || (v as number) < 1) fail(`${name} must be a positive integer, got ${String(v)}`);
    }
    const [KH, KW] = shape.kernelSize;
    const [SH, SW] = shape.strides;
    if (KH > 7 || KW > 7) fail(`kernelSize must be 1..7 in each dimension, got ${KH}x${KW}`);
    if (SH > 2 || SW > 2) fail(`strides must be 1 or 2 in each dimension, got ${SH}x${SW}`);
    if (shape.padding !== 'same' && shape.padding !== 'valid') fail(`padding must be 'same' or 'valid', got ${String(shape.padding)}`);
    if (!(shape.activation in ACT)) fail(`activation must be 'linear', 'relu' or 'relu6', got ${String(shape.activation)}`);
    if (typeof shape.useBias !== 'boolean') fail(`useBias must be true or false, got ${String(shape.useBias)}`);
    const { batch: N, height: H, width: W, channels: C, depthMultiplier: M } = shape;
    if (shape.padding === 'valid' && (KH > H || KW > W)) {
      fail(`the ${KH}x${KW} kernel is larger than the ${H}x${W} input with 'valid' padding; use 'same' padding or a larger input`);
    }
    const rows = depthwiseOutSize(H, KH, SH, shape.padding);
    const cols = depthwiseOutSize(W, KW, SW, shape.padding);
    const CO = C * M;
    const taps = KH * KW;
    const slots = taps + (shape.useBias ? 1 : 0);

    const outRows = N * rows.out;
    let rowsPerChunk = tuning.rowsPerChunk ?? Math.max(Math.ceil(256 / cols.out), Math.ceil(outRows / MAX_CHUNKS));
    if (!Number.isInteger(rowsPerChunk) || rowsPerChunk < 1) fail(`tuning.rowsPerChunk must be a positive integer, got ${rowsPerChunk}`);
    rowsPerChunk = Math.min(rowsPerChunk, outRows);
    const max = gpu.limits.maxStorageBufferBindingSize;
    // The partials are chunks x slots x CO floats: fewer, larger chunks if that is over a binding.
    while (Math.ceil(outRows / rowsPerChunk) * slots * CO * 4 > max && rowsPerChunk < outRows) rowsPerChunk *= 2;
    rowsPerChunk = Math.min(rowsPerChunk, outRows);
    const chunks = Math.ceil(outRows / rowsPerChunk);

    const sizes: [string, number][] = [
      ['input x', N * H * W * C * 4],
      ['output y', outRows * cols.out * CO * 4],
      ['weights w', taps * CO * 4],
      ['filter-gradient partials', chunks * slots * CO * 4],
    ];
    for (const [name, bytes] of sizes) {
      if (bytes > max) fail(`${name} needs ${fmtBytes(bytes)}, over this adapter's maxStorageBufferBindingSize of ${fmtBytes(max)}; use a smaller batch (or micro-batches) or a smaller input size`);
      if (bytes / 4 >= 2 ** 32) fail(`${name} has 2^32 or more elements; use a smaller batch or input size`);
    }

    const outVec4 = CO % 4 === 0;
    const inVec4 = C % 4 === 0;
    const contiguous = M === 1 && inVec4;
    const constants = { ACT: ACT[shape.activation] };
    // Entry suffix: '4c' all operands vec4, '4' vec4 with gathered operands, '' scalar.
    const sfx = (vec4: boolean) => (contiguous ? '4c' : vec4 ? '4' : '');
    const [fp, bp, pp, rp] = await Promise.all([
      gpu.pipeline(SHADER, { entryPoint: `forward${sfx(outVec4)}`, constants }),
      gpu.pipeline(SHADER, { entryPoint: `backward_input${sfx(inVec4)}`, constants }),
      gpu.pipeline(SHADER, { entryPoint: `filter_partial${sfx(outVec4)}`, constants }),
      gpu.pipeline(SHADER, { entryPoint: `reduce${outVec4 ? '4' : ''}` }),
    ]);
    // The uniform Shape of depthwise_conv2d.wgsl; G = channel groups per pixel in the pass.
    const params = (pass: string, G: number, count: number) => gpu.uniform(`${label} depthwise_conv2d.${pass} shape`, new Uint32Array([
      N, H, W, C, rows.out, cols.out, KH, KW, SH, SW, rows.padBefore, cols.padBefore,
      M, CO, G, count, outRows, rowsPerChunk, chunks, slots, taps, 0, 0, 0,
    ]));
    const pass = (name: string, pipeline: Pipeline, vec4: string[], G: number, count: number): Pass =>
      ({ pipeline, params: params(name, G, count), count, vec4 });
    const roles = (vec4: boolean, all: string[], gathered: string[]) => (contiguous ? all : vec4 ? all.filter((r) => !gathered.includes(r)) : []);
    const og = outVec4 ? CO / 4 : CO;
    const ig = inVec4 ? C / 4 : C;
    const full: Required<DepthwiseConv2dShape> = {
      batch: N, height: H, width: W, channels: C, kernelSize: [KH, KW], strides: [SH, SW], padding: shape.padding,
      depthMultiplier: M, useBias: shape.useBias, activation: shape.activation, label,
    };
    return new DepthwiseConv2dKernel(gpu, full,
      { outH: rows.out, outW: cols.out, padTop: rows.padBefore, padLeft: cols.padBefore, rowsPerChunk, chunks },
      {
        forward: pass('forward', fp, roles(outVec4, ['x', 'w', 'b', 'y'], ['x']), og, outRows * cols.out * og),
        backwardInput: pass('backwardInput', bp, roles(inVec4, ['dy', 'yin', 'w', 'dx'], ['dy', 'yin', 'w']), ig, N * H * W * ig),
        filter: pass('backwardFilter', pp, roles(outVec4, ['x', 'dy', 'yin', 'part'], ['x']), og, chunks * slots * og),
        reduce: pass('backwardFilter.reduce', rp, outVec4 ? ['part', 'dw', 'db'] : [], og, slots * og),
      });
  }

  /** Floats of x [N, H, W, C]. */
  get inputSize(): number {
    const s = this.shape;
    return s.batch * s.height * s.width * s.channels;
  }

  /** Floats of y [N, outHeight, outWidth, C * M]. */
  get outputSize(): number {
    return this.shape.batch * this.outHeight * this.outWidth * this.outChannels;
  }

  /** Floats of the depthwise kernel [kh, kw, C, M]. */
  get weightSize(): number {
    return this.shape.kernelSize[0] * this.shape.kernelSize[1] * this.outChannels;
  }

  get outChannels(): number {
    return this.shape.channels * this.shape.depthMultiplier;
  }

  /** y (overwritten) = act(depthwise(x, w) + b); b [C * M] iff useBias. */
  forward(a: { x: GPUBuffer; w: GPUBuffer; b?: GPUBuffer; y: GPUBuffer }): GpuOp {
    const bias = this.requireBias('forward', 'b', a.b) ?? (this.zeroBias ??= this.keep(this.gpu.createBuffer(`${this.label} depthwise_conv2d.zero_bias`, this.outChannels * 4)));
    return this.run('forward', this.passes.forward, {
      x: [a.x, this.inputSize], w: [a.w, this.weightSize], b: [bias, this.outChannels], y: [a.y, this.outputSize],
    });
  }

  /** dx (overwritten, every element; 0 where no window reaches) from dy; y is the forward output. */
  backwardInput(a: { dy: GPUBuffer; y?: GPUBuffer; w: GPUBuffer; dx: GPUBuffer }): GpuOp {
    const y = this.requireY('backwardInput', a.y) ?? a.dy;
    return this.run('backwardInput', this.passes.backwardInput, {
      dy: [a.dy, this.outputSize], yin: [y, this.outputSize], w: [a.w, this.weightSize], dx: [a.dx, this.inputSize],
    });
  }

  /** dw [kh, kw, C, M] and db [C * M] (both overwritten; db iff useBias) from x, dy and y. */
  backwardFilter(a: { x: GPUBuffer; dy: GPUBuffer; y?: GPUBuffer; dw: GPUBuffer; db?: GPUBuffer }): GpuOp {
    const y = this.requireY('backwardFilter', a.y) ?? a.dy;
    // Without a bias the reduce pass has no bias slot and never writes db; it still needs a binding.
    const db = this.requireBias('backwardFilter', 'db', a.db) ?? (this.unusedDb ??= this.keep(this.gpu.createBuffer(`${this.label} depthwise_conv2d.unused_db`, this.outChannels * 4)));
    const s = this.shape;
    const slots = s.kernelSize[0] * s.kernelSize[1] + (s.useBias ? 1 : 0);
    const partFloats = this.chunks * slots * this.outChannels;
    this.partials ??= this.keep(this.gpu.createBuffer(`${this.label} depthwise_conv2d.dw_partials`, partFloats * 4));
    const partial = this.run('backwardFilter', this.passes.filter, {
      x: [a.x, this.inputSize], dy: [a.dy, this.outputSize], yin: [y, this.outputSize], part: [this.partials, partFloats],
    });
    const reduce = this.run('backwardFilter.reduce', this.passes.reduce, {
      part: [this.partials, partFloats], dw: [a.dw, this.weightSize], db: [db, this.outChannels],
    }, 1);
    return { label: partial.label, encode: (encoder) => { partial.encode(encoder); reduce.encode(encoder); } };
  }

  /** Releases the uniforms and scratch buffers this kernel allocated (not the caller's buffers). */
  destroy(): void {
    for (const buf of [...this.uniforms, ...this.scratch]) this.gpu.destroyBuffer(buf);
    this.uniforms.length = 0;
    this.scratch.length = 0;
    this.partials = undefined;
    this.zeroBias = undefined;
    this.unusedDb = undefined;
  }

  // ---------------------------------------------------------------- internals

  /**
   * One dispatch: buffers by WGSL role, each [buffer, floats]; the grid has count / WG
   * workgroups, or `perWorkgroup` = 1 for the reduce (one workgroup per element).
   */
  private run(pass: string, p: Pass, buffers: Record<string, [GPUBuffer, number]>, perWorkgroup = WG): GpuOp {
    const name = this.name(pass);
    const res: Record<string, GPUBuffer | { buffer: GPUBuffer; size: number }> = { s: p.params };
    for (const [role, [buffer, floats]] of Object.entries(buffers)) {
      if (buffer.size < floats * 4) {
        throw new Error(`${name}: buffer '${role === 'yin' ? 'y' : role}' (${buffer.label}) is ${buffer.size} bytes, needs ${floats * 4}`);
      }
      res[p.vec4.includes(role) ? `${role}4` : role] = { buffer, size: floats * 4 };
    }
    return this.gpu.dispatch(name, p.pipeline, this.gpu.bindGroup(p.pipeline, res, name), this.gpu.grid(Math.ceil(p.count / perWorkgroup)));
  }

  private name(pass: string): string {
    const s = this.shape;
    return `${s.label} depthwise_conv2d.${pass} N=${s.batch} H=${s.height} W=${s.width} C=${s.channels} M=${s.depthMultiplier} ` +
      `k=${s.kernelSize.join('x')} s=${s.strides.join('x')} ${s.padding} ${s.activation}${s.useBias ? '' : ' no-bias'}`;
  }

  private requireY(pass: string, y: GPUBuffer | undefined): GPUBuffer | undefined {
    if (this.shape.activation === 'linear') return undefined;
    if (!y) throw new Error(`${this.name(pass)}: needs y (the forward output) because the activation is '${this.shape.activation}'`);
    return y;
  }

  private requireBias(pass: string, role: string, buf: GPUBuffer | undefined): GPUBuffer | undefined {
    if (this.shape.useBias && !buf) throw new Error(`${this.name(pass)}: needs '${role}' because useBias is true`);
    if (!this.shape.useBias && buf) throw new Error(`${this.name(pass)}: got '${role}' but useBias is false; leave it out`);
    return buf;
  }

  private keep(buf: GPUBuffer): GPUBuffer {
    this.scratch.push(buf);
    return buf;
  }
}

/** TF output size and padding before (top / left) along one dimension. */
export function depthwiseOutSize(input: number, k: number, stride: number, padding: 'same' | 'valid'): { out: number; padBefore: number } {
  if (padding === 'valid') return { out: Math.floor((input - k) / stride) + 1, padBefore: 0 };
  const out = Math.ceil(input / stride);
  const total = Math.max((out - 1) * stride + k - input, 0);
  return { out, padBefore: Math.floor(total / 2) };
}

function describe(s: DepthwiseConv2dShape): string {
  const pair = (v: unknown) => (Array.isArray(v) ? v.join('x') : String(v));
  return `[N=${s.batch}, H=${s.height}, W=${s.width}, C=${s.channels}] x${s.depthMultiplier}, kernel ${pair(s.kernelSize)}, strides ${pair(s.strides)}, padding ${s.padding}`;
}
