import { describe, expect, it } from 'vitest';
import { Conv2D, Dense, Flatten, Input, Model, SGD, setInitSeed } from '../src/index.ts';
import { rng } from './helpers/random.ts';

function tiny(): Model {
  const input = Input({ shape: [6, 6, 3] });
  let x = new Conv2D({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(input);
  x = new Flatten().apply(x);
  const out = new Dense({ units: 1, activation: 'sigmoid' }).apply(x);
  const m = new Model({ inputs: input, outputs: out });
  m.compile({ optimizer: new SGD({ learningRate: 0.01, momentum: 0.9 }), loss: 'binary_crossentropy', metrics: ['acc'] });
  return m;
}

function data(n: number, size: number) {
  const r = rng(5);
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push({ x: Float32Array.from({ length: size * 108 }, () => r()), y: Float32Array.from({ length: size }, () => (r() < 0.5 ? 1 : 0)) });
  }
  return out;
}

describe('Model.stopTraining', () => {
  it('stops fit after the step in progress; a second fit continues exactly where the first stopped', async () => {
    const batches = data(6, 2);
    setInitSeed(11);
    const whole = tiny();
    const expected: number[] = [];
    await whole.fit(batches, { epochs: 2, verbose: 0, callbacks: [{ onBatchEnd: (_s, l) => void expected.push(l.loss) }] });

    setInitSeed(11);
    const m = tiny();
    const losses: number[] = [];
    const epochsEnded: number[] = [];
    const stopAt = 2;
    const h = await m.fit(batches, {
      epochs: 2, verbose: 0, validationData: batches.slice(0, 2),
      callbacks: [{
        onBatchEnd: (_s, l) => {
          losses.push(l.loss);
          if (losses.length === stopAt) m.stopTraining = true;
        },
        onEpochEnd: (e) => void epochsEnded.push(e),
      }],
    });
    // Steps already queued when the flag was seen still finish (fit keeps up to two in flight).
    expect(losses.length).toBeGreaterThanOrEqual(stopAt);
    expect(losses.length).toBeLessThan(6);
    // As Keras: the interrupted epoch still validates and ends, and no later epoch starts.
    expect(epochsEnded).toEqual([0]);
    expect(h.history.val_loss).toHaveLength(1);

    // Resume: the rest of epoch 1, then epoch 2. fit resets the flag, as Keras does.
    const done = losses.length;
    await m.fit(batches.slice(done), { epochs: 1, verbose: 0, callbacks: [{ onBatchEnd: (_s, l) => void losses.push(l.loss) }] });
    await m.fit(batches, { initialEpoch: 1, epochs: 2, verbose: 0, callbacks: [{ onBatchEnd: (_s, l) => void losses.push(l.loss) }] });
    expect(losses).toHaveLength(12);
    losses.forEach((l, i) => expect(Math.abs(l - expected[i])).toBeLessThan(1e-6));
  });
});
