import type { NamedAttrMap, Tensor, Tensor4D } from '@tensorflow/tfjs';
import type { Gpu, GpuOp } from '../../src/gpu/index.ts';
import { Conv2dKernel } from '../../src/kernels/conv2d.ts';
import { DenseKernel } from '../../src/kernels/dense.ts';
import { DropoutKernel } from '../../src/kernels/dropout.ts';
import { MaxPool2dKernel } from '../../src/kernels/maxpool2d.ts';
import { SgdKernel } from '../../src/kernels/sgd.ts';
import { GuardKernel } from '../../src/kernels/guard.ts';
import { SigmoidBceKernel } from '../../src/kernels/sigmoid-bce.ts';
import type { Tf, TfOutput } from './tfjs.ts';

/** Our side of a row: one op submitted per measurement. */
export interface OursCase {
  op: GpuOp;
  /** Floating-point operations of one run as the kernel counts them (overrides the row's). */
  flops?: number;
}

/** TF.js's side of a row: the same operation with the same data, called inside tf.tidy. */
export interface TfjsCase {
  run: () => TfOutput;
}

export interface RowSetup {
  ours: OursCase;
  tfjs?: TfjsCase;
  /** Frees what setup created (our buffers and kernels, TF.js tensors). */
  dispose(): void;
}

/**
 * One line of the benchmark. `name` contains 'conv2d' for convolution forward rows and 'grad'
 * for backward rows. `flops` is the nominal count used for GFLOP/s of both engines; for
 * memory-bound rows (pooling, dropout, the loss) it is a small per-element count and their
 * GFLOP/s only says how far from compute-bound they are.
 */
export interface BenchRow {
  name: string;
  shape: string;
  flops: number;
  /** Creates the kernel(s), buffers and tensors; `tf` is absent with --no-tfjs. */
  setup(gpu: Gpu, tf: Tf | undefined): Promise<RowSetup>;
}

// ------------------------------------------------------------------ data and resources

/** Deterministic uniform floats in [lo, hi) (mulberry32), the same for both engines. */
export function randomData(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

/** A ReLU output: about half zeros, so masks in backward passes take both branches. */
export function reluData(n: number, seed: number): Float32Array {
  const d = randomData(n, seed);
  for (let i = 0; i < n; i++) if (d[i] < 0) d[i] = 0;
  return d;
}

/** Tracks what a row allocates on both engines so dispose() frees all of it. */
export class Resources {
  private readonly buffers: GPUBuffer[] = [];
  private readonly tensors: Tensor[] = [];
  private readonly kernels: { destroy(): void }[] = [];

  constructor(private readonly gpu: Gpu, private readonly tf: Tf | undefined, private readonly label: string) {}

  /** A device buffer holding `data`. */
  upload(role: string, data: Float32Array): GPUBuffer {
    const b = this.gpu.upload(`${this.label} ${role}`, data);
    this.buffers.push(b);
    return b;
  }

  /** An uninitialised (zeroed) device buffer of n floats. */
  output(role: string, n: number): GPUBuffer {
    const b = this.gpu.createBuffer(`${this.label} ${role}`, n * 4);
    this.buffers.push(b);
    return b;
  }

  kernel<K extends { destroy(): void }>(k: K): K {
    this.kernels.push(k);
    return k;
  }

  /** A TF.js tensor holding `data` (only called when TF.js is loaded). */
  tensor(data: Float32Array, shape: number[]): Tensor {
    if (!this.tf) throw new Error(`${this.label}: TF.js is not loaded`);
    const t = this.tf.tensor(data, shape, 'float32');
    this.tensors.push(t);
    return t;
  }

  track<T extends Tensor>(t: T): T {
    this.tensors.push(t);
    return t;
  }

  dispose(): void {
    for (const k of this.kernels) k.destroy();
    for (const b of this.buffers) this.gpu.destroyBuffer(b);
    for (const t of this.tensors) t.dispose();
    this.kernels.length = this.buffers.length = this.tensors.length = 0;
  }
}

// ------------------------------------------------------------------ dense

export interface DenseRowShape {
  batch: number;
  inFeatures: number;
  outFeatures: number;
  /** Layer name used in row names and kernel labels. */
  layer?: string;
}

/** Forward (bias + ReLU fused), input gradient and weight gradient of a ReLU Dense layer. */
export function denseRows(s: DenseRowShape): BenchRow[] {
  const { batch: B, inFeatures: I, outFeatures: O } = s;
  const layer = s.layer ?? 'dense';
  const shape = `B=${B} ${I}->${O} relu`;
  const macs = B * I * O;
  const make = (pass: 'forward' | 'grad_input' | 'grad_weights'): BenchRow => ({
    name: pass === 'forward' ? layer : `${layer} ${pass}`,
    shape,
    flops: 2 * macs,
    async setup(gpu, tf) {
      const label = `bench ${layer} ${pass}`;
      const r = new Resources(gpu, tf, label);
      try {
        const k = r.kernel(await DenseKernel.create(gpu, { batch: B, inFeatures: I, outFeatures: O, activation: 'relu', label: layer }));
        const x = randomData(B * I, 1, 0, 1);
        const w = randomData(I * O, 2, -0.02, 0.02);
        const b = randomData(O, 3, -0.1, 0.1);
        const y = reluData(B * O, 4);
        const dy = randomData(B * O, 5);
        const flops = k.flops();
        if (pass === 'forward') {
          const ours = { op: k.forward({ x: r.upload('x', x), w: r.upload('w', w), b: r.upload('b', b), y: r.output('y', B * O) }), flops: flops.forward };
          if (!tf) return { ours, dispose: () => r.dispose() };
          const tx = r.tensor(x, [B, I]), tw = r.tensor(w, [I, O]), tb = r.tensor(b, [O]);
          return { ours, tfjs: { run: () => tf.fused.matMul({ a: tx, b: tw, bias: tb, activation: 'relu' }) }, dispose: () => r.dispose() };
        }
        if (pass === 'grad_input') {
          const ours = { op: k.backwardInput({ dy: r.upload('dy', dy), y: r.upload('y', y), w: r.upload('w', w), dx: r.output('dx', B * I) }), flops: flops.backwardInput };
          if (!tf) return { ours, dispose: () => r.dispose() };
          const tdy = r.tensor(dy, [B, O]), ty = r.tensor(y, [B, O]), tw = r.tensor(w, [I, O]);
          // TF.js's fused-matMul gradient: dz = dy * step(y), dx = dz . w^T.
          return { ours, tfjs: { run: () => tf.matMul(tf.mul(tdy, tf.step(ty)), tw, false, true) }, dispose: () => r.dispose() };
        }
        const ours = {
          op: k.backwardWeights({ x: r.upload('x', x), dy: r.upload('dy', dy), y: r.upload('y', y), dw: r.output('dw', I * O), db: r.output('db', O) }),
          flops: flops.backwardWeights,
        };
        if (!tf) return { ours, dispose: () => r.dispose() };
        const tx = r.tensor(x, [B, I]), tdy = r.tensor(dy, [B, O]), ty = r.tensor(y, [B, O]);
        return {
          ours,
          tfjs: {
            run: () => {
              const dz = tf.mul(tdy, tf.step(ty));
              return [tf.matMul(tx, dz, true, false), tf.sum(dz, 0)];
            },
          },
          dispose: () => r.dispose(),
        };
      } catch (e) {
        r.dispose();
        throw e;
      }
    },
  });
  return [make('forward'), make('grad_input'), make('grad_weights')];
}

// ------------------------------------------------------------------ dropout

/** Inverted dropout forward and backward on `size` elements. */
export function dropoutRows(size: number, rate: number, layer = 'dropout'): BenchRow[] {
  const shape = `n=${size} rate=${rate}`;
  const make = (pass: 'forward' | 'grad'): BenchRow => ({
    name: pass === 'forward' ? layer : `${layer} grad`,
    shape,
    flops: size, // one multiply per element; the mask hash is not counted
    async setup(gpu, tf) {
      const r = new Resources(gpu, tf, `bench ${layer} ${pass}`);
      try {
        const k = r.kernel(await DropoutKernel.create(gpu, { size, rate, seed: 1234, label: layer }));
        k.setStep(1);
        const x = randomData(size, 11);
        const op = pass === 'forward'
          ? k.forward({ x: r.upload('x', x), y: r.output('y', size) })
          : k.backward({ dy: r.upload('dy', x), dx: r.output('dx', size) });
        if (!tf) return { ours: { op }, dispose: () => r.dispose() };
        const tx = r.tensor(x, [size]);
        if (pass === 'forward') {
          // tf.dropout draws its mask with a CPU RNG and uploads it: that is TF.js's cost.
          return { ours: { op }, tfjs: { run: () => tf.dropout(tx, rate) }, dispose: () => r.dispose() };
        }
        // TF.js's dropout gradient multiplies by the kept, scaled mask of the forward pass.
        const mask = r.track(tf.tidy(() => tf.div(tf.cast(tf.greaterEqual(tf.randomUniform([size], 0, 1, 'float32', 7), rate), 'float32'), 1 - rate)));
        return { ours: { op }, tfjs: { run: () => tf.mul(tx, mask) }, dispose: () => r.dispose() };
      } catch (e) {
        r.dispose();
        throw e;
      }
    },
  });
  return [make('forward'), make('grad')];
}

// ------------------------------------------------------------------ sigmoid + binary cross-entropy

/** Fused sigmoid + binary cross-entropy: mean loss, accuracy and dlogits for `batch` logits. */
export function sigmoidBceRow(batch: number): BenchRow {
  return {
    name: 'sigmoid_bce',
    shape: `B=${batch} (loss, acc, dlogits)`,
    flops: 10 * batch, // a handful of operations per example (exp, log1p, compare, ...)
    async setup(gpu, tf) {
      const r = new Resources(gpu, tf, 'bench sigmoid_bce');
      try {
        const k = r.kernel(await SigmoidBceKernel.create(gpu, { batch, label: 'sigmoid_bce' }));
        const z = randomData(batch, 21, -3, 3);
        const y = randomData(batch, 22, 0, 1).map((v) => (v < 0.5 ? 0 : 1));
        const op = k.lossAndGradient({ logits: r.upload('logits', z), labels: r.upload('labels', y), dlogits: r.output('dlogits', batch), stats: r.output('stats', 2) });
        if (!tf) return { ours: { op }, dispose: () => r.dispose() };
        const tz = r.tensor(z, [batch]), ty = r.tensor(y, [batch]);
        return {
          ours: { op },
          tfjs: {
            // What TF.js runs for this head: the loss from logits, Keras's 'acc', and the
            // gradient of the mean loss with respect to the logits.
            run: () => {
              const p = tf.sigmoid(tz);
              return [
                tf.losses.sigmoidCrossEntropy(ty, tz),
                tf.mean(tf.cast(tf.equal(ty, tf.round(p)), 'float32')),
                tf.div(tf.sub(p, ty), batch),
              ];
            },
          },
          dispose: () => r.dispose(),
        };
      } catch (e) {
        r.dispose();
        throw e;
      }
    },
  };
}

// ------------------------------------------------------------------ SGD

/** Keras's plain SGD update (lr 0.01) of one parameter tensor of `size` floats, in place. */
export function sgdRow(size: number, what = 'dense kernel'): BenchRow {
  const lr = 0.01;
  return {
    name: `sgd ${what}`,
    shape: `n=${size} lr=${lr}`,
    flops: 2 * size,
    async setup(gpu, tf) {
      const r = new Resources(gpu, tf, `bench sgd ${what}`);
      try {
        const k = await SgdKernel.create(gpu, { learningRate: lr }, r.kernel(await GuardKernel.create(gpu)).halt);
        const p = randomData(size, 31);
        const g = randomData(size, 32, -1e-3, 1e-3);
        const op = k.update(r.upload('param', p), r.upload('grad', g), size, `bench ${what}`);
        if (!tf) return { ours: { op }, dispose: () => r.dispose() };
        const init = tf.tensor(p, [size]);
        const param = r.track(tf.variable(init, true));
        init.dispose();
        const grad = r.tensor(g, [size]);
        // What tf.train.sgd's applyGradients does per variable.
        return { ours: { op }, tfjs: { run: () => { param.assign(tf.sub(param, tf.mul(grad, tf.scalar(lr)))); } }, dispose: () => r.dispose() };
      } catch (e) {
        r.dispose();
        throw e;
      }
    },
  };
}

// ------------------------------------------------------------------ conv2d

export interface ConvLayer {
  layer: string;
  height: number;
  width: number;
  inChannels: number;
  outChannels: number;
}

/** VGG16's 13 convolutions at a 60x90 input (each pool halves with floor). */
export const VGG16_CONVS_60x90: ConvLayer[] = (() => {
  const blocks: [number, number, number, number][] = [
    // height, width, channels out, convs
    [60, 90, 64, 2], [30, 45, 128, 2], [15, 22, 256, 3], [7, 11, 512, 3], [3, 5, 512, 3],
  ];
  const out: ConvLayer[] = [];
  let cin = 3;
  blocks.forEach(([h, w, cout, n], b) => {
    for (let i = 0; i < n; i++) {
      out.push({ layer: `block${b + 1}_conv${i + 1}`, height: h, width: w, inChannels: cin, outChannels: cout });
      cin = cout;
    }
  });
  return out;
})();

export type ConvPass = 'forward' | 'grad_input' | 'grad_filter';

/** One pass of a 3x3 'same' convolution with bias and ReLU (the layer's activation). */
export function convRow(c: ConvLayer, batch: number, pass: ConvPass): BenchRow {
  const { layer, height: H, width: W, inChannels: Ci, outChannels: Co } = c;
  const N = batch;
  const macs = N * H * W * Co * 9 * Ci;
  return {
    name: pass === 'forward' ? `${layer} conv2d` : `${layer} ${pass}`,
    shape: `N=${N} H=${H} W=${W} Cin=${Ci} Cout=${Co}`,
    flops: 2 * macs,
    async setup(gpu, tf) {
      const r = new Resources(gpu, tf, `bench ${layer} ${pass}`);
      try {
        const k = r.kernel(await Conv2dKernel.create(gpu, {
          batch: N, height: H, width: W, inChannels: Ci, outChannels: Co,
          kernelSize: [3, 3], padding: 'same', activation: 'relu', label: layer,
        }));
        const nx = N * H * W * Ci, ny = N * H * W * Co, nw = 9 * Ci * Co;
        // Inputs like a VGG layer's: non-negative activations, weights scaled so outputs stay O(1).
        const x = randomData(nx, 41, 0, 1);
        const w = randomData(nw, 42, -1 / Math.sqrt(9 * Ci), 1 / Math.sqrt(9 * Ci));
        const b = randomData(Co, 43, -0.1, 0.1);
        const flops = k.flops();
        const xShape = [N, H, W, Ci], yShape = [N, H, W, Co], wShape = [3, 3, Ci, Co];
        const conv = { strides: 1, pad: 'same', dataFormat: 'NHWC' };
        if (pass === 'forward') {
          const ours = { op: k.forward({ x: r.upload('x', x), w: r.upload('w', w), b: r.upload('b', b), y: r.output('y', ny) }), flops: flops.forward };
          if (!tf) return { ours, dispose: () => r.dispose() };
          const tx = r.tensor(x, xShape), tw = r.tensor(w, wShape), tb = r.tensor(b, [Co]);
          return {
            ours,
            tfjs: { run: () => tf.fused.conv2d({ x: tx as Tensor4D, filter: tw as Tensor4D, bias: tb, strides: 1, pad: 'same', activation: 'relu' }) },
            dispose: () => r.dispose(),
          };
        }
        const y = reluData(ny, 44);
        const dy = randomData(ny, 45);
        if (pass === 'grad_input') {
          const ours = { op: k.backwardInput({ dy: r.upload('dy', dy), y: r.upload('y', y), w: r.upload('w', w), dx: r.output('dx', nx) }), flops: flops.backwardInput };
          if (!tf) return { ours, dispose: () => r.dispose() };
          const tdy = r.tensor(dy, yShape), ty = r.tensor(y, yShape), tw = r.tensor(w, wShape);
          // TF.js's fused-conv gradient: dz = dy * step(y), then the input-gradient kernel.
          return {
            ours,
            tfjs: { run: () => tf.engine().runKernel('Conv2DBackpropInput', { dy: tf.mul(tdy, tf.step(ty)), filter: tw }, { ...conv, inputShape: xShape } as unknown as NamedAttrMap) as Tensor },
            dispose: () => r.dispose(),
          };
        }
        const ours = {
          op: k.backwardFilter({ x: r.upload('x', x), dy: r.upload('dy', dy), y: r.upload('y', y), dw: r.output('dw', nw), db: r.output('db', Co) }),
          flops: flops.backwardFilter,
        };
        if (!tf) return { ours, dispose: () => r.dispose() };
        const tx = r.tensor(x, xShape), tdy = r.tensor(dy, yShape), ty = r.tensor(y, yShape);
        return {
          ours,
          tfjs: {
            run: () => {
              const dz = tf.mul(tdy, tf.step(ty));
              const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x: tx, dy: dz }, { ...conv, filterShape: wShape } as unknown as NamedAttrMap) as Tensor;
              return [dw, tf.sum(dz, [0, 1, 2])];
            },
          },
          dispose: () => r.dispose(),
        };
      } catch (e) {
        r.dispose();
        throw e;
      }
    },
  };
}

// ------------------------------------------------------------------ maxpool

export interface PoolLayer {
  layer: string;
  height: number;
  width: number;
  channels: number;
}

/** VGG16's pools at a 60x90 input. */
export const VGG16_POOLS_60x90: PoolLayer[] = [
  { layer: 'block1_pool', height: 60, width: 90, channels: 64 },
  { layer: 'block2_pool', height: 30, width: 45, channels: 128 },
  { layer: 'block3_pool', height: 15, width: 22, channels: 256 },
  { layer: 'block4_pool', height: 7, width: 11, channels: 512 },
  { layer: 'block5_pool', height: 3, width: 5, channels: 512 },
];

/** 2x2 / stride 2 'valid' max pooling forward or backward (the gradient routed to the max). */
export function maxpoolRow(p: PoolLayer, batch: number, pass: 'forward' | 'grad'): BenchRow {
  const { layer, height: H, width: W, channels: C } = p;
  const N = batch;
  const Ho = Math.floor(H / 2), Wo = Math.floor(W / 2);
  return {
    name: pass === 'forward' ? `${layer} maxpool` : `${layer} maxpool grad`,
    shape: `N=${N} H=${H} W=${W} C=${C} -> ${Ho}x${Wo}`,
    flops: 3 * N * Ho * Wo * C, // comparisons per output; memory-bound
    async setup(gpu, tf) {
      const r = new Resources(gpu, tf, `bench ${layer} ${pass}`);
      try {
        const k = r.kernel(await MaxPool2dKernel.create(gpu, { batch: N, height: H, width: W, channels: C, label: layer }));
        if (k.outHeight !== Ho || k.outWidth !== Wo) throw new Error(`${layer}: expected a ${Ho}x${Wo} output, the kernel makes ${k.outHeight}x${k.outWidth}`);
        const nx = N * H * W * C, ny = N * Ho * Wo * C;
        const x = randomData(nx, 51, 0, 1);
        const dy = randomData(ny, 52);
        const op = pass === 'forward'
          ? k.forward({ x: r.upload('x', x), y: r.output('y', ny) })
          : k.backward({ x: r.upload('x', x), dy: r.upload('dy', dy), dx: r.output('dx', nx) });
        if (!tf) return { ours: { op }, dispose: () => r.dispose() };
        const tx = r.tensor(x, [N, H, W, C]) as Tensor4D;
        if (pass === 'forward') return { ours: { op }, tfjs: { run: () => tf.maxPool(tx, 2, 2, 'valid') }, dispose: () => r.dispose() };
        const ty = r.track(tf.maxPool(tx, 2, 2, 'valid'));
        const tdy = r.tensor(dy, [N, Ho, Wo, C]);
        const attrs = { filterSize: 2, strides: 2, pad: 'valid' } as unknown as NamedAttrMap;
        return { ours: { op }, tfjs: { run: () => tf.engine().runKernel('MaxPoolGrad', { dy: tdy, input: tx, output: ty }, attrs) as Tensor }, dispose: () => r.dispose() };
      } catch (e) {
        r.dispose();
        throw e;
      }
    },
  };
}

// ------------------------------------------------------------------ the reference model

/** Batch of the VGG16 base rows (60x90 input) and of the head rows (the 240x360 model's head). */
export const BASE_BATCH = 8;
export const HEAD_BATCH = 32;

/**
 * Every row at the reference model's shapes: VGG16's convolutions and pools at 60x90 (batch 8),
 * the 39424 -> 256 head of the 240x360 model (batch 32), and the SGD update of that head's
 * kernel.
 */
export function referenceRows(): BenchRow[] {
  const block5 = VGG16_CONVS_60x90.filter((c) => c.layer.startsWith('block5'));
  return [
    ...VGG16_CONVS_60x90.map((c) => convRow(c, BASE_BATCH, 'forward')),
    // What a fine-tuning step computes: filter gradients of the trainable block5 convolutions,
    // input gradients of all but the first trainable one.
    ...block5.flatMap((c, i) => [
      ...(i > 0 ? [convRow(c, BASE_BATCH, 'grad_input')] : []),
      convRow(c, BASE_BATCH, 'grad_filter'),
    ]),
    ...VGG16_POOLS_60x90.map((p) => maxpoolRow(p, BASE_BATCH, 'forward')),
    ...VGG16_POOLS_60x90.map((p) => maxpoolRow(p, BASE_BATCH, 'grad')),
    ...denseRows({ batch: HEAD_BATCH, inFeatures: 39424, outFeatures: 256, layer: 'dense' }),
    ...dropoutRows(HEAD_BATCH * 256, 0.5),
    sigmoidBceRow(HEAD_BATCH),
    sgdRow(39424 * 256),
  ];
}
