/**
 * The batch stream of flow_from_directory (Keras's DirectoryIterator), independent of where the
 * images come from. A flow is one endless stream of batches in Keras's order; iterating it
 * (`for await`, or Model.fit/evaluate) yields `length` = ceil(samples / batchSize) batches from
 * where the stream stands, which is one whole epoch unless a consumer stopped part-way (as
 * fit does with a stepsPerEpoch below length: the next epoch then continues the stream, as
 * Keras's enqueuer does).
 *
 * Randomness follows keras-preprocessing 1.1.2's Iterator used as a Sequence (fit_generator):
 * before batch t (counted over the flow's life) the RNG is seeded with seed + t; the first
 * epoch's permutation is drawn right after that first seeding, later ones at the end of each
 * epoch from the RNG as the last batch left it; each image then draws its transform parameters
 * in Keras's order. The RNG is numpy's MT19937, so with the same seed the parameters equal
 * Keras's. (Keras shares numpy's global RNG between the training and validation iterators;
 * each flow here has its own.)
 *
 * Prefetching: up to `prefetch` batches beyond the consumer are planned (parameters drawn
 * here, in order) and handed to the loader (worker threads in Node) while the consumer works;
 * each `next()` records how long it waited for its batch (`waits`).
 */
import { IDENTITY, randomTransform, standardize, type AugmentSettings, type TransformParams } from './augment.ts';
import { NumpyRandom } from './numpy-random.ts';

/** One batch: x is NHWC float32; y holds labels per classMode (empty when classMode is null). */
export interface ImageBatch {
  x: Float32Array;
  y: Float32Array;
  /** Which samples (indices into `filenames`) the batch holds, in order. */
  indices: Int32Array;
}

let flowIds = 0;

/** Whether any random transform is configured (then no two epochs see the same pixels). */
function randomAugment(a: AugmentSettings): boolean {
  const shift = (r: number | number[]) => (Array.isArray(r) ? r.some((v) => v !== 0) : r !== 0);
  return a.rotationRange !== 0 || shift(a.widthShiftRange) || shift(a.heightShiftRange) || a.shearRange !== 0 ||
    a.zoomRange[0] !== 1 || a.zoomRange[1] !== 1 || a.horizontalFlip || a.verticalFlip;
}

export type ClassMode = 'binary' | 'categorical' | 'sparse' | null;

/** Loads one image of the flow (by index into its files) with the given transform, HWC float32. */
export interface ImageLoader {
  load(index: number, params: TransformParams | null): Promise<Float32Array>;
  close(): Promise<void>;
}

export interface FlowSetup {
  /** display names of the images, relative to the folder (Keras's `filenames`) */
  filenames: string[];
  /** class index of each image */
  labels: Int32Array | number[];
  classIndices: Record<string, number>;
  height: number;
  width: number;
  batchSize: number;
  classMode: ClassMode;
  shuffle: boolean;
  seed: number | null;
  prefetch: number;
  augment: AugmentSettings;
  loader: ImageLoader;
  /** prefix for error messages, e.g. "flowFromDirectory('data/train')" */
  what: string;
  /** files left out before training, and why */
  skipped?: { file: string; reason: string }[];
}

interface Planned {
  indices: Int32Array;
  params: TransformParams[];
  batch: Promise<ImageBatch>;
}

/** A 32-bit seed from the platform's CSPRNG (for flows without a seed). */
function randomSeed(): number {
  const c = (globalThis as { crypto?: { getRandomValues(a: Uint32Array): Uint32Array } }).crypto;
  return c ? c.getRandomValues(new Uint32Array(1))[0] : Math.floor(Math.random() * 2 ** 32);
}

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

export class DirectoryIterator implements AsyncIterable<ImageBatch> {
  readonly samples: number;
  readonly filenames: string[];
  /** class index of each image, in file order (Keras's `classes`) */
  readonly classes: Int32Array;
  readonly classIndices: Record<string, number>;
  readonly numClasses: number;
  readonly batchSize: number;
  readonly classMode: ClassMode;
  readonly shuffle: boolean;
  /** [height, width, 3] */
  readonly imageShape: [number, number, number];
  /** Batches per epoch: ceil(samples / batchSize); what Model.fit takes as steps. */
  readonly length: number;
  /** Image files left out because they cannot be used, with the reason (also warned at start). */
  readonly skipped: { file: string; reason: string }[];
  /** Milliseconds each `next()` waited for its batch, in order (cleared by resetWaits()). */
  readonly waits: number[] = [];

  private readonly setup: FlowSetup;
  private readonly rng = new NumpyRandom();
  private readonly seed: number;
  private totalBatchesSeen = 0;
  private indexArray: Int32Array | null = null;
  private planStep = 0; // step within its epoch of the next batch to plan
  private readonly queue: Planned[] = [];
  private closed = false;

  constructor(setup: FlowSetup) {
    this.setup = setup;
    this.samples = setup.filenames.length;
    this.filenames = setup.filenames;
    this.classes = Int32Array.from(setup.labels);
    this.classIndices = setup.classIndices;
    this.numClasses = Object.keys(setup.classIndices).length;
    this.batchSize = setup.batchSize;
    this.classMode = setup.classMode;
    this.shuffle = setup.shuffle;
    this.imageShape = [setup.height, setup.width, 3];
    this.length = Math.ceil(this.samples / this.batchSize);
    this.seed = setup.seed ?? randomSeed();
    this.skipped = setup.skipped ?? [];
    this.featureCacheKey = randomAugment(setup.augment) ? null : `${setup.what}#${flowIds++}`;
  }

  /**
   * Set when no random augmentation is configured: every epoch then shows the same pixels per
   * sample, so Model.fit may cache the frozen layers' output per sample (see indexBatches()).
   */
  readonly featureCacheKey: string | null;

  /** Indices and transform parameters of the next batch in Keras's order of draws. */
  private plan(): { indices: Int32Array; params: TransformParams[] } {
    const { augment, height, width } = this.setup;
    this.rng.seed((this.seed + this.totalBatchesSeen) % 2 ** 32);
    this.totalBatchesSeen++;
    if (!this.indexArray) this.indexArray = this.newIndexArray();
    const b = this.batchSize;
    const indices = this.indexArray.slice(this.planStep * b, (this.planStep + 1) * b);
    const params = Array.from(indices, () => randomTransform(this.rng, augment, height, width));
    if (++this.planStep === this.length) {
      this.planStep = 0;
      this.indexArray = this.newIndexArray(); // on_epoch_end
    }
    return { indices, params };
  }

  private newIndexArray(): Int32Array {
    if (this.shuffle) return this.rng.permutation(this.samples);
    return Int32Array.from({ length: this.samples }, (_, i) => i);
  }

  /** Transform parameters are only worth applying when they move something. */
  private static effective(p: TransformParams): TransformParams | null {
    for (const k of Object.keys(IDENTITY) as (keyof TransformParams)[]) if (p[k] !== IDENTITY[k]) return p;
    return null;
  }

  private async assemble(indices: Int32Array, params: TransformParams[]): Promise<ImageBatch> {
    const { height, width, loader } = this.setup;
    const per = height * width * 3;
    const n = indices.length;
    const x = new Float32Array(n * per);
    await Promise.all(Array.from(indices, async (idx, i) => {
      let img: Float32Array;
      try {
        img = await loader.load(idx, DirectoryIterator.effective(params[i]));
      } catch (e) {
        throw new Error(`${this.setup.what}: cannot load '${this.filenames[idx]}': ${(e as Error).message}`);
      }
      if (img.length !== per) throw new Error(`${this.setup.what}: '${this.filenames[idx]}' came back with ${img.length} values, expected ${per}`);
      const f = this.setup.augment.preprocess;
      if (f) {
        const out = f(img);
        if (!(out instanceof Float32Array) || out.length !== per) {
          throw new Error(`${this.setup.what}: preprocessingFunction returned ${out instanceof Float32Array ? `${out.length} values` : typeof out} for '${this.filenames[idx]}'; it must return a Float32Array of ${per} values (${height}x${width}x3)`);
        }
        img = standardize(out, this.setup.augment.rescale);
      }
      x.set(img, i * per);
    }));
    return { x, y: this.labelsOf(indices), indices };
  }

  /** Labels of samples in the flow's class mode. */
  private labelsOf(indices: Int32Array): Float32Array {
    const { classMode } = this.setup;
    const n = indices.length;
    let y: Float32Array;
    if (classMode === 'categorical') {
      y = new Float32Array(n * this.numClasses);
      indices.forEach((idx, i) => (y[i * this.numClasses + this.classes[idx]] = 1));
    } else if (classMode === 'binary' || classMode === 'sparse') {
      y = Float32Array.from(indices, (idx) => this.classes[idx]);
    } else {
      y = new Float32Array(0);
    }
    return y;
  }

  /**
   * One epoch (`length` batches) of sample indices and labels without decoding any image,
   * advancing the stream exactly as iterating would (same order, same RNG draws). Model.fit
   * uses it for epochs whose frozen-layer outputs are all cached.
   */
  async *indexBatches(): AsyncIterable<{ indices: Int32Array; y: Float32Array }> {
    if (this.closed) throw new Error(`${this.setup.what}: the flow was closed`);
    for (let k = 0; k < this.length; k++) {
      const item = this.queue.shift() ?? this.plan(); // batches already being decoded are dropped
      yield { indices: item.indices, y: this.labelsOf(item.indices) };
    }
  }

  /** Plans batches until `want` are queued. */
  private fill(want: number): void {
    while (!this.closed && this.queue.length < want) {
      const { indices, params } = this.plan();
      const batch = this.assemble(indices, params);
      batch.catch(() => undefined); // surfaced by the next() that takes it, not as an unhandled rejection
      this.queue.push({ indices, params, batch });
    }
  }

  /** The next batch of the stream, with the time spent waiting for it recorded in `waits`. */
  async nextBatch(): Promise<ImageBatch> {
    if (this.closed) throw new Error(`${this.setup.what}: the flow was closed`);
    this.fill(1);
    const item = this.queue.shift()!;
    this.fill(this.setup.prefetch); // keep the loader busy while the consumer works on this one
    const t0 = now();
    const batch = await item.batch;
    this.waits.push(now() - t0);
    return batch;
  }

  /** One epoch's worth (`length`) of batches from the stream's current position. */
  [Symbol.asyncIterator](): AsyncIterator<ImageBatch> {
    let left = this.length;
    return {
      next: async () => {
        if (left <= 0) return { done: true, value: undefined };
        left--;
        return { done: false, value: await this.nextBatch() };
      },
      return: async () => {
        left = 0;
        return { done: true, value: undefined };
      },
    };
  }

  /** Batches taken from the stream so far (the position `seek` restores). */
  get position(): number {
    return this.totalBatchesSeen - this.queue.length;
  }

  /**
   * Positions the stream before batch `batches` (counted over the flow's life, from 0), as if
   * that many batches had been taken: for resuming a run from a checkpoint. Batches prepared
   * ahead are dropped. The RNG is replayed only as far as needed: the permutation in use at
   * `batches` was drawn right after planning the last batch of the epoch before it (in epoch 0:
   * right after the first seeding), so one reseed and that batch's draws rebuild it.
   */
  seek(batches: number): void {
    if (!Number.isInteger(batches) || batches < 0) throw new Error(`${this.setup.what}: seek needs a whole number of batches >= 0, got ${batches}`);
    if (this.closed) throw new Error(`${this.setup.what}: the flow was closed`);
    this.queue.length = 0; // their loads finish in the background and are ignored
    const epoch = Math.floor(batches / this.length);
    const { augment, height, width } = this.setup;
    if (batches === 0) {
      this.indexArray = null; // drawn by the first plan(), right after its seeding, as in a new flow
    } else if (epoch === 0) {
      this.rng.seed(this.seed % 2 ** 32);
      this.indexArray = this.newIndexArray();
    } else {
      const last = epoch * this.length - 1;
      this.rng.seed((this.seed + last) % 2 ** 32);
      const lastSize = this.samples - (this.length - 1) * this.batchSize;
      for (let i = 0; i < lastSize; i++) randomTransform(this.rng, augment, height, width);
      this.indexArray = this.newIndexArray();
    }
    this.planStep = batches % this.length;
    this.totalBatchesSeen = batches;
  }

  /** seek() to the start of epoch `epoch` (0-based). */
  seekEpoch(epoch: number): void {
    this.seek(epoch * this.length);
  }

  /** The transform parameters the next planned batches will use (for tests and debugging). */
  peekPlanned(): { indices: Int32Array; params: TransformParams[] }[] {
    return this.queue.map(({ indices, params }) => ({ indices, params }));
  }

  /** Totals of the recorded waits. */
  waitStats(): { batches: number; totalMs: number; meanMs: number; maxMs: number } {
    const total = this.waits.reduce((a, b) => a + b, 0);
    return { batches: this.waits.length, totalMs: total, meanMs: this.waits.length ? total / this.waits.length : 0, maxMs: this.waits.reduce((a, b) => Math.max(a, b), 0) };
  }

  resetWaits(): void {
    this.waits.length = 0;
  }

  /** Stops loading and ends worker threads; the flow cannot be iterated afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    await this.setup.loader.close();
  }
}
