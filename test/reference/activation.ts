import type { ActivationSpec } from '../../src/kernels/activation.ts';

/**
 * Keras activations in float64, written as keras.activations.relu's static_call composes
 * TensorFlow ops (keras/src/activations/activations.py), with each op's TF gradient rule:
 *   Relu: [u > 0]; Relu6: [0 < u < 6]; LeakyRelu: u > 0 ? 1 : a;
 *   x * cast(x > t): [x > t]; Minimum(u, m): [u <= m]; Maximum(u, 0): [u >= 0]
 * (clip_by_value is Maximum(Minimum(x, max), min), ties pass the gradient to x).
 */
interface Relu { a: number; m: number | undefined; t: number }

const relu = (s: ActivationSpec & { kind: 'relu' }): Relu => ({ a: s.negativeSlope ?? 0, m: s.maxValue, t: s.threshold ?? 0 });

function reluForward(x: number, { a, m, t }: Relu): number {
  if (a !== 0 && m === undefined && t === 0) return x > 0 ? x : a * x; // tf.nn.leaky_relu
  const negative = a !== 0 ? Math.max(-x + t, 0) : 0;
  let clipMax = m !== undefined;
  let v: number;
  if (t !== 0) v = x * (x > t ? 1 : 0);
  else if (m === 6) {
    v = Math.min(Math.max(x, 0), 6); // tf.nn.relu6
    clipMax = false;
  } else v = Math.max(x, 0);
  if (clipMax) v = Math.max(Math.min(v, m as number), 0);
  return a !== 0 ? v - a * negative : v;
}

function reluGrad(x: number, { a, m, t }: Relu): number {
  if (a !== 0 && m === undefined && t === 0) return x > 0 ? 1 : a;
  let clipMax = m !== undefined;
  let v: number;
  let g: number;
  if (t !== 0) {
    v = x * (x > t ? 1 : 0);
    g = x > t ? 1 : 0;
  } else if (m === 6) {
    v = Math.min(Math.max(x, 0), 6);
    g = x > 0 && x < 6 ? 1 : 0;
    clipMax = false;
  } else {
    v = Math.max(x, 0);
    g = x > 0 ? 1 : 0;
  }
  if (clipMax) {
    const mm = m as number;
    g *= v <= mm ? 1 : 0;
    g *= Math.min(v, mm) >= 0 ? 1 : 0;
  }
  // d/dx of -a * relu(-x + t) = a * [-x + t > 0]
  return a !== 0 ? g + a * (-x + t > 0 ? 1 : 0) : g;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

export function activationScalarRef(x: number, s: ActivationSpec): number {
  switch (s.kind) {
    case 'linear': return x;
    case 'relu': return reluForward(x, relu(s));
    case 'sigmoid': return sigmoid(x);
    case 'tanh': return Math.tanh(x);
    case 'swish': return x * sigmoid(x);
  }
}

/** f'(x) (the subgradient TF gives at kinks). */
export function activationGradScalarRef(x: number, s: ActivationSpec): number {
  switch (s.kind) {
    case 'linear': return 1;
    case 'relu': return reluGrad(x, relu(s));
    case 'sigmoid': { const y = sigmoid(x); return y * (1 - y); }
    case 'tanh': { const y = Math.tanh(x); return 1 - y * y; }
    case 'swish': { const y = sigmoid(x); return y + x * y * (1 - y); }
  }
}

export function activationForwardRef(x: ArrayLike<number>, s: ActivationSpec): Float64Array {
  return Float64Array.from(x, (v) => activationScalarRef(v, s));
}

/** dx = dy * f'(x). */
export function activationBackwardRef(x: ArrayLike<number>, dy: ArrayLike<number>, s: ActivationSpec): Float64Array {
  return Float64Array.from(x, (v, i) => dy[i] * activationGradScalarRef(v, s));
}
