import type { Gpu, GpuOp, Pipeline } from '../gpu/index.ts';

/**
 * A Keras activation. 'relu' carries keras.layers.ReLU's parameters (all >= 0, like the
 * layer's validation): relu6 is { kind: 'relu', maxValue: 6 }, LeakyReLU(alpha) is
 * { kind: 'relu', negativeSlope: alpha }.
 */
export type ActivationSpec =
  | { kind: 'linear' }
  | { kind: 'relu'; maxValue?: number; negativeSlope?: number; threshold?: number }
  | { kind: 'sigmoid' }
  | { kind: 'tanh' }
  | { kind: 'swish' };

export interface ActivationShape {
  /** elements (floats) per op, e.g. batch * height * width * channels */
  size: number;
  activation: ActivationSpec;
  label?: string;
}

const SHADER = 'activation';
const WG = 128; // WG in activation.wgsl
const KINDS = { linear: 0, relu: 1, sigmoid: 2, tanh: 3, swish: 4 } as const;

/** The relu parameters as activation.wgsl's Params flags; see ActivationKernel for why. */
interface ReluFlags { slope: number; threshold: number; maxValue: number | undefined; maxOpen: boolean; negClosed: boolean }

function reluFlags(a: ActivationSpec & { kind: 'relu' }, what: string): ReluFlags {
  const slope = a.negativeSlope ?? 0;
  const threshold = a.threshold ?? 0;
  const maxValue = a.maxValue;
  for (const [k, v] of [['negativeSlope', slope], ['threshold', threshold], ['maxValue', maxValue ?? 0]] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new Error(`${what}: ${k} must be a finite number >= 0 (as keras.layers.ReLU requires), got ${v}; omit maxValue for no upper bound`);
    }
  }
  return {
    slope, threshold, maxValue,
    // Keras calls TF's native Relu6 op when max_value == 6 and threshold == 0; its gradient is
    // 0 at x == 6, whereas the clip_by_value path passes the gradient at x == max_value.
    maxOpen: maxValue === 6 && threshold === 0,
    // Keras calls TF's native LeakyRelu op when only negative_slope is set; its gradient at
    // x == 0 is negative_slope, whereas relu(x) - a*relu(-x) has gradient 0 there.
    negClosed: slope !== 0 && maxValue === undefined && threshold === 0,
  };
}

export function describeActivation(a: ActivationSpec): string {
  if (a.kind !== 'relu') return a.kind;
  const parts: string[] = [];
  if (a.maxValue !== undefined) parts.push(`maxValue=${a.maxValue}`);
  if (a.negativeSlope) parts.push(`negativeSlope=${a.negativeSlope}`);
  if (a.threshold) parts.push(`threshold=${a.threshold}`);
  return parts.length ? `relu(${parts.join(',')})` : 'relu';
}

/**
 * Elementwise Keras activations (linear, relu with Keras 3's max_value / negative_slope /
 * threshold, sigmoid, tanh, swish) and their gradients computed from the input x, so the
 * forward output need not be kept. Both ops overwrite every element of their output.
 *
 * ReLU follows keras.activations.relu as its TensorFlow backend evaluates it, including at
 * the kinks, where the gradient is the subgradient TF's ops give:
 *   f(x) = max(0, min(max, x > t ? x : 0)) - a * max(t - x, 0)
 *   (so f(t) = 0 for t > 0, not t as the Keras docstring says: Keras computes x * (x > t))
 *   f'(x) = [t < x <= max] + a * [x < t]     (TF Relu / Greater-mask and clip_by_value, whose
 *                                             Minimum/Maximum gradients pass ties to x)
 *   except relu6 (max 6, t 0, native Relu6):  [0 < x < 6] + a * [x < 0]
 *   and LeakyReLU (only a set, native op):    x > 0 ? 1 : a   (a at x == 0)
 * sigmoid and swish use exp(-|x|) only and tanh a clamped argument, so no input gives NaN or
 * Inf (other than NaN inputs).
 *
 * size % 4 == 0 runs 4 elements per invocation. The output (y, dx) must not alias an input:
 * a buffer may not be bound read-only and writable in one dispatch (x and dy may share one).
 */
export class ActivationKernel {
  readonly size: number;
  readonly activation: ActivationSpec;
  readonly label: string;
  private readonly uniforms: GPUBuffer[];

  private constructor(
    private readonly gpu: Gpu,
    shape: { size: number; activation: ActivationSpec; label: string },
    private readonly fwd: Pipeline,
    private readonly bwd: Pipeline,
    private readonly params: GPUBuffer,
    private readonly vec4: boolean,
  ) {
    this.size = shape.size;
    this.activation = shape.activation;
    this.label = shape.label;
    this.uniforms = [params];
  }

  static async create(gpu: Gpu, shape: ActivationShape): Promise<ActivationKernel> {
    const label = shape.label ?? 'activation';
    const a = shape.activation;
    const kindName = (a as { kind?: unknown } | undefined)?.kind;
    if (typeof kindName !== 'string' || !(kindName in KINDS)) {
      throw new Error(`${label}: unsupported activation ${JSON.stringify(kindName)}; supported: ${Object.keys(KINDS).join(', ')}`);
    }
    const { size } = shape;
    const what = `${label}: ${describeActivation(a)} activation of ${size} elements`;
    if (!Number.isInteger(size) || size < 1) throw new Error(`${what}: size must be a positive integer (elements per op), got ${size}`);
    const bytes = size * 4;
    const maxBinding = gpu.limits.maxStorageBufferBindingSize;
    if (bytes > maxBinding) {
      throw new Error(`${what}: the tensor is ${bytes} bytes, over this adapter's maxStorageBufferBindingSize of ${maxBinding} bytes; use a smaller batch (or micro-batches) or a smaller input size`);
    }
    const relu = a.kind === 'relu' ? reluFlags(a, what) : undefined;
    const vec4 = size % 4 === 0;
    const count = vec4 ? size / 4 : size;
    const constants = { KIND: KINDS[a.kind] };
    const sfx = vec4 ? '4' : '';
    const [fwd, bwd] = await Promise.all([
      gpu.pipeline(SHADER, { entryPoint: `forward${sfx}`, constants }),
      gpu.pipeline(SHADER, { entryPoint: `backward${sfx}`, constants }),
    ]);
    const data = new ArrayBuffer(32);
    const u = new Uint32Array(data);
    const f = new Float32Array(data);
    u[0] = count;
    u[1] = relu?.maxValue !== undefined ? 1 : 0;
    u[2] = relu?.maxOpen ? 1 : 0;
    u[3] = relu?.negClosed ? 1 : 0;
    f[4] = relu?.slope ?? 0;
    f[5] = relu?.threshold ?? 0;
    f[6] = relu?.maxValue ?? 0;
    const params = gpu.uniform(`${label} activation.params`, u);
    const spec: ActivationSpec = a.kind === 'relu' ? { ...a } : { kind: a.kind };
    return new ActivationKernel(gpu, { size, activation: spec, label }, fwd, bwd, params, vec4);
  }

  private name(pass: string): string {
    return `${this.label} activation.${pass} ${describeActivation(this.activation)} n=${this.size}`;
  }

  private bind(pass: string, pipeline: Pipeline, buffers: Record<string, GPUBuffer>, output: string): GPUBindGroup {
    const res: Record<string, GPUBuffer | { buffer: GPUBuffer; size: number }> = { p: this.params };
    const bytes = this.size * 4;
    for (const [role, buffer] of Object.entries(buffers)) {
      if (buffer.size < bytes) {
        throw new Error(`${this.name(pass)}: buffer '${role}' (${buffer.label}) is ${buffer.size} bytes, needs ${bytes}`);
      }
      // Inputs may share a buffer (both read-only); the output may not alias either.
      const [other] = Object.entries(buffers).find(([r, b]) => r !== role && b === buffer && (r === output || role === output)) ?? [];
      if (other !== undefined) {
        throw new Error(`${this.name(pass)}: '${role}' and '${other}' are the same buffer (${buffer.label}); the output needs its own buffer (this op does not run in place)`);
      }
      res[this.vec4 ? `${role}4` : role] = { buffer, size: bytes };
    }
    return this.gpu.bindGroup(pipeline, res, this.name(pass));
  }

  private get workgroups(): [number, number] {
    return this.gpu.grid(Math.ceil((this.vec4 ? this.size / 4 : this.size) / WG));
  }

  /** y (overwritten) = f(x); both hold `size` floats. */
  forward(b: { x: GPUBuffer; y: GPUBuffer }): GpuOp {
    const bg = this.bind('forward', this.fwd, { x: b.x, y: b.y }, 'y');
    return this.gpu.dispatch(this.name('forward'), this.fwd, bg, this.workgroups);
  }

  /** dx (overwritten) = dy * f'(x), x being the forward INPUT; all hold `size` floats. */
  backward(b: { x: GPUBuffer; dy: GPUBuffer; dx: GPUBuffer }): GpuOp {
    const bg = this.bind('backward', this.bwd, { x: b.x, dy: b.dy, dx: b.dx }, 'dx');
    return this.gpu.dispatch(this.name('backward'), this.bwd, bg, this.workgroups);
  }

  destroy(): void {
    for (const u of this.uniforms) this.gpu.destroyBuffer(u);
    this.uniforms.length = 0;
  }
}
