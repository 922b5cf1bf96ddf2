// Keras 3's optimizers in float64, written from keras/src/optimizers/{base_optimizer,sgd,adam,
// rmsprop}.py: apply() clips the gradients (clipnorm per tensor, else global_clipnorm, else
// clipvalue; each only when > 0), decays the weights (w -= w * wd * lr), runs update_step for
// every weight with the learning rate of the current `iterations`, then increments iterations.

export interface RefOptions {
  kind: 'sgd' | 'adam' | 'rmsprop';
  /** Learning rate for the update made at `iterations` (schedules, legacy decay: the caller's). */
  lr: (iterations: number) => number;
  momentum?: number;
  nesterov?: boolean;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  amsgrad?: boolean;
  rho?: number;
  centered?: boolean;
  weightDecay?: number | null;
  clipnorm?: number | null;
  clipvalue?: number | null;
  globalClipnorm?: number | null;
}

/** Slot names in Keras's order, per weight. */
export function refSlots(o: RefOptions): string[] {
  if (o.kind === 'sgd') return (o.momentum ?? 0) !== 0 ? ['velocity'] : [];
  if (o.kind === 'adam') return o.amsgrad ? ['momentum', 'velocity', 'velocity_hat'] : ['momentum', 'velocity'];
  return ['velocity', ...((o.momentum ?? 0) > 0 ? ['momentum'] : []), ...(o.centered ? ['average_gradient'] : [])];
}

function l2(g: Float64Array): number {
  let s = 0;
  for (const x of g) s += x * x;
  return Math.sqrt(s);
}

/** base_optimizer._clip_gradients. */
export function clipRef(grads: Float64Array[], o: RefOptions): Float64Array[] {
  if (o.clipnorm && o.clipnorm > 0) {
    const c = o.clipnorm;
    // _clip_by_norm: values * c / max(l2norm, c)
    return grads.map((g) => {
      const n = l2(g);
      return g.map((x) => (x * c) / Math.max(n, c));
    });
  }
  if (o.globalClipnorm && o.globalClipnorm > 0) {
    const c = o.globalClipnorm;
    let s = 0;
    for (const g of grads) for (const x of g) s += x * x;
    const norm = Math.sqrt(s);
    const scale = c * Math.min(1 / norm, 1 / c) + (norm - norm);
    return grads.map((g) => g.map((x) => x * scale));
  }
  if (o.clipvalue && o.clipvalue > 0) {
    const v = o.clipvalue;
    return grads.map((g) => g.map((x) => Math.min(v, Math.max(-v, x))));
  }
  return grads;
}

/** A Keras optimizer's state over a list of weights, stepped with apply(). */
export class OptimizerRef {
  readonly params: Float64Array[];
  /** state[weight][slot], refSlots order. */
  readonly state: Float64Array[][];
  iterations = 0;

  constructor(readonly o: RefOptions, params: ArrayLike<number>[]) {
    this.params = params.map((p) => Float64Array.from(p));
    const slots = refSlots(o).length;
    this.state = this.params.map((p) => Array.from({ length: slots }, () => new Float64Array(p.length)));
  }

  apply(grads: ArrayLike<number>[]): void {
    const o = this.o;
    const lr = o.lr(this.iterations);
    const g = clipRef(grads.map((x) => Float64Array.from(x)), o);
    if (o.weightDecay !== undefined && o.weightDecay !== null) {
      for (const p of this.params) for (let i = 0; i < p.length; i++) p[i] = p[i] - p[i] * o.weightDecay * lr;
    }
    this.params.forEach((p, k) => this.updateStep(p, g[k], this.state[k], lr));
    this.iterations++;
  }

  private updateStep(p: Float64Array, g: Float64Array, s: Float64Array[], lr: number): void {
    const o = this.o;
    if (o.kind === 'sgd') {
      const mom = o.momentum ?? 0;
      for (let i = 0; i < p.length; i++) {
        if (mom === 0) {
          p[i] -= g[i] * lr;
          continue;
        }
        const m = s[0];
        m[i] = m[i] * mom - g[i] * lr;
        p[i] += o.nesterov ? m[i] * mom - g[i] * lr : m[i];
      }
    } else if (o.kind === 'adam') {
      const b1 = o.beta1 ?? 0.9;
      const b2 = o.beta2 ?? 0.999;
      const eps = o.epsilon ?? 1e-7;
      const t = this.iterations + 1;
      const alpha = (lr * Math.sqrt(1 - Math.pow(b2, t))) / (1 - Math.pow(b1, t));
      const [m, v, vh] = s;
      for (let i = 0; i < p.length; i++) {
        m[i] += (g[i] - m[i]) * (1 - b1);
        v[i] += (g[i] * g[i] - v[i]) * (1 - b2);
        let vv = v[i];
        if (o.amsgrad) {
          vh[i] = Math.max(vh[i], v[i]);
          vv = vh[i];
        }
        p[i] -= (m[i] * alpha) / (Math.sqrt(vv) + eps);
      }
    } else {
      const rho = o.rho ?? 0.9;
      const mom = o.momentum ?? 0;
      const eps = o.epsilon ?? 1e-7;
      const v = s[0];
      const m = mom > 0 ? s[1] : null;
      const a = o.centered ? s[mom > 0 ? 2 : 1] : null;
      for (let i = 0; i < p.length; i++) {
        v[i] = rho * v[i] + (1 - rho) * g[i] * g[i];
        let denominator: number;
        if (a) {
          a[i] = rho * a[i] + (1 - rho) * g[i];
          denominator = v[i] - a[i] * a[i] + eps;
        } else denominator = v[i] + eps;
        const increment = (lr * g[i]) / Math.sqrt(denominator);
        if (m) {
          m[i] = mom * m[i] + increment;
          p[i] -= m[i];
        } else p[i] -= increment;
      }
    }
  }
}
