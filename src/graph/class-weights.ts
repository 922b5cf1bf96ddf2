/**
 * Keras's `class_weight` on the host: a {class index: weight} map becomes one weight per example
 * (keras/src/trainers/data_adapters/data_adapter_utils.py class_weight_to_sample_weights), which
 * the loss kernels take as their `weights` buffer. The class of an example is: binary and sparse
 * labels rounded half to even (numpy's np.round) and used as the index; one-hot rows their first
 * argmax. A class missing from the map, or a label outside 0..numClasses-1, weighs 1 (Keras's
 * `class_weight.get(c, 1.0)`). Browser-safe: no Node APIs.
 */

export type ClassWeightLoss = 'binary_crossentropy' | 'categorical_crossentropy' | 'sparse_categorical_crossentropy';

// Class indices travel as f32 on the GPU, exact below 2^24 (the kernels' limit too).
const MAX_CLASSES = 1 << 24;

/**
 * The weight of every class 0..numClasses-1 (1 where `classWeight` names none). Stricter than
 * Keras, which silently ignores keys that never match a label: keys must be integer class
 * indices in range ('1' and 1 both name class 1), values finite numbers >= 0.
 */
export function normalizeClassWeight(classWeight: Record<number | string, number>, numClasses: number): Float32Array {
  if (!Number.isInteger(numClasses) || numClasses < 1 || numClasses > MAX_CLASSES) {
    throw new Error(`classWeight: the number of classes must be an integer in [1, 2^24], got ${numClasses}`);
  }
  if (classWeight === null || typeof classWeight !== 'object' || Array.isArray(classWeight) || classWeight instanceof Map) {
    const what = classWeight instanceof Map ? 'a Map' : Array.isArray(classWeight) ? 'an array' : String(classWeight);
    throw new Error(`classWeight must be a plain object mapping class indices to weights, e.g. { 0: 1, 1: 5 }; got ${what}`);
  }
  const range = `0..${numClasses - 1}`;
  const out = new Float32Array(numClasses).fill(1);
  for (const [key, value] of Object.entries(classWeight)) {
    // Object keys are strings: accept only the canonical spelling of a non-negative integer.
    if (!/^(0|[1-9][0-9]*)$/.test(key)) {
      throw new Error(`classWeight: key '${key}' is not a class index; keys must be integers in ${range} (${numClasses} classes)`);
    }
    const c = Number(key);
    if (c >= numClasses) {
      throw new Error(`classWeight: class ${c} is out of range; the model has ${numClasses} classes, so keys must be in ${range}`);
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new Error(`classWeight: the weight of class ${c} is ${typeof value === 'number' ? value : JSON.stringify(value)}; weights must be finite numbers >= 0`);
    }
    if (value > 3.4028234663852886e38) {
      throw new Error(`classWeight: the weight of class ${c} is ${value}, beyond the float32 range; use a smaller weight`);
    }
    out[c] = value;
  }
  return out;
}

/**
 * One weight per example for the first `batch` examples of `y` (in the loss kernels' label
 * layout: `batch` floats for binary and sparse labels, `batch * perClass.length` floats for
 * one-hot rows). Extra floats beyond the first `batch` examples are ignored.
 */
export function sampleWeights(y: Float32Array, loss: ClassWeightLoss, perClass: Float32Array, batch: number): Float32Array {
  if (!Number.isInteger(batch) || batch < 0) throw new Error(`sampleWeights: batch must be an integer >= 0, got ${batch}`);
  const k = perClass.length;
  const weightOf = (c: number) => (c >= 0 && c < k ? perClass[c] : 1); // Keras: .get(c, 1.0)
  const out = new Float32Array(batch);
  if (loss === 'binary_crossentropy' || loss === 'sparse_categorical_crossentropy') {
    if (y.length < batch) throw new Error(`sampleWeights: ${loss} needs ${batch} labels for a batch of ${batch}, got ${y.length}`);
    for (let i = 0; i < batch; i++) out[i] = weightOf(roundHalfEven(y[i]));
  } else if (loss === 'categorical_crossentropy') {
    if (k < 2) throw new Error(`sampleWeights: categorical_crossentropy needs weights for at least 2 classes, got ${k}`);
    if (y.length < batch * k) throw new Error(`sampleWeights: categorical_crossentropy needs ${batch} rows of ${k} classes (${batch * k} floats), got ${y.length} floats`);
    for (let i = 0; i < batch; i++) out[i] = weightOf(argmaxFirst(y, i * k, k));
  } else {
    throw new Error(`sampleWeights: classWeight works with binary_crossentropy, categorical_crossentropy or sparse_categorical_crossentropy, got ${String(loss)}`);
  }
  return out;
}

/**
 * sklearn's class_weight='balanced': n_samples / (n_classes * count_c), so every class carries
 * the same total weight. sklearn raises for a class with no samples (its weight would be
 * infinite) and so does this: drop the empty class or give classWeight explicitly.
 */
export function balancedClassWeights(counts: number[]): Record<number, number> {
  if (!Array.isArray(counts) || counts.length === 0) throw new Error('balancedClassWeights: needs the number of examples of each class, got none');
  counts.forEach((n, c) => {
    if (!Number.isInteger(n) || n < 0) throw new Error(`balancedClassWeights: the count of class ${c} must be an integer >= 0, got ${n}`);
  });
  const empty = counts.findIndex((n) => n === 0);
  if (empty >= 0) {
    throw new Error(`balancedClassWeights: class ${empty} has no examples, so its 'balanced' weight n_samples / (n_classes * 0) is undefined; remove the empty class (folder) or pass classWeight explicitly`);
  }
  const total = counts.reduce((s, n) => s + n, 0);
  const out: Record<number, number> = {};
  counts.forEach((n, c) => { out[c] = total / (counts.length * n); });
  return out;
}

/** numpy's np.round: to the nearest integer, halves to even; NaN stays NaN (weighs 1). */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** numpy's np.argmax of one row: the first maximum, or the first NaN if there is one. */
function argmaxFirst(v: Float32Array, start: number, n: number): number {
  let best = 0;
  for (let k = 0; k < n; k++) {
    const x = v[start + k];
    if (Number.isNaN(x)) return k;
    if (x > v[start + best]) best = k;
  }
  return best;
}
