/** Keras Dense in float64 with naive loops: x [B,in], w [in,out], b [out], y [B,out]. */
export type Activation = 'linear' | 'relu' | 'sigmoid';

export interface DenseDims { batch: number; inFeatures: number; outFeatures: number; activation: Activation }

function act(z: number, a: Activation): number {
  if (a === 'relu') return z > 0 ? z : 0;
  if (a === 'sigmoid') return 1 / (1 + Math.exp(-z));
  return z;
}

/** y = act(x·w + b). */
export function denseForwardRef(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number>, d: DenseDims): Float64Array {
  const { batch: B, inFeatures: I, outFeatures: O } = d;
  const y = new Float64Array(B * O);
  for (let r = 0; r < B; r++) {
    for (let o = 0; o < O; o++) {
      let z = b[o];
      for (let i = 0; i < I; i++) z += x[r * I + i] * w[i * O + o];
      y[r * O + o] = act(z, d.activation);
    }
  }
  return y;
}

/**
 * Gradients of a loss L given dL/dy: dz = dy * act'(z) with act' evaluated from the
 * pre-activation z (not from y, so this is independent of the kernel's formulation);
 * dx = dz·wᵀ, dw = xᵀ·dz, db = column sums of dz.
 */
export function denseBackwardRef(
  x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number>, dy: ArrayLike<number>, d: DenseDims,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const { batch: B, inFeatures: I, outFeatures: O } = d;
  const dz = new Float64Array(B * O);
  for (let r = 0; r < B; r++) {
    for (let o = 0; o < O; o++) {
      let z = b[o];
      for (let i = 0; i < I; i++) z += x[r * I + i] * w[i * O + o];
      let g = 1;
      if (d.activation === 'relu') g = z > 0 ? 1 : 0;
      else if (d.activation === 'sigmoid') { const s = act(z, 'sigmoid'); g = s * (1 - s); }
      dz[r * O + o] = dy[r * O + o] * g;
    }
  }
  const dx = new Float64Array(B * I);
  for (let r = 0; r < B; r++) {
    for (let i = 0; i < I; i++) {
      let s = 0;
      for (let o = 0; o < O; o++) s += dz[r * O + o] * w[i * O + o];
      dx[r * I + i] = s;
    }
  }
  const dw = new Float64Array(I * O);
  for (let i = 0; i < I; i++) {
    for (let o = 0; o < O; o++) {
      let s = 0;
      for (let r = 0; r < B; r++) s += x[r * I + i] * dz[r * O + o];
      dw[i * O + o] = s;
    }
  }
  const db = new Float64Array(O);
  for (let o = 0; o < O; o++) {
    let s = 0;
    for (let r = 0; r < B; r++) s += dz[r * O + o];
    db[o] = s;
  }
  return { dx, dw, db };
}
