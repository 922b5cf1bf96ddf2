/**
 * Generated two-class images for the demo and smoke tests: class 1 leans red, class 0 leans
 * blue, with per-pixel noise so the task needs the whole image. Deterministic for a seed.
 */
export function syntheticImages(n: number, shape: [number, number, number], seed: number): { x: Float32Array; y: Float32Array } {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const per = shape[0] * shape[1] * shape[2];
  const x = new Float32Array(n * per);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const label = rand() < 0.5 ? 1 : 0;
    y[i] = label;
    for (let p = 0; p < per; p += 3) {
      const base = rand() * 0.5;
      x[i * per + p] = base + (label ? 0.35 : 0) * rand();
      x[i * per + p + 1] = rand() * 0.5;
      x[i * per + p + 2] = base + (label ? 0 : 0.35) * rand();
    }
  }
  return { x, y };
}

/** Splits arrays into batches of `size` (the last one short), as flow_from_directory does. */
export function toBatches(x: Float32Array, y: Float32Array, size: number): { x: Float32Array; y: Float32Array }[] {
  const per = x.length / y.length;
  const out = [];
  for (let s = 0; s < y.length; s += size) {
    const e = Math.min(y.length, s + size);
    out.push({ x: x.subarray(s * per, e * per), y: y.subarray(s, e) });
  }
  return out;
}
