import { fmtBytes, type Gpu, type GpuOp, type Pipeline } from '../gpu/index.ts';
import { convVariant, convWinograd, largeTilesFit, SUBGROUP_LANES, subgroupsUsable, type ConvVariant } from './variants.ts';
import { WinogradForward, type WinogradShape } from './conv2d-winograd.ts';
import { tunerFor, type TunedShape } from './autotune.ts';

/** A 2-D convolution layer's shape: NHWC activations, HWIO (Keras) weights. */
export interface Conv2dShape {
  batch: number;
  height: number;
  width: number;
  inChannels: number;
  outChannels: number;
  kernelSize: [number, number];
  /** [rows, columns], each 1 or 2; default [1, 1]. */
  strides?: [number, number];
  /**
   * TF's rules: 'same' gives out = ceil(in / s) with total padding max((out - 1) * s + k - in, 0),
   * floor(total / 2) on top / left and the rest bottom / right; 'valid' out = floor((in - k) / s) + 1.
   */
  padding: 'same' | 'valid';
  /** Fused into the forward output; relu6 = min(max(z, 0), 6). */
  activation: 'relu' | 'relu6' | 'linear';
  /** Default true; false: no bias added, forward's `b` and backwardFilter's `db` unused. */
  useBias?: boolean;
  label?: string;
}

export type Conv2dActivation = Conv2dShape['activation'];

/** Which backward passes a layer runs (a frozen layer only its forward): what the tuner times. */
export interface Conv2dUse {
  backwardInput: boolean;
  backwardFilter: boolean;
}

/**
 * Kernel choices; create() picks them from the adapter and the shape, the tuning script and the
 * tests override them.
 */
export interface Conv2dTuning {
  /**
   * 'subgroup': kernels that share loaded values across a SIMD-8 subgroup (fast on lavapipe;
   * need the 'subgroups' feature, subgroups of at least 8 and Cout divisible by 4; the backward
   * passes also Cin divisible by 4, else they use the tiled kernels).
   * 'tiled': 32x32 workgroup-memory tiles, any adapter and any channel count.
   * 'large': 64x64 tiles, 4x8 outputs per invocation, for the forward and input-gradient GEMMs
   * (Cin and Cout divisible by 4; 128 invocations per workgroup); the filter gradient tiled.
   */
  variant: ConvVariant;
  /** Subgroup forward / input-gradient tile: 8 * pixelGroups output pixels (1..6) x 32 channels. */
  pixelGroups: number;
  /** Filter gradient: how many parts the sum over output pixels is split into (split-K). */
  splits: number;
  /**
   * The forward pass by Winograd F(2x2, 3x3) (3x3 stride 1 only), and the input gradient too
   * where Cout >= 8 is a multiple of 4; the filter gradient (and other input gradients) as `variant`.
   */
  winograd: boolean;
}

/**
 * Forward and input-gradient GEMM geometry: a convolution with explicit padding (signed: a
 * phase of a strided input gradient can start its window past its first pixel), strides set
 * by the pipeline's constants. `phase` only for the input gradient of a strided layer: which dx
 * pixels (y + sh * i, x + sw * j) the GEMM covers and the layer taps (tapY0 + sh * t, ...) its
 * sub-kernel stands for.
 */
interface Geometry {
  inH: number; inW: number; cin: number; cout: number;
  outH: number; outW: number; kh: number; kw: number;
  padTop: number; padLeft: number; m: number;
  phase?: { y: number; x: number; tapY0: number; tapX0: number };
}

/** One axis of a convolution, TF's rules: output size and the padding before the first pixel. */
export function convAxis(size: number, k: number, stride: number, padding: 'same' | 'valid'): { out: number; padBefore: number } {
  if (padding === 'valid') return { out: Math.floor((size - k) / stride) + 1, padBefore: 0 };
  const out = Math.ceil(size / stride);
  return { out, padBefore: Math.floor(Math.max((out - 1) * stride + k - size, 0) / 2) };
}

/**
 * The input gradient along one axis, split by phase r = input index mod stride: the windows
 * over input index r + stride * i all use the taps tap0 + stride * t (t < taps) and the output
 * index i + c - t (c = floor((r + pad) / stride)), i.e. a stride-1 correlation of dz with the
 * rotated sub-kernel and padding taps - 1 - c. With stride 1: one phase, taps = k, pad k-1-pad.
 */
function axisPhases(size: number, k: number, stride: number, pad: number): { r: number; count: number; tap0: number; taps: number; padRot: number }[] {
  const out = [];
  for (let r = 0; r < Math.min(stride, size); r++) {
    const tap0 = (r + pad) % stride;
    const taps = tap0 < k ? Math.ceil((k - tap0) / stride) : 0;
    out.push({ r, count: Math.ceil((size - r) / stride), tap0, taps, padRot: taps - 1 - Math.floor((r + pad) / stride) });
  }
  return out;
}

const SG = SUBGROUP_LANES; // lanes of the subgroup kernels (their workgroup size)
const TILE = 32; // rows / columns of the tiled GEMMs' tiles
const LARGE_TILE = 64; // rows / columns of the large GEMMs' tiles (conv2d.wgsl's large())

/**
 * Conv2d forward (y = act(conv(x, w) + b), bias and ReLU / ReLU6 fused), input gradient and
 * filter / bias gradients, each an implicit GEMM; strides through the same kernels' STRIDE_H /
 * STRIDE_W constants (1 leaves the stride-1 kernels exactly as they were), the strided input
 * gradient as one GEMM per phase of dx. Shapes are fixed at create(); ops bind their buffers
 * once and can be replayed.
 */
export class Conv2dKernel {
  readonly label: string;
  readonly outHeight: number;
  readonly outWidth: number;
  readonly tuning: Readonly<Conv2dTuning>;

  readonly strides: readonly [number, number];
  readonly useBias: boolean;

  private readonly fwd: Geometry;
  /** The input-gradient GEMMs: one, or one per phase of dx with strides. */
  private readonly bwd: Geometry[];
  private readonly uniforms: GPUBuffer[] = [];
  private readonly scratch: GPUBuffer[] = [];
  private dz?: GPUBuffer;
  private zeros?: GPUBuffer;
  private dbScratch?: GPUBuffer;
  private partials?: { weights: GPUBuffer; bias: GPUBuffer };
  /** The kernel each pass runs. */
  private readonly sub: PassKinds;

  private constructor(
    private readonly gpu: Gpu,
    readonly shape: Readonly<Conv2dShape>,
    tuning: Conv2dTuning,
    private readonly pipelines: {
      forward: Pipeline; backwardInput: Pipeline; reluMask?: Pipeline; filter: Pipeline; reduce: Pipeline;
      winograd?: WinogradForward;
      winogradBackward?: WinogradForward;
    },
  ) {
    const s = shape;
    this.label = s.label ?? 'conv2d';
    this.tuning = tuning;
    this.sub = passKinds(tuning, s);
    const [kh, kw] = s.kernelSize;
    const [sh, sw] = s.strides ?? [1, 1];
    this.strides = [sh, sw];
    this.useBias = s.useBias ?? true;
    const rows = convAxis(s.height, kh, sh, s.padding);
    const cols = convAxis(s.width, kw, sw, s.padding);
    this.outHeight = rows.out;
    this.outWidth = cols.out;
    this.fwd = {
      inH: s.height, inW: s.width, cin: s.inChannels, cout: s.outChannels,
      outH: this.outHeight, outW: this.outWidth, kh, kw, padTop: rows.padBefore, padLeft: cols.padBefore,
      m: s.batch * this.outHeight * this.outWidth,
    };
    // dx = conv(dz, rotated w) with the complementary padding, Cin and Cout swapping roles; with
    // strides, per phase of dx (stride 1: the single phase is the whole of dx).
    const strided = sh > 1 || sw > 1;
    this.bwd = [];
    for (const py of axisPhases(s.height, kh, sh, rows.padBefore)) {
      for (const px of axisPhases(s.width, kw, sw, cols.padBefore)) {
        this.bwd.push({
          inH: this.outHeight, inW: this.outWidth, cin: s.outChannels, cout: s.inChannels,
          outH: py.count, outW: px.count, kh: py.taps, kw: px.taps, padTop: py.padRot, padLeft: px.padRot,
          m: s.batch * py.count * px.count,
          phase: strided ? { y: py.r, x: px.r, tapY0: py.tap0, tapX0: px.tap0 } : undefined,
        });
      }
    }
  }

  /**
   * Validates the shape (errors name the layer, the shape and what is wrong, including any
   * buffer over the adapter's maxStorageBufferBindingSize) and compiles the pipelines.
   */
  static async create(gpu: Gpu, shape: Conv2dShape, tuning: Partial<Conv2dTuning> = {}, use: Conv2dUse = { backwardInput: true, backwardFilter: true }): Promise<Conv2dKernel> {
    let t = Conv2dKernel.plan(gpu, shape, tuning);
    // No tuning asked for, and a tuner attached (family auto): measure, or recall a measurement.
    const tuned = Object.keys(tuning).length === 0 ? await Conv2dKernel.tune(gpu, shape, use) : null;
    if (tuned) t = Conv2dKernel.plan(gpu, shape, tuned.tuning);
    const masked = shape.activation !== 'linear';
    // Constants only where they differ from the shaders' defaults, so the stride-1 ReLU / linear
    // pipelines are the very ones (and cache keys) they were before strides and ReLU6.
    const relu6: Record<string, number> = shape.activation === 'relu6' ? { MASK_HI: 1 } : {};
    const [sh, sw] = shape.strides ?? [1, 1];
    const strides: Record<string, number> = sh > 1 || sw > 1 ? { STRIDE_H: sh, STRIDE_W: sw } : {};
    const cinVec4 = shape.inChannels % 4 === 0;
    const vec4 = cinVec4 && shape.outChannels % 4 === 0;
    const sub = passKinds(t, shape);
    // The ReLU backward mask: applied on load by the portable kernels, by a pass of its own
    // before the subgroup ones (see conv2d_grad_input.wgsl).
    const gemm = (rotated: boolean, kind: ConvVariant) => kind === 'subgroup'
      ? gpu.pipeline('conv2d_sg', { entryPoint: 'main', constants: { PI: t.pixelGroups, ROTATED: rotated ? 1 : 0, CIN_VEC4: rotated || cinVec4 ? 1 : 0, ...strides } })
      : gpu.pipeline('conv2d', {
        entryPoint: kind === 'large' ? 'large' : 'main',
        constants: { ...(kind === 'large' ? {} : { VEC4: vec4 ? 1 : 0 }), ROTATED: rotated ? 1 : 0, MASK_IN: rotated && masked ? 1 : 0, ...(rotated ? relu6 : {}), ...strides },
      });
    // The input gradient by Winograd too where its own rule holds (8+ input channels: the
    // layer's Cout; a multiple of 4, as the vec4 ReLU-mask pass before it needs), for layers
    // that run it (its scratch is 4x dz and dx).
    const wBack = t.winograd && use.backwardInput ? winogradInputGradShape(shape) : null;
    const winoBackward = !!wBack && shape.outChannels >= 8 && shape.outChannels % 4 === 0 && WinogradForward.fits(gpu, wBack);
    const [forward, backwardInput, reluMask, filter, reduce] = await Promise.all([
      gemm(false, sub.forward),
      gemm(true, sub.backward),
      masked && (sub.filter === 'subgroup' || winoBackward)
        ? gpu.pipeline('conv2d_grad_input', { entryPoint: 'relu_mask', constants: shape.activation === 'relu6' ? { RELU6: 1 } : {} })
        : undefined,
      sub.filter === 'subgroup' ? gpu.pipeline('conv2d_grad_filter_sg', { entryPoint: 'main', constants: strides })
        : gpu.pipeline('conv2d_grad_filter', {
          entryPoint: 'main',
          constants: { RELU: masked ? 1 : 0, ...(shape.activation === 'relu6' ? { RELU6: 1 } : {}), ...strides },
        }),
      gpu.pipeline('conv2d_grad_filter', { entryPoint: 'reduce' }),
    ]);
    let winograd: WinogradForward | undefined;
    const winogradBackward = winoBackward ? await WinogradForward.create(gpu, wBack!) : undefined;
    if (t.winograd) {
      const rows = convAxis(shape.height, 3, 1, shape.padding);
      const cols = convAxis(shape.width, 3, 1, shape.padding);
      winograd = await WinogradForward.create(gpu, {
        batch: shape.batch, height: shape.height, width: shape.width, inChannels: shape.inChannels, outChannels: shape.outChannels,
        outHeight: rows.out, outWidth: cols.out, padTop: rows.padBefore, padLeft: cols.padBefore, activation: shape.activation, label: shape.label ?? 'conv2d',
      });
    }
    gpu.kernelChoices.set(shape.label ?? 'conv2d', describeChoice(t, sub, winoBackward) + (tuned ? ` [tuned: ${tuned.how === 'stored' ? 'stored' : 'measured'} fastest of ${Object.keys(tuned.ms).length}]` : ''));
    return new Conv2dKernel(gpu, shape, t, { forward, backwardInput, reluMask, filter, reduce, winograd, winogradBackward });
  }

  /**
   * The tuner's choice for this shape and use, or null (no tuner, a single candidate, or the
   * budget spent): each candidate runs the passes the layer runs, on zeroed buffers of its shape.
   */
  private static async tune(gpu: Gpu, shape: Conv2dShape, use: Conv2dUse): Promise<(TunedShape & { how: string; tuning: Partial<Conv2dTuning> }) | null> {
    const tuner = tunerFor(gpu);
    if (!tuner) return null;
    const candidates = convCandidates(gpu, shape);
    if (candidates.length < 2) return null;
    const label = shape.label ?? 'conv2d';
    const key = `conv2d ${describe(shape)} ${shape.activation}${shape.useBias === false ? ' no-bias' : ''} passes=forward${use.backwardInput ? ',input' : ''}${use.backwardFilter ? ',filter' : ''}`;
    const r = await tuner.choose(key, candidates.map((c) => ({
      name: c.name,
      prepare: async () => {
        const k = await Conv2dKernel.create(gpu, { ...shape, label: `${label} (tuning)` }, c.tuning, use);
        gpu.kernelChoices.delete(`${label} (tuning)`);
        const bufs: GPUBuffer[] = [];
        const buf = (what: string, bytes: number) => {
          const b = gpu.createBuffer(`${label} tuning.${what}`, bytes);
          bufs.push(b);
          return b;
        };
        const io = { x: buf('x', k.inputBytes()), w: buf('w', k.weightBytes()), b: buf('b', shape.outChannels * 4), y: buf('y', k.outputBytes()) };
        const ops = [k.forward(io)];
        if (use.backwardInput || use.backwardFilter) {
          const dy = buf('dy', k.outputBytes());
          if (use.backwardInput) ops.push(k.backwardInput({ dy, y: io.y, w: io.w, dx: buf('dx', k.inputBytes()) }));
          if (use.backwardFilter) ops.push(k.backwardFilter({ x: io.x, dy, y: io.y, dw: buf('dw', k.weightBytes()), db: buf('db', shape.outChannels * 4) }));
        }
        return { ops, dispose: () => { k.destroy(); for (const b of bufs) gpu.destroyBuffer(b); } };
      },
    })));
    const chosen = r && candidates.find((c) => c.name === r.choice);
    return r && chosen ? { ...r, tuning: chosen.tuning } : null;
  }

  /** Checks the shape and completes the tuning (adapter-dependent defaults). */
  private static plan(gpu: Gpu, shape: Conv2dShape, tuning: Partial<Conv2dTuning>): Conv2dTuning {
    const label = shape.label ?? 'conv2d';
    const desc = describe(shape);
    const fail = (what: string): never => {
      throw new Error(`${label}: conv2d ${desc}: ${what}`);
    };
    const ints: [string, unknown][] = [
      ['batch', shape.batch], ['height', shape.height], ['width', shape.width],
      ['inChannels', shape.inChannels], ['outChannels', shape.outChannels],
      ['kernelSize[0]', shape.kernelSize?.[0]], ['kernelSize[1]', shape.kernelSize?.[1]],
    ];
    for (const [name, v] of ints) {
      if (!Number.isInteger(v) || (v as number) < 1) fail(`${name} must be a positive integer, got ${String(v)}`);
    }
    if (shape.padding !== 'same' && shape.padding !== 'valid') fail(`padding must be 'same' or 'valid', got ${String(shape.padding)}`);
    if (!['relu', 'relu6', 'linear'].includes(shape.activation)) fail(`activation must be 'relu', 'relu6' or 'linear', got ${String(shape.activation)}`);
    if (shape.useBias !== undefined && typeof shape.useBias !== 'boolean') fail(`useBias must be true or false, got ${String(shape.useBias)}`);
    const strides = shape.strides ?? [1, 1];
    if (!Array.isArray(strides) || strides.length !== 2 || !strides.every((v) => v === 1 || v === 2)) {
      fail(`strides must be [rows, columns] with each 1 or 2, got ${JSON.stringify(shape.strides)}`);
    }
    const [kh, kw] = shape.kernelSize;
    if (shape.padding === 'valid' && (kh > shape.height || kw > shape.width)) {
      fail(`the ${kh}x${kw} kernel is larger than the ${shape.height}x${shape.width} input with 'valid' padding`);
    }

    const outH = convAxis(shape.height, kh, strides[0], shape.padding).out;
    const outW = convAxis(shape.width, kw, strides[1], shape.padding).out;
    const kTotal = kh * kw * shape.inChannels;
    const m = shape.batch * outH * outW;
    const max = gpu.limits.maxStorageBufferBindingSize;
    const sizes: [string, number][] = [
      ['input x', shape.batch * shape.height * shape.width * shape.inChannels * 4],
      ['output y', m * shape.outChannels * 4],
      ['weights w', kTotal * shape.outChannels * 4],
    ];
    for (const [name, bytes] of sizes) {
      if (bytes > max) fail(`${name} needs ${fmtBytes(bytes)}, over this adapter's maxStorageBufferBindingSize of ${fmtBytes(max)}; use a smaller batch or input size`);
    }

    const shapeAllows = shape.outChannels % 4 === 0;
    const vec4 = shapeAllows && shape.inChannels % 4 === 0;
    let variant = tuning.variant;
    if (variant === 'subgroup' && !(shapeAllows && subgroupsUsable(gpu))) {
      fail(`the subgroup kernels need the 'subgroups' feature with subgroups of at least ${SG} and outChannels divisible by 4`);
    }
    if (variant === 'large' && !(vec4 && largeTilesFit(gpu))) {
      fail(`the large-tile kernels need inChannels and outChannels divisible by 4 and 128 invocations per workgroup (this adapter allows ${gpu.limits.maxComputeInvocationsPerWorkgroup})`);
    }
    // the adapter, the shape and any forced family decide (variants.ts)
    variant ??= convVariant(gpu, { subgroup: shapeAllows, vec4 }, shape.label ?? 'conv2d');
    if (gpu.limits.maxComputeInvocationsPerWorkgroup < 64 && variant === 'tiled') {
      fail(`the tiled kernels need 64 invocations per workgroup; this adapter allows ${gpu.limits.maxComputeInvocationsPerWorkgroup}`);
    }
    // 3 groups (24 pixels) was best or close to it on the VGG16 layers in bench/conv2d-tune.ts.
    const pixelGroups = tuning.pixelGroups ?? 3;
    if (!Number.isInteger(pixelGroups) || pixelGroups < 1 || pixelGroups > 6) fail(`tuning.pixelGroups must be 1..6, got ${pixelGroups}`);

    // Split the filter-gradient sum over pixels when the k x n tiles alone give too few
    // workgroups: ~1024 for a GPU; a CPU adapter (subgroup kernels) runs a few threads, and
    // there splitting only added the partials' traffic (bench/conv2d-tune.ts --pass
    // backwardFilter: 1 split as fast or faster than 2-8 on VGG16's layers). Each split sums at
    // least 256 pixels.
    const tiles = Math.ceil(kTotal / TILE) * Math.ceil(shape.outChannels / TILE);
    const enough = variant === 'subgroup' ? 64 : 1024;
    let splits = tuning.splits ?? Math.max(1, Math.min(16, Math.ceil(enough / tiles), Math.floor(m / 256)));
    if (!Number.isInteger(splits) || splits < 1) fail(`tuning.splits must be a positive integer, got ${splits}`);
    splits = Math.min(splits, m);
    const budget = Math.min(max, 256 << 20);
    while (splits > 1 && splits * kTotal * shape.outChannels * 4 > budget) splits--;
    const fits = WinogradForward.fits(gpu, { ...shape, outHeight: outH, outWidth: outW, padTop: 0, padLeft: 0 });
    const applies = kh === 3 && kw === 3 && strides[0] === 1 && strides[1] === 1;
    if (tuning.winograd && !(applies && fits)) fail(`tuning.winograd needs a 3x3 stride-1 kernel whose Winograd scratch fits this adapter's ${fmtBytes(gpu.limits.maxStorageBufferBindingSize)} binding limit`);
    const winograd = tuning.winograd ?? convWinograd(gpu, shape, fits);
    return { variant, pixelGroups, splits, winograd };
  }

  /** 2 * multiply-adds of each pass (the same count for all three, as usually reported). */
  flops(): { forward: number; backwardInput: number; backwardFilter: number } {
    const g = this.fwd;
    const f = 2 * g.m * g.cout * g.kh * g.kw * g.cin;
    return { forward: f, backwardInput: f, backwardFilter: f };
  }

  /** y = act(conv(x, w) + b), overwritten; b (Cout floats) is required, and ignored when useBias is false. */
  forward(b: { x: GPUBuffer; w: GPUBuffer; b?: GPUBuffer; y: GPUBuffer }): GpuOp {
    const bias = this.useBias ? b.b : this.zeroBuffer();
    if (!bias) throw new Error(`${this.label}: conv2d.forward needs b (the bias) because useBias is true`);
    this.checkSizes('forward', { x: [b.x, this.inputBytes()], w: [b.w, this.weightBytes()], b: [bias, this.shape.outChannels * 4], y: [b.y, this.outputBytes()] });
    if (this.pipelines.winograd) return this.pipelines.winograd.forward({ x: b.x, w: b.w, bias, y: b.y });
    return this.gemm('forward', this.sub.forward, this.pipelines.forward, this.fwd, b.x, b.x, b.w, bias, b.y, this.shape.activation);
  }

  /**
   * dx = dL/dx from dy = dL/dy (overwritten, every element: pixels no window covers get 0); with
   * ReLU, y (the forward output) masks dy: dz = dy * (y > 0), with ReLU6 dy * (0 < y < 6). The
   * forward GEMM on dz and the rotated kernel, read in place from w; with strides one GEMM per
   * phase of dx (the pixels of one row and column parity).
   */
  backwardInput(b: { dy: GPUBuffer; y?: GPUBuffer; w: GPUBuffer; dx: GPUBuffer }): GpuOp {
    const mask = this.requireY('backwardInput', b.y);
    this.checkSizes('backwardInput', { dy: [b.dy, this.outputBytes()], y: [mask ?? b.dy, this.outputBytes()], w: [b.w, this.weightBytes()], dx: [b.dx, this.inputBytes()] });
    const zeros = this.zeroBuffer();
    const wino = this.pipelines.winogradBackward;
    if (wino) {
      const { pre, dz } = this.maskFirst('backwardInput', b.dy, mask, true);
      const op = wino.forward({ x: dz, w: b.w, bias: zeros, y: b.dx });
      return sequence(op.label, [...pre, op]);
    }
    const { pre, dz, mask: onLoad } = this.maskFirst('backwardInput', b.dy, mask, this.sub.backward === 'subgroup');
    const gemms = this.bwd.map((g) => this.gemm('backwardInput', this.sub.backward, this.pipelines.backwardInput, g, dz, onLoad ?? dz, b.w, zeros, b.dx));
    return sequence(gemms[0].label, [...pre, ...gemms]);
  }

  /**
   * dw = dL/dw and db = dL/db (both overwritten), from x and dy (and y when the activation is ReLU
   * or ReLU6). With useBias false, db is not needed and not written.
   */
  backwardFilter(b: { x: GPUBuffer; dy: GPUBuffer; y?: GPUBuffer; dw: GPUBuffer; db?: GPUBuffer }): GpuOp {
    const mask = this.requireY('backwardFilter', b.y);
    // Without a bias the kernels still sum dz per channel: into scratch nobody reads.
    const db = this.useBias ? b.db : (this.dbScratch ??= this.keep(this.gpu.createBuffer(`${this.label} conv2d.db_unused`, this.shape.outChannels * 4)));
    if (!db) throw new Error(`${this.label}: conv2d.backwardFilter needs db (the bias gradient) because useBias is true`);
    this.checkSizes('backwardFilter', { x: [b.x, this.inputBytes()], dy: [b.dy, this.outputBytes()], y: [mask ?? b.dy, this.outputBytes()], dw: [b.dw, this.weightBytes()], db: [db, this.shape.outChannels * 4] });
    const { pre, dz, mask: onLoad } = this.maskFirst('backwardFilter', b.dy, mask, this.sub.filter === 'subgroup');
    const gpu = this.gpu;
    const g = this.fwd;
    const splits = this.tuning.splits;
    const kTotal = g.kh * g.kw * g.cin;
    const sub = this.sub.filter === 'subgroup';
    const colGroups = sub ? Math.ceil(g.cout / 4 / SG) : Math.ceil(g.cout / TILE);
    const kTiles = sub ? g.kh * g.kw * Math.ceil(g.cin / 4 / SG) : Math.ceil(kTotal / TILE);
    // Each split sums a whole number of steps (16 pixels in the tiled kernel, 4 in the other).
    const step = sub ? 4 : 16;
    const mPerSplit = Math.ceil(g.m / splits / step) * step;
    const used = Math.ceil(g.m / mPerSplit);
    if (splits > 1) {
      this.partials ??= {
        weights: this.keep(gpu.createBuffer(`${this.label} conv2d.dw_partials`, splits * kTotal * g.cout * 4)),
        bias: this.keep(gpu.createBuffer(`${this.label} conv2d.db_partials`, splits * g.cout * 4)),
      };
    }
    const out = splits > 1 ? this.partials!.weights : b.dw;
    const outBias = splits > 1 ? this.partials!.bias : db;
    const shape = this.uniform('filter', new Uint32Array([
      g.inH, g.inW, g.cin, g.cout, g.outH, g.outW, g.kh, g.kw, g.padTop, g.padLeft, g.m, colGroups,
      kTiles, mPerSplit, used, 0,
    ]));
    const p = this.pipelines.filter;
    const label = `${this.label} conv2d.backwardFilter ${this.dims()} splits=${used}`;
    const res: Record<string, GPUBuffer> = sub
      ? { shape, x4: b.x, dz4: dz, out4: out, outBias4: outBias }
      : { shape, x: b.x, dy: dz, y: onLoad ?? dz, out, outBias };
    const filterOp = gpu.dispatch(label, p, gpu.bindGroup(p, res, label), gpu.grid(colGroups * kTiles * used));
    if (splits === 1) return sequence(label, [...pre, filterOp]);
    // Partials of unused splits (when pixels run out first) are never written: sum only `used`.
    const r = this.pipelines.reduce;
    const kc = kTotal * g.cout;
    const rshape = this.uniform('reduce', new Uint32Array([kc, g.cout, used, 0]));
    const reduceLabel = `${this.label} conv2d.backwardFilter.reduce ${this.dims()} splits=${used}`;
    const reduceOp = gpu.dispatch(reduceLabel, r,
      gpu.bindGroup(r, { rshape, part: this.partials!.weights, partBias: this.partials!.bias, dw: b.dw, db }, reduceLabel),
      gpu.grid(Math.ceil((kc + g.cout) / 128)));
    return sequence(label, [...pre, filterOp, reduceOp]);
  }

  /** Releases the uniforms and scratch buffers this kernel allocated (not the caller's buffers). */
  destroy(): void {
    this.pipelines.winograd?.destroy();
    this.pipelines.winogradBackward?.destroy();
    for (const buf of [...this.uniforms, ...this.scratch]) this.gpu.destroyBuffer(buf);
    this.uniforms.length = 0;
    this.scratch.length = 0;
    this.dz = undefined;
    this.zeros = undefined;
    this.dbScratch = undefined;
    this.partials = undefined;
  }

  // ---------------------------------------------------------------- internals

  private gemm(pass: string, kind: ConvVariant, p: Pipeline, g: Geometry, x: GPUBuffer, mask: GPUBuffer, w: GPUBuffer, bias: GPUBuffer, y: GPUBuffer, act: Conv2dActivation = 'linear'): GpuOp {
    const gpu = this.gpu;
    const sub = kind === 'subgroup';
    const tile = kind === 'large' ? LARGE_TILE : TILE;
    const rows = sub ? SG * this.tuning.pixelGroups : tile;
    const colGroups = sub ? Math.ceil(g.cout / 4 / SG) : Math.ceil(g.cout / tile);
    const ph = g.phase;
    // Signed paddings wrap to their two's complement; the shaders read them back with i32().
    const shape = this.uniform(pass, new Uint32Array([
      g.inH, g.inW, g.cin, g.cout, g.outH, g.outW, g.kh, g.kw, g.padTop, g.padLeft, g.m, colGroups,
      act === 'relu' ? 1 : act === 'relu6' ? 2 : 0,
      this.shape.kernelSize[1], ph?.tapY0 ?? 0, ph?.tapX0 ?? 0, ph?.y ?? 0, ph?.x ?? 0, this.shape.height, this.shape.width,
    ]));
    const res: Record<string, GPUBuffer> = sub
      ? { shape, x4: x, x, w4: w, bias4: bias, y4: y }
      : kind === 'large' ? { shape, x4: x, mask, w4: w, bias, y } : { shape, x, mask, w, bias, y, x4: x, w4: w };
    const label = `${this.label} conv2d.${pass} ${this.dims()}${ph ? ` phase=${ph.y},${ph.x}` : ''}`;
    return gpu.dispatch(label, p, gpu.bindGroup(p, res, label), gpu.grid(colGroups * Math.ceil(g.m / rows)));
  }

  /** Zeros for the bias slot of GEMMs without one (Cin or Cout floats, vec4-padded). */
  private zeroBuffer(): GPUBuffer {
    const s = this.shape;
    this.zeros ??= this.keep(this.gpu.createBuffer(`${this.label} conv2d.zero_bias`, Math.ceil(Math.max(s.inChannels, s.outChannels) / 4) * 16));
    return this.zeros;
  }

  /**
   * With ReLU or ReLU6 and kernels that read dz as it is (`first`: the subgroup kernels,
   * Winograd): a pass writing dz = dy * (y > 0) (ReLU6: also * (y < 6)) to scratch, which the
   * kernel then reads. Otherwise the kernel reads dy and masks it with `mask` as it loads it.
   */
  private maskFirst(pass: string, dy: GPUBuffer, mask: GPUBuffer | undefined, first: boolean): { pre: GpuOp[]; dz: GPUBuffer; mask?: GPUBuffer } {
    const p = this.pipelines.reluMask;
    if (!mask || !first) return { pre: [], dz: dy, mask };
    if (!p) throw new Error(`internal: ${this.label} has no ReLU mask pipeline`);
    const gpu = this.gpu;
    this.dz ??= this.keep(gpu.createBuffer(`${this.label} conv2d.dz`, this.outputBytes()));
    const n4 = this.outputBytes() / 16;
    const label = `${this.label} conv2d.${pass}.relu_mask ${this.dims()}`;
    const res = { mshape: this.uniform('relu_mask', new Uint32Array([n4])), dy4: dy, y4: mask, dz4: this.dz };
    return { pre: [gpu.dispatch(label, p, gpu.bindGroup(p, res, label), gpu.grid(Math.ceil(n4 / 64)))], dz: this.dz };
  }

  private dims(): string {
    const s = this.shape;
    const [sh, sw] = this.strides;
    return `N=${s.batch} H=${s.height} W=${s.width} Cin=${s.inChannels} Cout=${s.outChannels} k=${s.kernelSize[0]}x${s.kernelSize[1]}` +
      `${sh > 1 || sw > 1 ? ` s=${sh}x${sw}` : ''} ${s.padding}`;
  }

  private uniform(what: string, data: Uint32Array): GPUBuffer {
    const buf = this.gpu.uniform(`${this.label} conv2d.${what}.shape`, data);
    this.uniforms.push(buf);
    return buf;
  }

  private keep(buf: GPUBuffer): GPUBuffer {
    this.scratch.push(buf);
    return buf;
  }

  private requireY(pass: string, y: GPUBuffer | undefined): GPUBuffer | undefined {
    if (this.shape.activation === 'linear') return undefined;
    if (!y) throw new Error(`${this.label}: conv2d.${pass} needs y (the forward output) because the activation is '${this.shape.activation}'`);
    return y;
  }

  private checkSizes(pass: string, bufs: Record<string, [GPUBuffer, number]>): void {
    for (const [role, [buf, bytes]] of Object.entries(bufs)) {
      if (buf.size < bytes) {
        throw new Error(`${this.label}: conv2d.${pass} ${this.dims()}: buffer '${role}' (${buf.label}) holds ${fmtBytes(buf.size)}, needs ${fmtBytes(bytes)}`);
      }
    }
  }

  inputBytes(): number {
    const s = this.shape;
    return s.batch * s.height * s.width * s.inChannels * 4;
  }

  outputBytes(): number {
    return this.fwd.m * this.shape.outChannels * 4;
  }

  weightBytes(): number {
    const s = this.shape;
    return s.kernelSize[0] * s.kernelSize[1] * s.inChannels * s.outChannels * 4;
  }
}

function describe(s: Conv2dShape): string {
  const k = Array.isArray(s.kernelSize) ? s.kernelSize.join('x') : String(s.kernelSize);
  const st = s.strides === undefined ? '' : `, strides ${Array.isArray(s.strides) ? s.strides.join('x') : String(s.strides)}`;
  return `[N=${s.batch}, H=${s.height}, W=${s.width}, Cin=${s.inChannels}] -> Cout=${s.outChannels}, kernel ${k}${st}, padding ${s.padding}`;
}

/**
 * What the tuner times for a shape, the rules' choice first: subgroup tiles of 16, 24 and 32
 * pixels, tiled, large tiles, and Winograd's forward (with the rules' backward kernels), each
 * where the shape and the device allow it.
 */
function convCandidates(gpu: Gpu, s: Conv2dShape): { name: string; tuning: Partial<Conv2dTuning> }[] {
  const vec4 = s.inChannels % 4 === 0 && s.outChannels % 4 === 0;
  const rule = convVariant(gpu, { subgroup: s.outChannels % 4 === 0, vec4 }, s.label ?? 'conv2d');
  const out: { name: string; tuning: Partial<Conv2dTuning> }[] = [];
  if (s.outChannels % 4 === 0 && subgroupsUsable(gpu)) {
    for (const pi of [3, 2, 4]) out.push({ name: `subgroup ${SG * pi}px`, tuning: { variant: 'subgroup', pixelGroups: pi } });
  }
  out.push({ name: 'tiled', tuning: { variant: 'tiled' } });
  if (vec4 && largeTilesFit(gpu)) out.push({ name: 'large', tuning: { variant: 'large' } });
  const [sh, sw] = s.strides ?? [1, 1];
  const g = { ...s, outHeight: convAxis(s.height, 3, 1, s.padding).out, outWidth: convAxis(s.width, 3, 1, s.padding).out, padTop: 0, padLeft: 0 };
  if (s.kernelSize[0] === 3 && s.kernelSize[1] === 3 && sh === 1 && sw === 1 && s.inChannels >= 8 && WinogradForward.fits(gpu, g)) {
    out.push({ name: `winograd+${rule}`, tuning: { variant: rule, winograd: true } });
  }
  // the rules' pick first, so that a budget running out mid-shape has measured it
  const first = out.findIndex((c) => c.tuning.variant === rule && !c.tuning.winograd);
  return [out[first], ...out.filter((_, i) => i !== first)];
}

/** The direct kernels of each pass: forward GEMM, input-gradient GEMM, filter gradient. */
interface PassKinds { forward: ConvVariant; backward: ConvVariant; filter: 'subgroup' | 'tiled' }

/**
 * The forward subgroup kernel needs Cout % 4 == 0, the backward ones Cin % 4 == 0 as well (else
 * tiled); the large tiles cover the two GEMMs and leave the filter gradient to the tiled kernel.
 */
function passKinds(t: Conv2dTuning, s: Conv2dShape): PassKinds {
  if (t.variant === 'large') return { forward: 'large', backward: 'large', filter: 'tiled' };
  const sub = t.variant === 'subgroup' && s.inChannels % 4 === 0 && s.outChannels % 4 === 0 ? 'subgroup' : 'tiled';
  return { forward: t.variant, backward: sub, filter: sub };
}

/** The input gradient of a 3x3 stride-1 layer as a Winograd convolution of dz (conv2d-winograd.ts). */
function winogradInputGradShape(s: Conv2dShape): WinogradShape {
  const rows = convAxis(s.height, 3, 1, s.padding);
  const cols = convAxis(s.width, 3, 1, s.padding);
  return {
    batch: s.batch, height: rows.out, width: cols.out, inChannels: s.outChannels, outChannels: s.inChannels,
    outHeight: s.height, outWidth: s.width, padTop: 2 - rows.padBefore, padLeft: 2 - cols.padBefore,
    activation: 'linear', label: s.label ?? 'conv2d', rotated: true,
  };
}

/** What train --verbose and the page print for a layer. */
function describeChoice(t: Conv2dTuning, k: PassKinds, winogradBackward: boolean): string {
  const backward = k.backward === k.filter ? k.backward : `${k.backward}, filter gradient ${k.filter}`;
  if (t.winograd && winogradBackward) return `conv2d winograd F(2x2,3x3) forward and input gradient, ${k.filter} filter gradient`;
  if (t.winograd) return `conv2d winograd F(2x2,3x3) forward, ${backward} backward`;
  if (k.forward === 'large') return 'conv2d large (filter gradient tiled)';
  return `conv2d ${k.forward}${backward === k.forward ? '' : ` (backward ${backward})`}`;
}

function sequence(label: string, ops: GpuOp[]): GpuOp {
  return { label, encode: (encoder) => { for (const op of ops) op.encode(encoder); } };
}
