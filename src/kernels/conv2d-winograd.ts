// The forward pass of a 3x3 stride-1 convolution by Winograd F(2x2, 3x3)
// (shaders/conv2d_winograd.wgsl): filter transform, input transform, 16 GEMMs over the
// channels, output transform with bias and activation fused. 2.25x fewer multiplies than the
// direct convolution, for scratch memory: the transformed input and the 16 GEMMs' results are
// each 4x the size of the input and output. Conv2dKernel uses it for its forward op when
// chosen (the tuner, or the 'winograd' family), and with `rotated` for the input gradient
// (dz convolved with the kernel turned 180 degrees); the filter gradient stays direct.
import type { Gpu, GpuOp, Pipeline } from '../gpu/index.ts';
import { plainSubgroupGemm } from './dense.ts';
import { subgroupsUsable } from './variants.ts';

const SHADER = 'conv2d_winograd';
const WG = 128; // WG in the shader's 1-D passes
const BT = 32; // rows and columns of a GEMM workgroup's block

export interface WinogradShape {
  batch: number; height: number; width: number; inChannels: number; outChannels: number;
  outHeight: number; outWidth: number; padTop: number; padLeft: number;
  activation: 'relu' | 'relu6' | 'linear';
  label: string;
  /**
   * The input gradient of a 3x3 stride-1 layer: x is dz, y is dx, inChannels / outChannels the
   * layer's Cout / Cin, and w the layer's own weights, read turned 180 degrees (no copy).
   */
  rotated?: boolean;
}

/** 2x2 output blocks, and the planes' strides padded to 64 floats (binding offsets align to 256 bytes). */
function planes(s: Omit<WinogradShape, 'activation' | 'label'>): { tiles: number; tilesPad: number; uplane: number } {
  const tiles = s.batch * Math.ceil(s.outHeight / 2) * Math.ceil(s.outWidth / 2);
  return { tiles, tilesPad: Math.ceil(tiles / 64) * 64, uplane: Math.ceil((s.inChannels * s.outChannels) / 64) * 64 };
}

/** Bytes of scratch the transform needs (transformed filter, input and GEMM results). */
export function winogradScratchBytes(s: Omit<WinogradShape, 'activation' | 'label'>): { filter: number; input: number; products: number } {
  const { tilesPad, uplane } = planes(s);
  return { filter: 16 * uplane * 4, input: 16 * tilesPad * s.inChannels * 4, products: 16 * tilesPad * s.outChannels * 4 };
}

type PlaneGemm = Awaited<ReturnType<typeof plainSubgroupGemm>>;

/**
 * Scratch shared by every Winograd op on a device, one pool per role (U, V, M): an op's scratch
 * lives only within the op and ops run one after another, so the layers of a model need the
 * largest layer's scratch, not the sum (on VGG16 at 60x90 batch 8: about 40 MiB instead of 110).
 * Kernels reserve their size when created and take the buffer when their op is first built, so
 * a plan's first op already gets the largest; a buffer outgrown later stays while ops bind it.
 */
class ScratchPool {
  private readonly reserved = new Map<object, number>();
  private readonly users = new Map<GPUBuffer, number>();
  private current: GPUBuffer | null = null;

  constructor(private readonly gpu: Gpu, private readonly role: string) {}

  reserve(owner: object, bytes: number): void {
    this.reserved.set(owner, bytes);
  }

  acquire(bytes: number): GPUBuffer {
    if (!this.current || this.current.size < bytes) {
      const size = Math.max(bytes, ...this.reserved.values());
      this.current = this.gpu.createBuffer(`winograd.${this.role} (shared by the Winograd layers)`, size);
      this.users.set(this.current, 0);
    }
    this.users.set(this.current, this.users.get(this.current)! + 1);
    return this.current;
  }

  release(owner: object, buf: GPUBuffer | null): void {
    this.reserved.delete(owner);
    if (!buf) return;
    const left = this.users.get(buf)! - 1;
    if (left > 0) {
      this.users.set(buf, left);
      return;
    }
    this.users.delete(buf);
    if (buf === this.current) this.current = null;
    this.gpu.destroyBuffer(buf);
  }
}

const pools = new WeakMap<Gpu, Record<'u' | 'v' | 'm', ScratchPool>>();
function scratchPools(gpu: Gpu): Record<'u' | 'v' | 'm', ScratchPool> {
  let p = pools.get(gpu);
  if (!p) pools.set(gpu, (p = { u: new ScratchPool(gpu, 'U'), v: new ScratchPool(gpu, 'V'), m: new ScratchPool(gpu, 'M') }));
  return p;
}

export class WinogradForward {
  private scratch: { u: GPUBuffer; v: GPUBuffer; m: GPUBuffer } | null = null;
  private readonly bytes: ReturnType<typeof winogradScratchBytes>;
  private readonly shapeBuf: GPUBuffer;
  private readonly tiles: number;
  private readonly tilesPad: number;
  private readonly uplane: number;

  private constructor(private readonly gpu: Gpu, readonly shape: WinogradShape, private readonly p: Record<'filter' | 'input' | 'gemm' | 'output', Pipeline>, private readonly planeGemm: PlaneGemm | null) {
    const s = shape;
    const th = Math.ceil(s.outHeight / 2);
    const tw = Math.ceil(s.outWidth / 2);
    ({ tiles: this.tiles, tilesPad: this.tilesPad, uplane: this.uplane } = planes(s));
    const bytes = (this.bytes = winogradScratchBytes(s));
    const pool = scratchPools(gpu);
    pool.u.reserve(this, bytes.filter);
    pool.v.reserve(this, bytes.input);
    pool.m.reserve(this, bytes.products);
    const act = s.activation === 'relu' ? 1 : s.activation === 'relu6' ? 2 : 0;
    this.shapeBuf = gpu.uniform(`${s.label} winograd.shape`, new Uint32Array([
      s.batch, s.height, s.width, s.inChannels, s.outChannels, s.outHeight, s.outWidth, s.padTop,
      s.padLeft, th, tw, this.tiles, act, this.tilesPad, this.uplane, 0,
    ]));
  }

  /** Whether the scratch fits the adapter's binding limit (else the direct kernels run). */
  static fits(gpu: Gpu, s: Omit<WinogradShape, 'activation' | 'label'>): boolean {
    const b = winogradScratchBytes(s);
    const max = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
    return Math.max(b.filter, b.input, b.products) <= max;
  }

  static async create(gpu: Gpu, shape: WinogradShape): Promise<WinogradForward> {
    const [filter, input, gemm, output] = await Promise.all(['transform_filter', 'transform_input', 'gemm', 'transform_output'].map((entryPoint) =>
      gpu.pipeline(SHADER, { entryPoint, constants: entryPoint === 'transform_filter' && shape.rotated ? { ROTATED: 1 } : {} })));
    // The subgroup GEMM where it runs (lavapipe: workgroup-memory tiles are several times slower)
    const fast = subgroupsUsable(gpu) && shape.inChannels % 4 === 0 && shape.outChannels % 4 === 0;
    const planeGemm = fast ? await plainSubgroupGemm(gpu, planes(shape).tiles, shape.outChannels, shape.inChannels, `${shape.label} winograd`) : null;
    return new WinogradForward(gpu, shape, { filter, input, gemm, output }, planeGemm);
  }

  /** y = act(conv(x, w) + bias): four dispatches (the filter transform each time: it is small). */
  forward(b: { x: GPUBuffer; w: GPUBuffer; bias: GPUBuffer; y: GPUBuffer }): GpuOp {
    const { gpu, p, shape: s } = this;
    if (this.destroyed) throw new Error(`internal: ${s.label} winograd op built after destroy()`);
    const pool = scratchPools(gpu);
    this.scratch ??= { u: pool.u.acquire(this.bytes.filter), v: pool.v.acquire(this.bytes.input), m: pool.m.acquire(this.bytes.products) };
    const { u, v, m } = this.scratch;
    const label = `${s.label} conv2d.${s.rotated ? 'backwardInput' : 'forward'} winograd F(2x2,3x3) N=${s.batch} H=${s.height} W=${s.width} Cin=${s.inChannels} Cout=${s.outChannels}`;
    const ops = [
      gpu.dispatch(`${label} filter`, p.filter, gpu.bindGroup(p.filter, { s: this.shapeBuf, w: b.w, u }, label), gpu.grid(Math.ceil((s.inChannels * s.outChannels) / WG))),
      gpu.dispatch(`${label} input`, p.input, gpu.bindGroup(p.input, { s: this.shapeBuf, x: b.x, v }, label), gpu.grid(Math.ceil((this.tiles * s.inChannels) / WG))),
      ...this.gemms(label, this.scratch),
      gpu.dispatch(`${label} output`, p.output, gpu.bindGroup(p.output, { s: this.shapeBuf, mr: m, bias: b.bias, y: b.y }, label), gpu.grid(Math.ceil((this.tiles * s.outChannels) / WG))),
    ];
    return { label, encode: (encoder) => { for (const op of ops) op.encode(encoder); } };
  }

  /** M[p] = V[p] . U[p] for the 16 planes: one dispatch of the shader's GEMM, or 16 of the subgroup GEMM. */
  private gemms(label: string, { u, v, m }: { u: GPUBuffer; v: GPUBuffer; m: GPUBuffer }): GpuOp[] {
    const { gpu, p, shape: s } = this;
    const g = this.planeGemm;
    if (!g) return [gpu.dispatch(`${label} gemm`, p.gemm, gpu.bindGroup(p.gemm, { s: this.shapeBuf, vr: v, ur: u, m }, label), [Math.ceil(s.outChannels / BT), Math.ceil(this.tiles / BT), 16])];
    const ops: GpuOp[] = [];
    const [vPlane, uPlane, mPlane] = [this.tilesPad * s.inChannels * 4, this.uplane * 4, this.tilesPad * s.outChannels * 4];
    for (let q = 0; q < 16; q++) {
      const bg = gpu.bindGroup(g.pipeline, {
        dims: g.dims,
        a: { buffer: v, offset: q * vPlane, size: this.tiles * s.inChannels * 4 },
        b: { buffer: u, offset: q * uPlane, size: s.inChannels * s.outChannels * 4 },
        bias: { buffer: u, offset: 0, size: 16 },
        c: { buffer: m, offset: q * mPlane, size: this.tiles * s.outChannels * 4 },
      }, `${label} gemm ${q}`);
      ops.push(gpu.dispatch(`${label} gemm ${q}`, g.pipeline, bg, g.grid));
    }
    return ops;
  }

  private destroyed = false;

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const pool = scratchPools(this.gpu);
    pool.u.release(this, this.scratch?.u ?? null);
    pool.v.release(this, this.scratch?.v ?? null);
    pool.m.release(this, this.scratch?.m ?? null);
    this.scratch = null;
    for (const buf of [this.shapeBuf, ...(this.planeGemm ? [this.planeGemm.dims] : [])]) this.gpu.destroyBuffer(buf);
  }
}
