/**
 * An independent whole-graph oracle, written in TensorFlow.js ops on the CPU backend with TF.js's
 * autodiff, for a small MobileNetV2-like graph: a frozen stem (conv, BN in inference mode, ReLU6)
 * fanning out into a trainable depthwise / BN (batch statistics) / 1x1 branch and a residual Add,
 * then a strided conv, global average pooling and a sigmoid head trained with binary
 * cross-entropy and SGD with momentum. It imports nothing from src/ on purpose: it is the
 * independent side of an engine-vs-oracle comparison, so it must not share the engine's code.
 *
 * Keras rules followed (see /work/shared/KERAS_SEMANTICS.md): NHWC, HWIO kernels, TF 'same'
 * padding (smaller half top/left), depthwise output channel c * multiplier + m, BatchNormalization
 * with eps 1e-3 / momentum 0.99 using batch statistics (biased variance) and a moving update only
 * when trainable, the moving statistics otherwise (also during training), BCE from the logit,
 * Keras 3 SGD (m = momentum * m - lr * g; w += m).
 */
import type * as TF from '@tensorflow/tfjs';
import { tfCpu } from '../helpers/tfjs.ts';
import { rng } from '../helpers/random.ts';

type Tf = typeof TF;
type T4 = TF.Tensor4D;

export const ORACLE_INPUT: [number, number, number] = [9, 9, 3];
export const ORACLE_BATCH = 4;
export const BN_EPSILON = 1e-3;
export const BN_MOMENTUM = 0.99;
export const LEARNING_RATE = 0.05;
export const SGD_MOMENTUM = 0.9;

/** Every layer with weights, in graph order, with its weight shapes in Keras get_weights order. */
export const ORACLE_WEIGHT_SHAPES: Record<string, number[][]> = {
  stem_conv: [[3, 3, 3, 8]],
  stem_bn: [[8], [8], [8], [8]],
  dw: [[3, 3, 8, 2], [16]],
  dw_bn: [[16], [16], [16], [16]],
  proj: [[1, 1, 16, 8], [8]],
  down: [[3, 3, 8, 12], [12]],
  head: [[12, 1], [1]],
};

/** Which weights SGD updates: [layer, index into get_weights]. BN moving statistics never are. */
export const ORACLE_TRAINABLE: [string, number][] = [
  ['dw', 0], ['dw', 1],
  ['dw_bn', 0], ['dw_bn', 1],
  ['proj', 0], ['proj', 1],
  ['down', 0], ['down', 1],
  ['head', 0], ['head', 1],
];

/** Layers whose output oracleActivations records, in graph order. */
export const ORACLE_LAYERS = ['stem_conv', 'stem_bn', 'stem_relu', 'dw', 'dw_bn', 'dw_relu', 'proj', 'add', 'down', 'gap', 'head'] as const;
export type OracleLayer = (typeof ORACLE_LAYERS)[number];

export type OracleWeights = Record<string, Float32Array[]>;
export type OracleBatch = { x: Float32Array; y: Float32Array };

/** Conv2D without bias, TF/Keras 'same' padding (what tf.conv2d does; the oracle test checks it). */
export function conv2dSame(tf: Tf, x: T4, kernel: T4, stride: number): T4 {
  return tf.conv2d(x, kernel, stride, 'same');
}

/** DepthwiseConv2D without bias, 'same' padding; kernel [kh, kw, cin, mult], output channel c * mult + m. */
export function depthwiseSame(tf: Tf, x: T4, kernel: T4, stride: number): T4 {
  return tf.depthwiseConv2d(x, kernel, stride, 'same');
}

interface Params {
  stemK: T4; stemGamma: TF.Tensor1D; stemBeta: TF.Tensor1D; stemMean: TF.Tensor1D; stemVar: TF.Tensor1D;
  dwK: T4; dwB: TF.Tensor1D; dwGamma: TF.Tensor1D; dwBeta: TF.Tensor1D;
  projK: T4; projB: TF.Tensor1D; downK: T4; downB: TF.Tensor1D; headK: TF.Tensor2D; headB: TF.Tensor1D;
}

/** y = (x - mean) * (gamma / sqrt(var + eps)) + beta, in elementary ops so autodiff sees every step. */
function batchNorm(tf: Tf, x: T4, mean: TF.Tensor, variance: TF.Tensor, gamma: TF.Tensor, beta: TF.Tensor): T4 {
  return tf.add(tf.mul(tf.sub(x, mean), tf.mul(gamma, tf.rsqrt(tf.add(variance, BN_EPSILON)))), beta) as T4;
}

interface ForwardOut { logits: TF.Tensor2D; dwMean: TF.Tensor1D; dwVar: TF.Tensor1D }

/**
 * The training-phase forward pass. `record` (if given) receives every layer's output; dw_bn's
 * batch statistics come back so the caller can make the moving update (Keras makes it in call()).
 */
function forward(tf: Tf, p: Params, x: T4, record?: (layer: OracleLayer, t: TF.Tensor) => void): ForwardOut {
  const rec = record ?? (() => {});
  const stemConv = conv2dSame(tf, x, p.stemK, 2);
  rec('stem_conv', stemConv);
  // Frozen BN: inference mode even in training (Keras 3), so the moving statistics normalize.
  const stemBn = batchNorm(tf, stemConv, p.stemMean, p.stemVar, p.stemGamma, p.stemBeta);
  rec('stem_bn', stemBn);
  const stemRelu = tf.relu6(stemBn);
  rec('stem_relu', stemRelu);
  const dw = tf.add(depthwiseSame(tf, stemRelu, p.dwK, 1), p.dwB) as T4;
  rec('dw', dw);
  // Trainable BN in training: batch mean and biased variance over N, H, W.
  const { mean, variance } = tf.moments(dw, [0, 1, 2]);
  const dwBn = batchNorm(tf, dw, mean, variance, p.dwGamma, p.dwBeta);
  rec('dw_bn', dwBn);
  const dwRelu = tf.relu(dwBn);
  rec('dw_relu', dwRelu);
  const proj = tf.add(conv2dSame(tf, dwRelu, p.projK, 1), p.projB) as T4;
  rec('proj', proj);
  const add = tf.add(stemRelu, proj) as T4;
  rec('add', add);
  const down = tf.relu(tf.add(conv2dSame(tf, add, p.downK, 2), p.downB)) as T4;
  rec('down', down);
  const gap = tf.mean(down, [1, 2]) as TF.Tensor2D;
  rec('gap', gap);
  const logits = tf.add(tf.matMul(gap, p.headK), p.headB) as TF.Tensor2D;
  rec('head', logits);
  return { logits, dwMean: mean as TF.Tensor1D, dwVar: variance as TF.Tensor1D };
}

/** Mean over the batch of max(z, 0) - z * y + log(1 + exp(-|z|)). */
function bceFromLogits(tf: Tf, z: TF.Tensor2D, y: TF.Tensor2D): TF.Scalar {
  return tf.mean(tf.add(tf.sub(tf.relu(z), tf.mul(z, y)), tf.log1p(tf.exp(tf.neg(tf.abs(z)))))) as TF.Scalar;
}

function checkInit(init: OracleWeights): void {
  for (const [layer, shapes] of Object.entries(ORACLE_WEIGHT_SHAPES)) {
    const ws = init[layer];
    if (!ws || ws.length !== shapes.length) {
      throw new Error(`graph oracle: layer '${layer}' needs ${shapes.length} weight arrays (${shapes.map((s) => `[${s}]`).join(', ')}), got ${ws ? ws.length : 'none'}`);
    }
    shapes.forEach((s, i) => {
      const n = s.reduce((a, b) => a * b, 1);
      if (ws[i].length !== n) throw new Error(`graph oracle: '${layer}' weight ${i} must have shape [${s}] (${n} values), got ${ws[i].length} values`);
    });
  }
}

function checkBatch(b: OracleBatch, i: number): number {
  const per = ORACLE_INPUT[0] * ORACLE_INPUT[1] * ORACLE_INPUT[2];
  const n = b.y.length;
  if (n < 1 || b.x.length !== n * per) {
    throw new Error(`graph oracle: batch ${i} has ${b.x.length} inputs for ${n} labels; x must be [${n}, ${ORACLE_INPUT}] (${n * per} values)`);
  }
  return n;
}

/** The oracle's variables: a float32 tensor per weight, copied so the caller's arrays are never touched. */
function toTensors(tf: Tf, w: OracleWeights): Record<string, TF.Tensor[]> {
  const out: Record<string, TF.Tensor[]> = {};
  for (const [layer, shapes] of Object.entries(ORACLE_WEIGHT_SHAPES)) out[layer] = shapes.map((s, i) => tf.tensor(Float32Array.from(w[layer][i]), s));
  return out;
}

function params(t: Record<string, TF.Tensor[]>): Params {
  const [stemGamma, stemBeta, stemMean, stemVar] = t.stem_bn as TF.Tensor1D[];
  return {
    stemK: t.stem_conv[0] as T4, stemGamma, stemBeta, stemMean, stemVar,
    dwK: t.dw[0] as T4, dwB: t.dw[1] as TF.Tensor1D, dwGamma: t.dw_bn[0] as TF.Tensor1D, dwBeta: t.dw_bn[1] as TF.Tensor1D,
    projK: t.proj[0] as T4, projB: t.proj[1] as TF.Tensor1D, downK: t.down[0] as T4, downB: t.down[1] as TF.Tensor1D,
    headK: t.head[0] as TF.Tensor2D, headB: t.head[1] as TF.Tensor1D,
  };
}

/** Loss and its gradient (TF.js autodiff) with respect to each ORACLE_TRAINABLE tensor, plus dw_bn's batch statistics. */
function lossAndGrads(tf: Tf, t: Record<string, TF.Tensor[]>, b: OracleBatch) {
  const n = b.y.length;
  const x = tf.tensor4d(b.x, [n, ...ORACLE_INPUT]);
  const y = tf.tensor2d(b.y, [n, 1]);
  const trainable = ORACLE_TRAINABLE.map(([l, i]) => t[l][i]);
  let stats: { mean: TF.Tensor1D; variance: TF.Tensor1D } | undefined;
  const { value, grads } = tf.valueAndGrads((...vars: TF.Tensor[]) => {
    const copy: Record<string, TF.Tensor[]> = {};
    for (const l of Object.keys(t)) copy[l] = [...t[l]];
    ORACLE_TRAINABLE.forEach(([l, i], k) => { copy[l][i] = vars[k]; });
    const out = forward(tf, params(copy), x);
    // valueAndGrads disposes the forward's intermediates; keep the statistics for the moving update.
    stats = { mean: tf.keep(out.dwMean), variance: tf.keep(out.dwVar) };
    return bceFromLogits(tf, out.logits, y);
  })(trainable);
  x.dispose();
  y.dispose();
  return { value, grads, stats: stats! };
}

/**
 * Runs one Keras train_on_batch per batch from `init` and returns each step's loss (computed
 * before that step's update) and every layer's weights after the last step (frozen ones too),
 * in Keras get_weights order.
 */
export async function runGraphOracle(init: OracleWeights, batches: OracleBatch[]): Promise<{ losses: number[]; weights: OracleWeights }> {
  const tf = await tfCpu();
  checkInit(init);
  batches.forEach(checkBatch);
  const t = toTensors(tf, init);
  const velocity = ORACLE_TRAINABLE.map(([l, i]) => tf.zerosLike(t[l][i]));
  const losses: number[] = [];
  for (const b of batches) {
    const { value, grads, stats } = lossAndGrads(tf, t, b);
    losses.push(value.dataSync()[0]);
    value.dispose();
    ORACLE_TRAINABLE.forEach(([l, i], k) => {
      // Keras 3 SGD: m = -g * lr + m * momentum; w += m.
      const m = tf.add(tf.mul(tf.neg(grads[k]), LEARNING_RATE), tf.mul(velocity[k], SGD_MOMENTUM));
      const w = tf.add(t[l][i], m);
      velocity[k].dispose();
      t[l][i].dispose();
      velocity[k] = m;
      t[l][i] = w;
    });
    grads.forEach((g) => g.dispose());
    // Keras 3 moving update: moving * momentum + batch * (1 - momentum), biased variance.
    const [mm, mv] = [t.dw_bn[2], t.dw_bn[3]];
    t.dw_bn[2] = tf.add(tf.mul(mm, BN_MOMENTUM), tf.mul(stats.mean, 1 - BN_MOMENTUM));
    t.dw_bn[3] = tf.add(tf.mul(mv, BN_MOMENTUM), tf.mul(stats.variance, 1 - BN_MOMENTUM));
    [mm, mv, stats.mean, stats.variance].forEach((s) => s.dispose());
  }
  const weights: OracleWeights = {};
  for (const l of Object.keys(t)) weights[l] = t[l].map((w) => Float32Array.from(w.dataSync()));
  Object.values(t).flat().forEach((w) => w.dispose());
  velocity.forEach((v) => v.dispose());
  return { losses, weights };
}

/** Every layer's training-phase output (NHWC, batch first) for one batch, plus dw_bn's batch statistics. */
export async function oracleActivations(weights: OracleWeights, x: Float32Array): Promise<{ outputs: Record<OracleLayer, Float32Array>; dwMean: Float32Array; dwVariance: Float32Array }> {
  const tf = await tfCpu();
  checkInit(weights);
  const per = ORACLE_INPUT[0] * ORACLE_INPUT[1] * ORACLE_INPUT[2];
  if (x.length % per !== 0 || x.length === 0) throw new Error(`graph oracle: x has ${x.length} values, not a multiple of ${ORACLE_INPUT} (${per})`);
  const outputs = {} as Record<OracleLayer, Float32Array>;
  let dwMean = new Float32Array();
  let dwVariance = new Float32Array();
  tf.tidy(() => {
    const t = toTensors(tf, weights);
    const out = forward(tf, params(t), tf.tensor4d(x, [x.length / per, ...ORACLE_INPUT]), (layer, v) => { outputs[layer] = Float32Array.from(v.dataSync()); });
    dwMean = Float32Array.from(out.dwMean.dataSync());
    dwVariance = Float32Array.from(out.dwVar.dataSync());
  });
  return { outputs, dwMean, dwVariance };
}

/** One batch's loss and TF.js's autodiff gradients, one array per ORACLE_TRAINABLE entry (no update). */
export async function oracleLossAndGrads(weights: OracleWeights, batch: OracleBatch): Promise<{ loss: number; grads: Float32Array[] }> {
  const tf = await tfCpu();
  checkInit(weights);
  checkBatch(batch, 0);
  const t = toTensors(tf, weights);
  const { value, grads, stats } = lossAndGrads(tf, t, batch);
  const loss = value.dataSync()[0];
  const out = grads.map((g) => Float32Array.from(g.dataSync()));
  [value, ...grads, stats.mean, stats.variance, ...Object.values(t).flat()].forEach((v) => v.dispose());
  return { loss, grads: out };
}

/**
 * Deterministic initial weights: He-uniform kernels (limit sqrt(6 / fan_in), so ReLU activations
 * keep their scale), small nonzero biases and BN betas (so their gradients and the bias paths are
 * exercised), gamma near 1, moving_mean small and nonzero, moving_variance in 0.5..1.5.
 */
export function oracleInit(seed: number): OracleWeights {
  const r = rng(seed);
  const u = (n: number, lo: number, hi: number) => Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
  const he = (shape: number[], fanIn: number) => {
    const lim = Math.sqrt(6 / fanIn);
    return u(shape.reduce((a, b) => a * b, 1), -lim, lim);
  };
  const bn = (c: number) => [u(c, 0.8, 1.2), u(c, -0.1, 0.1), u(c, -0.2, 0.2), u(c, 0.5, 1.5)];
  return {
    stem_conv: [he([3, 3, 3, 8], 27)],
    stem_bn: bn(8),
    dw: [he([3, 3, 8, 2], 9), u(16, -0.1, 0.1)],
    dw_bn: bn(16),
    proj: [he([1, 1, 16, 8], 16), u(8, -0.1, 0.1)],
    down: [he([3, 3, 8, 12], 72), u(12, -0.1, 0.1)],
    // Glorot for the sigmoid head, as Keras's Dense default.
    head: [u(12, -Math.sqrt(6 / 13), Math.sqrt(6 / 13)), u(1, -0.1, 0.1)],
  };
}

/** `steps` deterministic batches of ORACLE_BATCH images (values in 0..1) with both labels in each. */
export function oracleBatches(seed: number, steps: number): OracleBatch[] {
  const r = rng(seed);
  const per = ORACLE_INPUT[0] * ORACLE_INPUT[1] * ORACLE_INPUT[2];
  return Array.from({ length: steps }, () => {
    const x = Float32Array.from({ length: ORACLE_BATCH * per }, () => r());
    const y = Float32Array.from({ length: ORACLE_BATCH }, () => (r() < 0.5 ? 0 : 1));
    // Both classes in every batch, so no batch has a trivially constant target.
    y[0] = 0;
    y[ORACLE_BATCH - 1] = 1;
    return { x, y };
  });
}
