import { dropoutKeep } from '../../src/kernels/dropout.ts';

/**
 * The dropout hash written out again with BigInt arithmetic modulo 2^32 (no Math.imul, no
 * 32-bit tricks), to check the engine's u32 implementation against the definition:
 *   mix32(x) = x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16
 *   key = mix32(mix32(seed ^ 0x9e3779b9) + step);  bits = mix32(mix32(index ^ key) + key)
 */
export function dropoutBitsRef(seed: number, step: number, index: number): number {
  const M = (1n << 32n) - 1n;
  const mix = (v: bigint): bigint => {
    let x = v & M;
    x ^= x >> 16n;
    x = (x * 0x7feb352dn) & M;
    x ^= x >> 15n;
    x = (x * 0x846ca68bn) & M;
    x ^= x >> 16n;
    return x;
  };
  const key = mix(mix(BigInt(seed) ^ 0x9e3779b9n) + BigInt(step));
  return Number(mix(mix(BigInt(index) ^ key) + key));
}

/** Inverted dropout in float64 with the engine's mask: y = keep ? x / (1 - rate) : 0. */
export function dropoutRef(x: ArrayLike<number>, seed: number, step: number, rate: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = dropoutKeep(seed, step, i, rate) ? x[i] / (1 - rate) : 0;
  return y;
}
