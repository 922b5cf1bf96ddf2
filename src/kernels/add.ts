import type { Gpu, GpuOp, Pipeline } from '../gpu/index.ts';

export interface AddShape {
  /** elements (floats) of each tensor */
  size: number;
  /**
   * tensors summed by forward(); >= 2 for a Keras Add layer. 1 makes an accumulate-only
   * kernel (its forward() is a plain copy).
   */
  inputs: number;
  label?: string;
}

const SHADER = 'add';
const WG = 128; // WG in add.wgsl
/** Inputs per stage in add.wgsl: sum2..sum4 (+ y written), acc1..acc3 (+ y read and written). */
const MAX_SUM = 4;
const MAX_ACC = 3;

interface Stage { entry: string; inputs: number[] }

/**
 * Elementwise sum of `inputs` tensors (Keras Add) and in-place accumulation (y += x, to sum
 * gradients where a tensor feeds several layers).
 *
 * forward() runs one dispatch summing the first (up to) 4 inputs into y, then dispatches
 * adding (up to) 3 more into y in place, so no dispatch binds more than 5 storage buffers
 * (fewer when the adapter's maxStorageBuffersPerShaderStage is lower, e.g. 4 in
 * compatibility mode). y may be one of the inputs (once): it is then summed into in place.
 * Inputs may repeat. size % 4 == 0 runs 4 elements per invocation.
 */
export class AddKernel {
  readonly size: number;
  readonly inputs: number;
  readonly label: string;
  private readonly uniforms: GPUBuffer[];

  private constructor(
    private readonly gpu: Gpu,
    shape: Required<AddShape>,
    private readonly pipelines: Map<string, Pipeline>,
    private readonly params: GPUBuffer,
    private readonly vec4: boolean,
    private readonly perSum: number,
    private readonly perAcc: number,
  ) {
    this.size = shape.size;
    this.inputs = shape.inputs;
    this.label = shape.label;
    this.uniforms = [params];
  }

  static async create(gpu: Gpu, shape: AddShape): Promise<AddKernel> {
    const label = shape.label ?? 'add';
    const { size, inputs } = shape;
    const what = `${label}: Add of ${inputs} tensors of ${size} elements`;
    if (!Number.isInteger(size) || size < 1) throw new Error(`${what}: size must be a positive integer (elements per tensor), got ${size}`);
    if (!Number.isInteger(inputs) || inputs < 1) throw new Error(`${what}: inputs must be a positive integer (2 or more for an Add layer, 1 for accumulate only), got ${inputs}`);
    const bytes = size * 4;
    const maxBinding = gpu.limits.maxStorageBufferBindingSize;
    if (bytes > maxBinding) {
      throw new Error(`${what}: each tensor is ${bytes} bytes, over this adapter's maxStorageBufferBindingSize of ${maxBinding} bytes; use a smaller batch (or micro-batches) or a smaller input size`);
    }
    const maxStorage = gpu.limits.maxStorageBuffersPerShaderStage;
    const perSum = Math.min(MAX_SUM, maxStorage - 1);
    const perAcc = Math.min(MAX_ACC, maxStorage - 1);
    if (maxStorage < 3) throw new Error(`${what}: this adapter allows only ${maxStorage} storage buffers per shader stage; 3 are needed`);
    const vec4 = size % 4 === 0;
    const sfx = vec4 ? '4' : '';
    // The entry points forward() can need (y separate from or aliasing an input) and acc1.
    const entries = new Set<string>(['acc1']);
    for (const s of [...plan(inputs, -1, perSum, perAcc), ...(inputs > 1 ? plan(inputs, 0, perSum, perAcc) : [])]) entries.add(s.entry);
    const names = [...entries];
    const compiled = await Promise.all(names.map((e) => gpu.pipeline(SHADER, { entryPoint: `${e}${sfx}` })));
    const pipelines = new Map(names.map((e, i) => [e, compiled[i]]));
    const params = gpu.uniform(`${label} add.params`, new Uint32Array([vec4 ? size / 4 : size]));
    return new AddKernel(gpu, { size, inputs, label }, pipelines, params, vec4, perSum, perAcc);
  }

  private name(pass: string): string {
    return `${this.label} add.${pass} inputs=${this.inputs} n=${this.size}`;
  }

  private check(pass: string, role: string, buffer: GPUBuffer): void {
    if (buffer.size < this.size * 4) {
      throw new Error(`${this.name(pass)}: buffer '${role}' (${buffer.label}) is ${buffer.size} bytes, needs ${this.size * 4}`);
    }
  }

  private stage(pass: string, label: string, entry: string, xs: GPUBuffer[], y: GPUBuffer): GpuOp {
    const pipeline = this.pipelines.get(entry);
    if (!pipeline) throw new Error(`${this.name(pass)}: internal error, pipeline ${entry} was not compiled`);
    const size = this.size * 4;
    const sfx = this.vec4 ? '_4' : '';
    const res: Record<string, GPUBuffer | { buffer: GPUBuffer; size: number }> = { p: this.params, [`y${sfx}`]: { buffer: y, size } };
    xs.forEach((buffer, j) => { res[`x${j}${sfx}`] = { buffer, size }; });
    const bg = this.gpu.bindGroup(pipeline, res, label);
    const groups = Math.ceil((this.vec4 ? this.size / 4 : this.size) / WG);
    return this.gpu.dispatch(label, pipeline, bg, this.gpu.grid(groups));
  }

  /**
   * y (overwritten, every element) = xs[0] + ... + xs[inputs - 1]; each holds `size` floats.
   * y may be one of xs (at most once): the others are then added to it in place.
   */
  forward(b: { xs: GPUBuffer[]; y: GPUBuffer }): GpuOp {
    const { xs, y } = b;
    if (xs.length !== this.inputs) throw new Error(`${this.name('forward')}: got ${xs.length} input buffers, expected ${this.inputs}`);
    xs.forEach((x, i) => this.check('forward', `xs[${i}]`, x));
    this.check('forward', 'y', y);
    const aliased = xs.flatMap((x, i) => (x === y ? [i] : []));
    if (aliased.length > 1) {
      throw new Error(`${this.name('forward')}: y (${y.label}) is xs[${aliased.join('], xs[')}]; y may alias at most one input (sum into a separate buffer instead)`);
    }
    if (xs.length === 1) return this.gpu.copy(this.name('forward'), xs[0], 0, y, 0, this.size * 4);
    const stages = plan(this.inputs, aliased.length ? aliased[0] : -1, this.perSum, this.perAcc);
    const ops = stages.map((s, k) =>
      this.stage('forward', `${this.name('forward')} stage ${k + 1}/${stages.length} ${s.entry}`, s.entry, s.inputs.map((i) => xs[i]), y));
    if (ops.length === 1) return ops[0];
    return { label: this.name('forward'), encode: (encoder) => { for (const op of ops) op.encode(encoder); } };
  }

  /** y += x in place (accumulates: y keeps its contents); both hold `size` floats, distinct buffers. */
  accumulate(b: { x: GPUBuffer; y: GPUBuffer }): GpuOp {
    this.check('accumulate', 'x', b.x);
    this.check('accumulate', 'y', b.y);
    if (b.x === b.y) throw new Error(`${this.name('accumulate')}: x and y are the same buffer (${b.x.label}); y += y is not supported`);
    return this.stage('accumulate', this.name('accumulate'), 'acc1', [b.x], b.y);
  }

  destroy(): void {
    for (const u of this.uniforms) this.gpu.destroyBuffer(u);
    this.uniforms.length = 0;
  }
}

/**
 * The dispatches summing `n` inputs: without aliasing, sumK over the first K, then accK over
 * the rest; when y is input `alias`, accK stages over the others only.
 */
function plan(n: number, alias: number, perSum: number, perAcc: number): Stage[] {
  const rest = [...Array(n).keys()].filter((i) => i !== alias);
  const stages: Stage[] = [];
  if (alias < 0) {
    if (n < 2) return []; // forward() copies instead
    const first = rest.splice(0, Math.min(perSum, n));
    stages.push({ entry: `sum${first.length}`, inputs: first });
  }
  while (rest.length) {
    const chunk = rest.splice(0, perAcc);
    stages.push({ entry: `acc${chunk.length}`, inputs: chunk });
  }
  return stages;
}
