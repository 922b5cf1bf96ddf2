/** Weights of a layer followed by an inference-mode (frozen) BatchNormalization. */
export interface FoldBatchNormInput {
  /** The layer's kernel, flat in Keras layout: conv HWIO, depthwise [kh, kw, cin, mult], dense [in, out]. */
  kernel: ArrayLike<number>;
  kernelShape: readonly number[];
  /** The layer's bias [channels], or null (use_bias=False, usual before a BatchNormalization). */
  bias: ArrayLike<number> | null;
  /** null: scale=false (gamma = 1) */
  gamma: ArrayLike<number> | null;
  /** null: center=false (beta = 0) */
  beta: ArrayLike<number> | null;
  movingMean: ArrayLike<number>;
  movingVar: ArrayLike<number>;
  /** default 1e-3 (Keras) */
  epsilon?: number;
  /** names the layer in errors */
  label?: string;
}

/**
 * Folds a frozen BatchNormalization into the preceding layer's weights, so that
 * layer'(x) = BN(layer(x)) exactly in real arithmetic: per output channel o,
 * s = gamma/sqrt(movingVar + epsilon), w' = w*s, b' = (b - movingMean)*s + beta.
 * Computed in float64, rounded once to float32.
 *
 * The output channel of a kernel element is its flat index modulo the channel count: the last
 * axis for conv / dense kernels, the last two axes (cin*mult + m, as Keras orders a depthwise
 * output) for depthwise kernels. The channel count comes from movingMean.
 */
export function foldBatchNorm(f: FoldBatchNormInput): { kernel: Float32Array; bias: Float32Array } {
  const shape = f.kernelShape;
  const C = f.movingMean.length;
  const epsilon = f.epsilon ?? 1e-3;
  const what = `${f.label ?? 'foldBatchNorm'}: folding BatchNormalization [${C}] into kernel [${shape.join(',')}]`;
  if (shape.length < 2 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`${what}: kernelShape must have 2 or more positive integer dimensions`);
  }
  const size = shape.reduce((a, b) => a * b, 1);
  if (f.kernel.length !== size) throw new Error(`${what}: the kernel holds ${f.kernel.length} values, its shape needs ${size}`);
  const last = shape[shape.length - 1];
  const lastTwo = last * shape[shape.length - 2];
  if (C !== last && !(shape.length === 4 && C === lastTwo)) {
    throw new Error(`${what}: the BatchNormalization has ${C} channels but the kernel has ${last} output channels` +
      `${shape.length === 4 ? ` (or ${lastTwo} as a depthwise kernel)` : ''}; it must normalize this layer's output`);
  }
  if (!(Number.isFinite(epsilon) && epsilon > 0)) throw new Error(`${what}: epsilon must be a finite number > 0, got ${epsilon}`);
  const vectors: [string, ArrayLike<number> | null][] = [['bias', f.bias], ['gamma', f.gamma], ['beta', f.beta], ['movingVar', f.movingVar]];
  for (const [name, v] of vectors) {
    if (v && v.length !== C) throw new Error(`${what}: ${name} has ${v.length} values, needs ${C}`);
  }
  const s = Float64Array.from({ length: C }, (_, c) => (f.gamma ? f.gamma[c] : 1) / Math.sqrt(f.movingVar[c] + epsilon));
  const kernel = new Float32Array(size);
  for (let i = 0; i < size; i++) kernel[i] = f.kernel[i] * s[i % C];
  const bias = Float32Array.from({ length: C }, (_, c) => ((f.bias ? f.bias[c] : 0) - f.movingMean[c]) * s[c] + (f.beta ? f.beta[c] : 0));
  return { kernel, bias };
}
