// Pretraining a base without ImageNet: SmallCNN learns to tell four generated shape families
// (crescents, crosses, stars, triangles; never the demo's circles or squares) apart, so that its
// frozen features can then be fine-tuned on circles vs squares as a pretrained VGG16 would be.
// Browser-safe: the CLI caches the result on disk (src/cli/pretrain.ts), the page in memory.
import { generateSampleSet, PRETRAIN_FAMILIES, SAMPLE_GENERATOR_VERSION } from '../io/sample-data.ts';
import type { CallbackHooks } from './callbacks.ts';
import { seededRandom } from './initializers.ts';
import { setInitSeed } from './layer.ts';
import { Dense, GlobalAveragePooling2D } from './layers.ts';
import { Model, type Batch, type History } from './model.ts';
import { Adam } from './optimizers.ts';
import type { Sink } from './progbar.ts';
import { SmallCNN } from './small-cnn.ts';

export interface ShapePretrainSettings {
  height: number;
  width: number;
  /** seeds the images, the initial weights and the batch order */
  seed: number;
  /** training images (balanced over the four families) */
  images: number;
  /** held-out images for val_acc */
  valImages: number;
  epochs: number;
  batch: number;
  /** Adam's learning rate */
  lr: number;
}

/**
 * Measured on 2 CPU cores (lavapipe), 32x32: about 3 minutes, val_acc about 0.88 on the four
 * families; the frozen base then fine-tunes to about 0.9 on circles vs squares where a random
 * one stays near 0.5. With 7 epochs the result depended on the seed (seed 2: 0.725).
 */
export const SHAPE_PRETRAIN_DEFAULTS = { images: 4000, valImages: 400, epochs: 10, batch: 32, lr: 0.002 } as const;

/** Names everything the pretrained weights depend on: a cache of them keys on it. */
export function shapePretrainKey(s: ShapePretrainSettings): string {
  return `small_cnn-shapes${SAMPLE_GENERATOR_VERSION}-${s.height}x${s.width}-seed${s.seed}-${s.images}img-${s.epochs}ep-b${s.batch}-lr${s.lr}`;
}

/**
 * Generated images as batches, shuffled per epoch, each image drawn under one of the square's
 * eight symmetries (flips and quarter turns; flips only for non-square images), chosen anew every
 * epoch: the families do not depend on orientation, and 4000 images then act like many more.
 */
export class SymmetryBatches implements AsyncIterable<Batch> {
  readonly length: number;
  private epoch = 0;

  constructor(private readonly images: Uint8Array[], private readonly labels: number[], private readonly classes: number, private readonly height: number, private readonly width: number, private readonly batchSize: number, private readonly seed: number) {
    this.length = Math.ceil(images.length / batchSize);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Batch> {
    const rand = seededRandom((this.seed + Math.imul(0x9e3779b9, ++this.epoch)) >>> 0);
    const order = Int32Array.from({ length: this.images.length }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    const { height: h, width: w } = this;
    const per = h * w * 3;
    const square = h === w;
    for (let s = 0; s < order.length; s += this.batchSize) {
      const idx = order.subarray(s, s + this.batchSize);
      const x = new Float32Array(idx.length * per);
      const y = new Float32Array(idx.length * this.classes);
      idx.forEach((k, b) => {
        const sym = Math.floor(rand() * (square ? 8 : 4));
        const src = this.images[k];
        const flipX = (sym & 1) !== 0;
        const flipY = (sym & 2) !== 0;
        const transpose = (sym & 4) !== 0;
        for (let r = 0; r < h; r++) {
          for (let c = 0; c < w; c++) {
            let sr = transpose ? c : r;
            let sc = transpose ? r : c;
            if (flipY) sr = h - 1 - sr;
            if (flipX) sc = w - 1 - sc;
            // pixels as smallCnnPreprocessInput makes them (-1..1)
            const o = b * per + (r * w + c) * 3;
            const i = (sr * w + sc) * 3;
            x[o] = src[i] / 127.5 - 1;
            x[o + 1] = src[i + 1] / 127.5 - 1;
            x[o + 2] = src[i + 2] / 127.5 - 1;
          }
        }
        y[b * this.classes + this.labels[k]] = 1;
      });
      yield { x, y };
    }
  }
}

/** The held-out images, as they are (no symmetry), in order. */
function heldOut(images: Uint8Array[], labels: number[], classes: number, batch: number): Batch[] {
  const per = images[0].length;
  const out: Batch[] = [];
  for (let s = 0; s < images.length; s += batch) {
    const n = Math.min(batch, images.length - s);
    const x = new Float32Array(n * per);
    const y = new Float32Array(n * classes);
    for (let b = 0; b < n; b++) {
      const im = images[s + b];
      for (let i = 0; i < per; i++) x[b * per + i] = im[i] / 127.5 - 1;
      y[b * classes + labels[s + b]] = 1;
    }
    out.push({ x, y });
  }
  return out;
}

export interface ShapePretrainRun {
  /** SmallCNN without a top, trained: what gets fine-tuned */
  base: Model;
  history: History;
  seconds: number;
}

export interface ShapePretrainFitOptions {
  verbose?: 0 | 1 | 2;
  sink?: Sink;
  signal?: AbortSignal;
  callbacks?: CallbackHooks[];
  /** called while the images are drawn (done, total) */
  onImages?: (done: number, total: number) => void;
}

/**
 * Generates the four-family images, then trains SmallCNN + GlobalAveragePooling2D + Dense 4
 * softmax from random initialisation with Adam and categorical cross-entropy. Deterministic for
 * the settings (on one adapter). The caller disposes `base`.
 */
export async function pretrainShapes(s: ShapePretrainSettings, o: ShapePretrainFitOptions = {}): Promise<ShapePretrainRun> {
  for (const [k, min] of [['images', 8], ['valImages', 4], ['epochs', 1], ['batch', 1]] as const) {
    if (!Number.isInteger(s[k]) || s[k] < min) throw new Error(`shape pretraining: ${k} must be an integer of at least ${min}, got ${s[k]}`);
  }
  if (!(s.lr > 0) || !Number.isFinite(s.lr)) throw new Error(`shape pretraining: lr must be a positive number, got ${s.lr}`);
  const t0 = Date.now();
  const families = PRETRAIN_FAMILIES;
  const total = s.images + s.valImages;
  const draw = async (count: number, seed: number, done0: number) => {
    const ims: Uint8Array[] = [];
    const labels: number[] = [];
    // in chunks, yielding between them: a progress callback sees it move, a page stays responsive
    for (let i = 0; i < count; i += 200) {
      if (o.signal?.aborted) throw o.signal.reason ?? new Error('aborted');
      const part = generateSampleSet({ count: Math.min(200, count - i), start: i, height: s.height, width: s.width, seed, families });
      for (const im of part) {
        ims.push(im.rgb);
        labels.push(im.label);
      }
      o.onImages?.(done0 + ims.length, total);
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    return { ims, labels };
  };
  // train and held-out images come from different seeds: none is in both
  const train = await draw(s.images, s.seed * 2 + 101, 0);
  const val = await draw(s.valImages, s.seed * 2 + 102, s.images);

  setInitSeed(s.seed);
  const base = await SmallCNN({ weights: null, inputShape: [s.height, s.width, 3] });
  const features = new GlobalAveragePooling2D({ name: 'pretrain_pool' }).apply(base.output);
  const head = new Dense({ units: families.length, activation: 'softmax', name: 'pretrain_families' }).apply(features);
  const classifier = new Model({ inputs: base.input, outputs: head, name: 'small_cnn_pretraining' });
  classifier.compile({ optimizer: new Adam({ learningRate: s.lr }), loss: 'categorical_crossentropy', metrics: ['acc'] });
  try {
    const history = await classifier.fit(new SymmetryBatches(train.ims, train.labels, families.length, s.height, s.width, s.batch, s.seed), {
      epochs: s.epochs, validationData: heldOut(val.ims, val.labels, families.length, 100), verbose: o.verbose ?? 1, sink: o.sink, signal: o.signal, callbacks: o.callbacks,
    });
    return { base, history, seconds: (Date.now() - t0) / 1000 };
  } catch (e) {
    await base.dispose(); // stopped or failed: nothing of it is kept
    throw e;
  } finally {
    // the base's layers live on in `base`; the classifier only owns the training state
    await classifier.dispose();
  }
}
