import { seededRandom } from './initializers.ts';
import type { Batch } from './model.ts';

let nextId = 0;

/**
 * In-memory images and labels as a batch source (like Keras's fit(x, y, batch_size)), in order
 * or shuffled with a seed. Batches carry their sample indices and the source declares itself
 * unaugmented, so fit() can cache the frozen prefix's features for it.
 */
export class ArrayBatches implements AsyncIterable<Batch> {
  readonly samples: number;
  readonly length: number;
  readonly featureCacheKey: string;
  private readonly per: number;
  private readonly perLabel: number;
  private epoch = 0;

  constructor(readonly x: Float32Array, readonly y: Float32Array, readonly options: { batchSize?: number; shuffle?: boolean; seed?: number; samples?: number } = {}) {
    const batchSize = options.batchSize ?? 32;
    if (!Number.isInteger(batchSize) || batchSize <= 0) throw new Error(`ArrayBatches: batchSize must be a positive integer, got ${batchSize}`);
    this.samples = options.samples ?? y.length;
    if (this.samples <= 0 || x.length % this.samples !== 0 || y.length % this.samples !== 0) {
      throw new Error(`ArrayBatches: ${x.length} image values and ${y.length} labels do not split into ${this.samples} samples`);
    }
    this.per = x.length / this.samples;
    this.perLabel = y.length / this.samples;
    this.length = Math.ceil(this.samples / batchSize);
    this.featureCacheKey = `arrays#${nextId++}`;
  }

  private order(): Int32Array {
    const idx = Int32Array.from({ length: this.samples }, (_, i) => i);
    if (this.options.shuffle) {
      // seeded Fisher-Yates, a new permutation per epoch
      const rand = seededRandom(((this.options.seed ?? 0) + Math.imul(0x9e3779b9, ++this.epoch)) >>> 0);
      for (let i = idx.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [idx[i], idx[j]] = [idx[j], idx[i]];
      }
    }
    return idx;
  }

  /** One epoch of batches: pixels, labels and sample indices. */
  async *[Symbol.asyncIterator](): AsyncIterator<Batch> {
    for (const b of this.indexBatchList()) {
      const x = new Float32Array(b.indices.length * this.per);
      b.indices.forEach((s, i) => x.set(this.x.subarray(s * this.per, (s + 1) * this.per), i * this.per));
      yield { x, y: b.y, indices: b.indices };
    }
  }

  /** One epoch of batches without pixels (for cached features), advancing the order the same way. */
  async *indexBatches(): AsyncIterable<{ indices: Int32Array; y: Float32Array }> {
    yield* this.indexBatchList();
  }

  private indexBatchList(): { indices: Int32Array; y: Float32Array }[] {
    const order = this.order();
    const bs = this.options.batchSize ?? 32;
    const out = [];
    for (let s = 0; s < this.samples; s += bs) {
      const indices = order.slice(s, s + bs);
      const y = new Float32Array(indices.length * this.perLabel);
      indices.forEach((k, i) => y.set(this.y.subarray(k * this.perLabel, (k + 1) * this.perLabel), i * this.perLabel));
      out.push({ indices, y });
    }
    return out;
  }
}
