// fit({ signal }): what the CLI's Ctrl-C relies on. Aborting stops fit between steps, without
// validation or onEpochEnd; every submitted step completes and is reported; the batch source is
// not read past the last submitted step; fit rejects with the signal's reason.
import { describe, expect, it } from 'vitest';
import { Dense, Flatten, Input, Model, SGD } from '../src/index.ts';
import { randomArray } from './helpers/random.ts';

describe('Model.fit with an AbortSignal', () => {
  it('stops mid-epoch after the steps in flight, reports each of them, and rejects with the reason', async () => {
    const input = Input({ shape: [4, 4, 3] });
    const out = new Dense({ units: 1, activation: 'sigmoid' }).apply(new Dense({ units: 6, activation: 'relu' }).apply(new Flatten().apply(input)));
    const model = new Model({ inputs: input, outputs: out });
    model.compile({ optimizer: new SGD({ learningRate: 0.1, momentum: 0.9 }), loss: 'binary_crossentropy', metrics: ['acc'] });
    const data = Array.from({ length: 8 }, (_, i) => ({ x: randomArray(2 * 48, 10 + i, 0, 1), y: Float32Array.from([i % 2, 1 - (i % 2)]) }));
    let taken = 0;
    const source = {
      length: data.length,
      *[Symbol.iterator]() {
        for (const b of data) {
          taken++;
          yield b;
        }
      },
    };
    const controller = new AbortController();
    const reason = new Error('stop here');
    const steps: number[] = [];
    let epochEnds = 0;
    let validated = false;
    const validation = { length: 1, *[Symbol.iterator]() { validated = true; yield data[0]; } };
    const fit = model.fit(source, {
      epochs: 3, verbose: 0, validationData: validation,
      callbacks: [{
        onBatchEnd: (step) => {
          steps.push(step);
          if (step === 2) controller.abort(reason);
        },
        onEpochEnd: () => void epochEnds++,
      }],
      signal: controller.signal,
    });
    await expect(fit).rejects.toBe(reason);
    const { iteration } = await model.getOptimizerState();
    expect(steps).toEqual(Array.from({ length: iteration }, (_, i) => i)); // every submitted step was reported, in order
    expect(iteration).toBeGreaterThanOrEqual(3);
    expect(iteration).toBeLessThan(8);
    expect(taken).toBe(iteration); // nothing read beyond what was trained on
    expect(epochEnds).toBe(0);
    expect(validated).toBe(false);
  });
});
