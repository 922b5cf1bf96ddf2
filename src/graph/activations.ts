import type { ActivationSpec } from '../kernels/activation.ts';

/** An activation as the plan carries it: the elementwise kinds, plus softmax (heads only). */
export type Act = ActivationSpec | { kind: 'softmax' };

export type ActivationName = 'linear' | 'relu' | 'relu6' | 'sigmoid' | 'tanh' | 'swish' | 'silu' | 'softmax';
const NAMES: ActivationName[] = ['linear', 'relu', 'relu6', 'sigmoid', 'tanh', 'swish', 'silu', 'softmax'];

export const LINEAR: Act = { kind: 'linear' };

/** Keras's activation names to the plan's form ('relu6' is ReLU(maxValue 6), 'silu' is 'swish'). */
export function parseActivation(name: string | undefined, layer: string): Act {
  const n = name ?? 'linear';
  if (!NAMES.includes(n as ActivationName)) throw new Error(`${layer}: activation '${n}' is not supported (use one of ${NAMES.map((x) => `'${x}'`).join(', ')})`);
  if (n === 'relu6') return { kind: 'relu', maxValue: 6 };
  if (n === 'silu') return { kind: 'swish' };
  return { kind: n } as Act;
}

/** Plain ReLU or ReLU6 (what the conv epilogues apply); other ReLU parameters are not. */
export function reluCap(a: Act): 'relu' | 'relu6' | null {
  if (a.kind !== 'relu' || (a.negativeSlope ?? 0) !== 0 || (a.threshold ?? 0) !== 0) return null;
  if (a.maxValue === undefined) return 'relu';
  return a.maxValue === 6 ? 'relu6' : null;
}

/** Keras's name for an activation, for summaries and messages. */
export function activationName(a: Act): string {
  if (a.kind !== 'relu') return a.kind;
  const cap = reluCap(a);
  if (cap) return cap;
  return `relu(${[a.maxValue !== undefined ? `maxValue ${a.maxValue}` : '', a.negativeSlope ? `negativeSlope ${a.negativeSlope}` : '', a.threshold ? `threshold ${a.threshold}` : ''].filter(Boolean).join(', ')})`;
}

export const isLinear = (a: Act) => a.kind === 'linear';
