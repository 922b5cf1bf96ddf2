// DirectoryIterator.seek (for resuming a run): a flow positioned at batch t yields exactly what a
// flow that took t batches yields next, across epoch boundaries, with shuffling and augmentation.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DirectoryIterator } from '../src/io/flow.ts';
import { ImageDataGenerator } from '../src/io/image-data-generator.ts';
import { writeSampleFolders } from '../src/io/sample-data-node.ts';

const root = join(mkdtempSync(join(tmpdir(), 'wgft-seek-')), 'data');
const flows: DirectoryIterator[] = [];
const quiet = { log: () => undefined, warn: () => undefined };

async function flow(seed: number, batchSize = 3): Promise<DirectoryIterator> {
  const gen = new ImageDataGenerator({ rescale: 1 / 255, widthShiftRange: 0.3, rotationRange: 30, zoomRange: 0.3, horizontalFlip: true, verticalFlip: true });
  const f = await gen.flowFromDirectory(join(root, 'train'), { targetSize: [12, 10], batchSize, classMode: 'binary', seed, workers: 0, ...quiet });
  flows.push(f);
  return f;
}

beforeAll(async () => {
  await writeSampleFolders(root, { height: 12, width: 10, train: 7, test: 2, seed: 5 });
});
afterAll(async () => {
  for (const f of flows) await f.close();
});

describe('DirectoryIterator.seek', () => {
  it('positions the stream at any batch, in any epoch, as if the batches before had been taken', async () => {
    const ref = await flow(11); // 7 images, batch 3: 3 batches per epoch, the last one short
    const batches = [];
    for (let t = 0; t < 10; t++) batches.push(await ref.nextBatch());
    expect(ref.position).toBe(10);
    for (const t of [0, 1, 2, 3, 5, 6, 8]) {
      const f = await flow(11);
      f.seek(t);
      expect(f.position).toBe(t);
      for (let k = t; k < Math.min(10, t + 3); k++) {
        const b = await f.nextBatch();
        expect(b.y, `batch ${k} after seek(${t})`).toEqual(batches[k].y);
        expect(b.x, `batch ${k} after seek(${t})`).toEqual(batches[k].x);
      }
    }
  });

  it('seekEpoch(e) starts epoch e; seeking back over prefetched batches works too', async () => {
    const ref = await flow(3, 2); // 4 batches per epoch
    const epochs = [];
    for (let e = 0; e < 3; e++) {
      const labels = [];
      for await (const b of ref) labels.push(Array.from(b.y));
      epochs.push(labels);
    }
    // shuffled: the epochs' orders differ, so a wrong permutation would show
    expect(new Set(epochs.map((e) => JSON.stringify(e))).size).toBeGreaterThan(1);
    const f = await flow(3, 2);
    await f.nextBatch(); // prefetches ahead
    f.seekEpoch(2);
    const labels = [];
    for await (const b of f) labels.push(Array.from(b.y));
    expect(labels).toEqual(epochs[2]);
    f.seekEpoch(1);
    const again = [];
    for await (const b of f) again.push(Array.from(b.y));
    expect(again).toEqual(epochs[1]);
    expect(() => f.seek(-1)).toThrow(/whole number/);
  });
});
