import { describe, expect, it } from 'vitest';
import { CosineDecay, ExponentialDecay, PiecewiseConstantDecay } from '../src/graph/schedules.ts';

// Expected values are written out from Keras 3's formulas (learning_rate_schedule.py), in float64.
const close = (a: number, b: number) => expect(a).toBeCloseTo(b, 14);

describe('ExponentialDecay', () => {
  it('is lr0 * rate^(step / decaySteps), continuous between steps', () => {
    const s = new ExponentialDecay({ initialLearningRate: 0.1, decaySteps: 10, decayRate: 0.5 });
    close(s.at(0), 0.1);
    close(s.at(5), 0.1 * Math.SQRT1_2);
    close(s.at(9), 0.1 * 0.5 ** 0.9);
    close(s.at(10), 0.05);
    close(s.at(11), 0.1 * 0.5 ** 1.1);
    close(s.at(25), 0.1 * 0.5 ** 2.5);
  });

  it('staircase floors the exponent: constant within a period, drops exactly at the boundary', () => {
    const s = new ExponentialDecay({ initialLearningRate: 0.1, decaySteps: 10, decayRate: 0.5, staircase: true });
    close(s.at(0), 0.1);
    close(s.at(9), 0.1);
    close(s.at(10), 0.05);
    close(s.at(19), 0.05);
    close(s.at(20), 0.025);
  });

  it('reports its config with Keras\'s default name', () => {
    expect(new ExponentialDecay({ initialLearningRate: 1, decaySteps: 3, decayRate: 0.9 }).getConfig()).toEqual({ initialLearningRate: 1, decaySteps: 3, decayRate: 0.9, staircase: false, name: 'ExponentialDecay' });
  });

  it('rejects bad arguments with Keras\'s message for decaySteps', () => {
    expect(() => new ExponentialDecay({ initialLearningRate: 0.1, decaySteps: 0, decayRate: 0.5 })).toThrow(/argument `decaySteps` must be > 0. Received: decaySteps=0/);
    expect(() => new ExponentialDecay({ initialLearningRate: 0.1, decaySteps: -5, decayRate: 0.5 })).toThrow(/`decaySteps` must be > 0. Received: decaySteps=-5/);
    expect(() => new ExponentialDecay({ initialLearningRate: Number.NaN, decaySteps: 5, decayRate: 0.5 })).toThrow(/initialLearningRate must be a finite number, got NaN/);
    expect(() => new ExponentialDecay({ initialLearningRate: 0.1, decaySteps: 5, decayRate: -0.5 })).toThrow(/decayRate must be >= 0/);
    expect(() => new ExponentialDecay({ initialLearningRate: 0.1, decaySteps: 5, decayRate: 0.5, staircase: 1 as unknown as boolean })).toThrow(/staircase must be true or false/);
    expect(() => new ExponentialDecay(undefined as never)).toThrow(/pass an options object/);
    expect(() => new ExponentialDecay({ initialLearningRate: 0.1, decaySteps: 5, decayRate: 0.5 }).at(-1)).toThrow(/step must be a finite number >= 0/);
  });
});

describe('CosineDecay', () => {
  const cos = (lr0: number, step: number, decaySteps: number, alpha: number) => lr0 * ((1 - alpha) * 0.5 * (1 + Math.cos((Math.PI * Math.min(step, decaySteps)) / decaySteps)) + alpha);

  it('decays from lr0 to lr0 * alpha over decaySteps, then stays', () => {
    const s = new CosineDecay({ initialLearningRate: 0.1, decaySteps: 100, alpha: 0.1 });
    close(s.at(0), 0.1);
    close(s.at(50), 0.1 * (0.9 * 0.5 + 0.1));
    close(s.at(99), cos(0.1, 99, 100, 0.1));
    close(s.at(100), 0.01);
    close(s.at(101), 0.01);
    close(s.at(1000), 0.01);
    close(new CosineDecay({ initialLearningRate: 0.1, decaySteps: 100 }).at(100), 0);
  });

  it('warms up linearly from lr0 to warmupTarget, then decays from warmupTarget', () => {
    const s = new CosineDecay({ initialLearningRate: 0.01, decaySteps: 10, warmupTarget: 0.1, warmupSteps: 5, alpha: 0.2 });
    close(s.at(0), 0.01);
    close(s.at(1), 0.01 + 0.09 * 0.2);
    close(s.at(4), 0.01 + 0.09 * 0.8);
    close(s.at(5), 0.1); // the first decay step: the cosine at 0
    close(s.at(6), cos(0.1, 1, 10, 0.2));
    close(s.at(14), cos(0.1, 9, 10, 0.2));
    close(s.at(15), 0.1 * 0.2);
    close(s.at(40), 0.1 * 0.2);
  });

  it('with a warmupTarget and no warmupSteps decays from the target; warmupSteps alone is ignored (Keras)', () => {
    close(new CosineDecay({ initialLearningRate: 0.01, decaySteps: 10, warmupTarget: 0.1 }).at(0), 0.1);
    close(new CosineDecay({ initialLearningRate: 0.01, decaySteps: 10, warmupSteps: 5 }).at(0), 0.01);
    close(new CosineDecay({ initialLearningRate: 0.01, decaySteps: 10, warmupSteps: 5 }).at(5), cos(0.01, 5, 10, 0));
  });

  it('reports its config and rejects bad arguments', () => {
    expect(new CosineDecay({ initialLearningRate: 0.1, decaySteps: 10 }).getConfig()).toEqual({ initialLearningRate: 0.1, decaySteps: 10, alpha: 0, name: 'CosineDecay', warmupTarget: null, warmupSteps: 0 });
    expect(() => new CosineDecay({ initialLearningRate: 0.1, decaySteps: 0 })).toThrow(/argument `decaySteps` must be > 0/);
    expect(() => new CosineDecay({ initialLearningRate: 0.1, decaySteps: 10, warmupSteps: -1, warmupTarget: 1 })).toThrow(/warmupSteps must be >= 0/);
    expect(() => new CosineDecay({ initialLearningRate: 0.1, decaySteps: 10, warmupTarget: Number.POSITIVE_INFINITY })).toThrow(/warmupTarget must be a finite number/);
    expect(() => new CosineDecay({ initialLearningRate: 0.1, decaySteps: 10, alpha: Number.NaN })).toThrow(/alpha must be a finite number/);
  });
});

describe('PiecewiseConstantDecay', () => {
  it('holds values[i] up to and including boundaries[i]', () => {
    const s = new PiecewiseConstantDecay({ boundaries: [100, 110], values: [1, 0.5, 0.1] });
    expect(s.at(0)).toBe(1);
    expect(s.at(99)).toBe(1);
    expect(s.at(100)).toBe(1);
    expect(s.at(101)).toBe(0.5);
    expect(s.at(110)).toBe(0.5);
    expect(s.at(111)).toBe(0.1);
    expect(s.at(1e6)).toBe(0.1);
  });

  it('with one boundary at 0 changes after the first step', () => {
    const s = new PiecewiseConstantDecay({ boundaries: [0], values: [0.1, 0.01] });
    expect([0, 1, 2].map((i) => s.at(i))).toEqual([0.1, 0.01, 0.01]);
  });

  it('reports its config and rejects bad arguments with Keras\'s length message', () => {
    expect(new PiecewiseConstantDecay({ boundaries: [1], values: [2, 3] }).getConfig()).toEqual({ boundaries: [1], values: [2, 3], name: 'PiecewiseConstant' });
    expect(() => new PiecewiseConstantDecay({ boundaries: [1, 2], values: [1, 2] })).toThrow(/length of boundaries should be 1 less than the length of values.*of length 2, and values=\[1, 2\] of length 2/);
    expect(() => new PiecewiseConstantDecay({ boundaries: [], values: [1] })).toThrow(/at least one boundary/);
    expect(() => new PiecewiseConstantDecay({ boundaries: [5, 5], values: [1, 2, 3] })).toThrow(/strictly increasing.*boundaries\[1\]=5 follows 5/);
    expect(() => new PiecewiseConstantDecay({ boundaries: [1], values: [1, Number.NaN] })).toThrow(/values\[1\] must be a finite number/);
    expect(() => new PiecewiseConstantDecay({ boundaries: 3 as unknown as number[], values: [1] })).toThrow(/pass \{ boundaries: number\[\], values: number\[\] \}/);
  });
});
