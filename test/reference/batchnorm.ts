/**
 * Keras 3 BatchNormalization (axis -1) on [rows, C] in float64 with naive loops, two-pass
 * statistics. gamma / beta null: scale / center false (1 / 0).
 */
export interface BnDims { rows: number; channels: number; epsilon: number }

export function bnMomentsRef(x: ArrayLike<number>, d: BnDims): { mean: Float64Array; variance: Float64Array } {
  const { rows: R, channels: C } = d;
  const mean = new Float64Array(C);
  const variance = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let r = 0; r < R; r++) s += x[r * C + c];
    mean[c] = s / R;
    let q = 0;
    for (let r = 0; r < R; r++) q += (x[r * C + c] - mean[c]) ** 2;
    variance[c] = q / R; // biased, as Keras
  }
  return { mean, variance };
}

/** y = gamma*(x - mean)/sqrt(var + eps) + beta per channel, for given statistics. */
export function bnNormalizeRef(x: ArrayLike<number>, d: BnDims, mean: ArrayLike<number>, variance: ArrayLike<number>, gamma: ArrayLike<number> | null, beta: ArrayLike<number> | null): Float64Array {
  const { rows: R, channels: C } = d;
  const y = new Float64Array(R * C);
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) {
      const i = r * C + c;
      y[i] = (gamma ? gamma[c] : 1) * (x[i] - mean[c]) / Math.sqrt(variance[c] + d.epsilon) + (beta ? beta[c] : 0);
    }
  }
  return y;
}

/** Training forward: y from the batch statistics, plus mean, biased variance and invStd. */
export function bnTrainForwardRef(x: ArrayLike<number>, d: BnDims, gamma: ArrayLike<number> | null, beta: ArrayLike<number> | null): { y: Float64Array; mean: Float64Array; variance: Float64Array; invStd: Float64Array } {
  const { mean, variance } = bnMomentsRef(x, d);
  const invStd = Float64Array.from(variance, (v) => 1 / Math.sqrt(v + d.epsilon));
  return { y: bnNormalizeRef(x, d, mean, variance, gamma, beta), mean, variance, invStd };
}

/** moving = moving*momentum + batch*(1 - momentum). */
export function bnMovingRef(moving: ArrayLike<number>, batch: ArrayLike<number>, momentum: number): Float64Array {
  return Float64Array.from(moving, (m, c) => m * momentum + batch[c] * (1 - momentum));
}

/**
 * Training backward through the batch statistics, written out from the chain rule (not from
 * the closed form the kernel uses): with xhat = (x - mean)*invStd,
 *   dxhat = dy*gamma, dvar = sum(dxhat*(x - mean))*(-1/2)*invStd^3,
 *   dmean = -sum(dxhat)*invStd + dvar*(-2/N)*sum(x - mean),
 *   dx = dxhat*invStd + dvar*2*(x - mean)/N + dmean/N.
 */
export function bnTrainBackwardRef(x: ArrayLike<number>, dy: ArrayLike<number>, d: BnDims, gamma: ArrayLike<number> | null): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const { rows: R, channels: C } = d;
  const { mean, variance } = bnMomentsRef(x, d);
  const dx = new Float64Array(R * C);
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    const g = gamma ? gamma[c] : 1;
    const inv = 1 / Math.sqrt(variance[c] + d.epsilon);
    let sdxhatXm = 0;
    let sdxhat = 0;
    let sXm = 0;
    for (let r = 0; r < R; r++) {
      const i = r * C + c;
      const xm = x[i] - mean[c];
      dbeta[c] += dy[i];
      dgamma[c] += dy[i] * xm * inv;
      sdxhatXm += dy[i] * g * xm;
      sdxhat += dy[i] * g;
      sXm += xm;
    }
    const dvar = sdxhatXm * -0.5 * inv ** 3;
    const dmean = -sdxhat * inv + dvar * (-2 / R) * sXm;
    for (let r = 0; r < R; r++) {
      const i = r * C + c;
      dx[i] = dy[i] * g * inv + dvar * 2 * (x[i] - mean[c]) / R + dmean / R;
    }
  }
  return { dx, dgamma, dbeta };
}

/** Inference forward with the moving statistics. */
export function bnInferForwardRef(x: ArrayLike<number>, d: BnDims, gamma: ArrayLike<number> | null, beta: ArrayLike<number> | null, movingMean: ArrayLike<number>, movingVar: ArrayLike<number>): Float64Array {
  return bnNormalizeRef(x, d, movingMean, movingVar, gamma, beta);
}

/** Inference backward: dx = dy*gamma/sqrt(movingVar + eps). */
export function bnInferBackwardRef(dy: ArrayLike<number>, d: BnDims, gamma: ArrayLike<number> | null, movingVar: ArrayLike<number>): Float64Array {
  const C = d.channels;
  return Float64Array.from(dy, (g, i) => g * (gamma ? gamma[i % C] : 1) / Math.sqrt(movingVar[i % C] + d.epsilon));
}

/**
 * Inference-mode backward with gamma / beta training (Keras's base(x, training=False)): the
 * moving statistics are constants, so y = gamma*xhat + beta with xhat = (x - movingMean)/sd,
 * sd = sqrt(movingVar + eps), gives dx = dy*gamma/sd, dgamma = sum(dy*xhat), dbeta = sum(dy).
 */
export function bnInferAffineBackwardRef(x: ArrayLike<number>, dy: ArrayLike<number>, d: BnDims, gamma: ArrayLike<number> | null, movingMean: ArrayLike<number>, movingVar: ArrayLike<number>): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const { rows: R, channels: C } = d;
  const dx = new Float64Array(R * C);
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) {
      const i = r * C + c;
      const sd = Math.sqrt(movingVar[c] + d.epsilon);
      dx[i] = dy[i] * (gamma ? gamma[c] : 1) / sd;
      dgamma[c] += dy[i] * (x[i] - movingMean[c]) / sd;
      dbeta[c] += dy[i];
    }
  }
  return { dx, dgamma, dbeta };
}
