/**
 * Keras's default initialisers. Random draws come from a seeded generator so a run is
 * reproducible; Keras itself draws from the backend's global RNG.
 */
export type Random = () => number;

/** Seeded uniform [0, 1) generator (mulberry32). */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** glorot_uniform: U(-l, l) with l = sqrt(6 / (fan_in + fan_out)); fans include the receptive field. */
export function glorotUniform(shape: number[], random: Random): Float32Array {
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  const fanIn = shape[shape.length - 2] * receptive;
  const fanOut = shape[shape.length - 1] * receptive;
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * random() - 1) * limit;
  return out;
}
