import { describe, expect, it } from 'vitest';
import { balancedClassWeights, normalizeClassWeight, sampleWeights } from '../src/graph/class-weights.ts';

const f32 = (v: number[]) => Array.from(Float32Array.from(v));

describe('normalizeClassWeight', () => {
  it('gives every class its weight, 1 where the map names none (Keras: class_weight.get(c, 1.0))', () => {
    expect(Array.from(normalizeClassWeight({ 0: 1, 1: 5 }, 2))).toEqual([1, 5]);
    expect(Array.from(normalizeClassWeight({ 2: 0.5 }, 4))).toEqual([1, 1, 0.5, 1]);
    expect(Array.from(normalizeClassWeight({}, 3))).toEqual([1, 1, 1]);
    expect(Array.from(normalizeClassWeight({ '1': 0, '0': 0.25 }, 2))).toEqual([0.25, 0]); // string keys, weight 0
    expect(Array.from(normalizeClassWeight({ 0: 0.1 }, 1))).toEqual(f32([0.1]));
  });

  it('rejects keys that are not class indices in range, naming the key and the range', () => {
    for (const key of ['1.5', '-1', 'cat', '01', ' 1', '']) {
      expect(() => normalizeClassWeight({ [key]: 1 }, 3), key).toThrow(new RegExp(`key '${key.replace('.', '\\.')}' is not a class index; keys must be integers in 0\\.\\.2 \\(3 classes\\)`));
    }
    expect(() => normalizeClassWeight({ 0: 1, 3: 2 }, 3)).toThrow(/class 3 is out of range; the model has 3 classes, so keys must be in 0\.\.2/);
    expect(() => normalizeClassWeight({ 2: 2 }, 2)).toThrow(/class 2 is out of range.*0\.\.1/);
  });

  it('rejects weights that are not finite numbers >= 0, naming the class and the value', () => {
    for (const [value, shown] of [[-1, '-1'], [Number.NaN, 'NaN'], [Infinity, 'Infinity'], ['2', '"2"'], [null, 'null']] as const) {
      expect(() => normalizeClassWeight({ 0: 1, 1: value as unknown as number }, 2), shown).toThrow(`classWeight: the weight of class 1 is ${shown}; weights must be finite numbers >= 0`);
    }
    expect(() => normalizeClassWeight({ 1: 1e39 }, 2)).toThrow(/class 1 is 1e\+39, beyond the float32 range/);
  });

  it('rejects a class count or a map of the wrong kind', () => {
    for (const n of [0, -2, 2.5, Number.NaN]) expect(() => normalizeClassWeight({}, n), String(n)).toThrow(/number of classes must be an integer in \[1, 2\^24\], got/);
    expect(() => normalizeClassWeight(new Map([[0, 2]]) as unknown as Record<number, number>, 2)).toThrow(/plain object .*got a Map/);
    expect(() => normalizeClassWeight([1, 2] as unknown as Record<number, number>, 2)).toThrow(/plain object .*got an array/);
    expect(() => normalizeClassWeight(null as unknown as Record<number, number>, 2)).toThrow(/plain object .*got null/);
  });
});

describe('sampleWeights', () => {
  it('binary labels: the label rounded half to even (np.round) is the class; out of range or NaN weighs 1', () => {
    const y = Float32Array.from([0, 1, 1, 0, 0.4, 0.5, 0.6, 1.5, 2.5, Number.NaN, -0.5]);
    const w = sampleWeights(y, 'binary_crossentropy', Float32Array.from([0.25, 4]), y.length);
    // 0.5 -> 0 and -0.5 -> -0 (halves to even); 1.5 -> 2 and 2.5 -> 2 are no class of 2: weight 1
    expect(Array.from(w)).toEqual([0.25, 4, 4, 0.25, 0.25, 0.25, 4, 1, 1, 1, 0.25]);
  });

  it('sparse labels: the index is the class', () => {
    const y = Float32Array.from([2, 0, 1, 2, 3, -1]);
    const w = sampleWeights(y, 'sparse_categorical_crossentropy', Float32Array.from([1, 2, 0.5]), 6);
    expect(Array.from(w)).toEqual([0.5, 1, 2, 0.5, 1, 1]);
  });

  it('one-hot rows: the first argmax is the class (ties and soft rows as np.argmax)', () => {
    const y = Float32Array.from([
      0, 1, 0,
      0.2, 0.4, 0.4, // tie: class 1
      1, 0, 0,
      0, 0, 1,
      9, 9, 9, // a row past the batch: ignored
    ]);
    const w = sampleWeights(y, 'categorical_crossentropy', Float32Array.from([3, 0, 7]), 4);
    expect(Array.from(w)).toEqual([0, 0, 3, 7]);
  });

  it('reads only the first batch examples, and checks there are that many', () => {
    const y = Float32Array.from([1, 0, 1, 1]);
    expect(Array.from(sampleWeights(y, 'binary_crossentropy', Float32Array.from([2, 3]), 2))).toEqual([3, 2]);
    expect(sampleWeights(y, 'binary_crossentropy', Float32Array.from([2, 3]), 0).length).toBe(0);
    expect(() => sampleWeights(y, 'binary_crossentropy', Float32Array.from([2, 3]), 5)).toThrow(/binary_crossentropy needs 5 labels for a batch of 5, got 4/);
    expect(() => sampleWeights(y, 'categorical_crossentropy', Float32Array.from([2, 3]), 3)).toThrow(/needs 3 rows of 2 classes \(6 floats\), got 4 floats/);
    expect(() => sampleWeights(y, 'categorical_crossentropy', Float32Array.from([2]), 1)).toThrow(/at least 2 classes, got 1/);
    expect(() => sampleWeights(y, 'mse' as never, Float32Array.from([2, 3]), 1)).toThrow(/classWeight works with binary_crossentropy, categorical_crossentropy or sparse_categorical_crossentropy, got mse/);
    expect(() => sampleWeights(y, 'binary_crossentropy', Float32Array.from([2, 3]), 1.5)).toThrow(/batch must be an integer >= 0, got 1.5/);
  });
});

describe('balancedClassWeights', () => {
  it("is sklearn's n_samples / (n_classes * count)", () => {
    // sklearn's docstring example: y = [1, 1, 1, 1, 0, 0] -> [1.5, 0.75]
    expect(balancedClassWeights([2, 4])).toEqual({ 0: 1.5, 1: 0.75 });
    const w = balancedClassWeights([10, 30, 60]);
    expect(w[0]).toBeCloseTo(100 / 30, 12);
    expect(w[1]).toBeCloseTo(100 / 90, 12);
    expect(w[2]).toBeCloseTo(100 / 180, 12);
    // every class then carries the same total weight, n / k
    [10, 30, 60].forEach((n, c) => expect(n * w[c]).toBeCloseTo(100 / 3, 10));
    expect(balancedClassWeights([5, 5, 5])).toEqual({ 0: 1, 1: 1, 2: 1 });
  });

  it('refuses a class with no examples (sklearn raises too), and bad counts', () => {
    expect(() => balancedClassWeights([3, 0, 2])).toThrow(/class 1 has no examples, so its 'balanced' weight n_samples \/ \(n_classes \* 0\) is undefined; remove the empty class \(folder\) or pass classWeight explicitly/);
    expect(() => balancedClassWeights([])).toThrow(/got none/);
    expect(() => balancedClassWeights([3, -1])).toThrow(/count of class 1 must be an integer >= 0, got -1/);
    expect(() => balancedClassWeights([2.5, 1])).toThrow(/count of class 0 must be an integer >= 0, got 2.5/);
  });

  it('round trip: balanced weights -> per-class table -> per-example weights', () => {
    const y = Float32Array.from([1, 1, 1, 0]);
    const perClass = normalizeClassWeight(balancedClassWeights([1, 3]), 2);
    expect(Array.from(sampleWeights(y, 'binary_crossentropy', perClass, 4))).toEqual(f32([4 / 6, 4 / 6, 4 / 6, 2]));
  });
});
