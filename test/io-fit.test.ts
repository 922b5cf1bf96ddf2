// Model.fit and evaluate take flowFromDirectory's iterators as they are (the reference program's
// shape), on a small model and a folder of real PNG/JPEG files the test writes.
import { afterAll, describe, expect, it } from 'vitest';
import { Dense, Flatten, Input, Model, setInitSeed } from '../src/index.ts';
import type { DirectoryIterator } from '../src/io/flow.ts';
import { ImageDataGenerator } from '../src/io/image-data-generator.ts';
import { jpegRgb, pngRgb, tempDir, writeTree } from './io-images.ts';

/** Reddish or bluish noise: a class a linear model can tell apart. */
function tinted(h: number, w: number, red: boolean, seed: number): Uint8Array {
  const out = new Uint8Array(h * w * 3);
  let s = seed * 7919 + 1;
  const rand = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff) * 120;
  for (let i = 0; i < h * w; i++) {
    out[i * 3] = rand() + (red ? 120 : 0);
    out[i * 3 + 1] = rand();
    out[i * 3 + 2] = rand() + (red ? 0 : 120);
  }
  return out;
}

const flows: DirectoryIterator[] = [];
afterAll(async () => {
  for (const f of flows) await f.close();
});

describe('fit on flowFromDirectory', () => {
  it('trains and validates on directory flows, epoch after epoch', async () => {
    const root = tempDir();
    const files: Record<string, Uint8Array> = {};
    for (let i = 0; i < 10; i++) {
      files[`train/blue/b${i}.png`] = pngRgb(12, 16, tinted(12, 16, false, i));
      files[`train/red/r${i}.jpg`] = jpegRgb(12, 16, tinted(12, 16, true, i));
    }
    for (let i = 0; i < 3; i++) {
      files[`test/blue/b${i}.png`] = pngRgb(12, 16, tinted(12, 16, false, 100 + i));
      files[`test/red/r${i}.png`] = pngRgb(12, 16, tinted(12, 16, true, 100 + i));
    }
    writeTree(root, files);
    const log: string[] = [];
    const quiet = { log: (l: string) => log.push(l), warn: (l: string) => log.push(l) };
    const train = await new ImageDataGenerator({ rescale: 1 / 255, widthShiftRange: 0.3, rotationRange: 30, zoomRange: 0.3, horizontalFlip: true, verticalFlip: true })
      .flowFromDirectory(`${root}/train`, { targetSize: [8, 10], batchSize: 6, classMode: 'binary', seed: 5, ...quiet });
    const test = await new ImageDataGenerator({ rescale: 1 / 255 }).flowFromDirectory(`${root}/test`, { targetSize: [8, 10], batchSize: 4, classMode: 'binary', ...quiet });
    flows.push(train, test);
    expect(log).toEqual(['Found 20 images belonging to 2 classes.', 'Found 6 images belonging to 2 classes.']);
    expect([train.length, test.length]).toEqual([4, 2]);

    setInitSeed(3);
    const input = Input({ shape: [8, 10, 3] });
    const out = new Dense({ units: 1, activation: 'sigmoid' }).apply(new Flatten().apply(input));
    const model = new Model({ inputs: input, outputs: out });
    model.compile({ optimizer: 'sgd', loss: 'binary_crossentropy', metrics: ['acc'] });
    const history = await model.fit(train, { validationData: test, epochs: 3, verbose: 0 });
    expect(history.epoch).toEqual([0, 1, 2]);
    for (const k of ['loss', 'acc', 'val_loss', 'val_acc'] as const) {
      expect(history.history[k]).toHaveLength(3);
      for (const v of history.history[k]) expect(Number.isFinite(v)).toBe(true);
    }
    // every step's batch came from the flow, and its wait was recorded
    expect(train.waits).toHaveLength(3 * train.length);
    expect(test.waits).toHaveLength(3 * test.length);
    const [loss, acc] = await model.evaluate(test);
    expect(Number.isFinite(loss)).toBe(true);
    expect(acc).toBeGreaterThanOrEqual(0);
  });
});
