// Augmentation against golden outputs from numpy, scipy.ndimage.affine_transform and Pillow
// (test/fixtures/augment/make_golden.py), plus the draw order, flips and rescale order.
import { describe, expect, it } from 'vitest';
import golden from './fixtures/augment/golden.json' with { type: 'json' };
import { affineTransform, applyTransform, randomTransform, standardize, transformMatrix, type AugmentSettings, type TransformParams } from '../src/io/augment.ts';
import { DirectoryIterator, type ImageLoader } from '../src/io/flow.ts';
import { ImageDataGenerator, resolveAugment } from '../src/io/image-data-generator.ts';
import { NumpyRandom } from '../src/io/numpy-random.ts';
import { resizeRgb } from '../src/io/resize.ts';

type Settings = AugmentSettings;
const g = golden as unknown as {
  made_with: Record<string, string>;
  rng: { seed: number; random: number[]; uniform: number[]; choice5: number; choice2: number; permutation10: number[]; after700: number; permutation300: number[] }[];
  draws: { settings: Settings; seed: number; height: number; width: number; params: TransformParams[] }[];
  affineImages: Record<string, { shape: [number, number, number]; data: number[] }>;
  affine: { image: string; params: TransformParams; settings: Settings; expected: number[] }[];
  iterator: { n: number; batchSize: number; seed: number; height: number; width: number; settings: Settings; epochs: { indices: number[]; params: TransformParams[] }[][] };
  resizeSource: { height: number; width: number; data: number[] };
  resize: { height: number; width: number; interpolation: 'nearest' | 'bilinear'; expected: number[] }[];
};

function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let e = 0;
  for (let i = 0; i < a.length; i++) e = Math.max(e, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return e;
}

function expectParams(actual: TransformParams, expected: TransformParams, what: string) {
  for (const k of ['theta', 'tx', 'ty', 'shear', 'zx', 'zy'] as const) {
    expect(actual[k], `${what} ${k}`).toBeCloseTo(expected[k], 12);
  }
  expect(actual.flipHorizontal, `${what} flipHorizontal`).toBe(expected.flipHorizontal);
  expect(actual.flipVertical, `${what} flipVertical`).toBe(expected.flipVertical);
}

describe('numpy legacy RNG (MT19937)', () => {
  it('matches numpy draw for draw', () => {
    for (const c of g.rng) {
      const r = new NumpyRandom(c.seed);
      expect(c.random.map(() => r.random())).toEqual(c.random);
      expect(c.uniform.map(() => r.uniform(-30, 30))).toEqual(c.uniform);
      expect(r.choiceIndex(5)).toBe(c.choice5);
      expect([-1, 1][r.choiceIndex(2)]).toBe(c.choice2);
      expect(Array.from(r.permutation(10))).toEqual(c.permutation10);
      for (let i = 0; i < 700; i++) r.random();
      expect(r.random()).toBe(c.after700);
      expect(Array.from(r.permutation(300))).toEqual(c.permutation300);
    }
  });

  it('rejects seeds numpy rejects', () => {
    expect(() => new NumpyRandom(-1)).toThrow(/seed/);
    expect(() => new NumpyRandom(2 ** 32)).toThrow(/seed/);
  });
});

describe('get_random_transform', () => {
  it('draws the same parameters as Keras with the same seed (order: theta, tx, ty, shear, zx, zy, flips)', () => {
    for (const c of g.draws) {
      const r = new NumpyRandom(c.seed);
      const s = resolveAugment(c.settings);
      c.params.forEach((p, i) => expectParams(randomTransform(r, s, c.height, c.width), p, `seed ${c.seed} image ${i}`));
    }
  });

  it('draws the flips even when they are off, and only the ranges that are set', () => {
    const s = resolveAugment({});
    const a = new NumpyRandom(5);
    const b = new NumpyRandom(5);
    randomTransform(a, s, 10, 10);
    b.random();
    b.random();
    expect(a.random()).toBe(b.random());
    const rot = resolveAugment({ rotationRange: 10 });
    const c = new NumpyRandom(5);
    const d = new NumpyRandom(5);
    const p = randomTransform(c, rot, 10, 10);
    expect(p.theta).toBe(d.uniform(-10, 10));
  });

  it('ImageDataGenerator.randomTransform reseeds like random_transform(x, seed)', () => {
    const gen = new ImageDataGenerator({ rotationRange: 30, zoomRange: 0.3, widthShiftRange: 0.3, horizontalFlip: true, verticalFlip: true, rescale: 1 / 255 });
    const ref = g.draws[0];
    expectParams(gen.randomTransform(ref.height, ref.width, ref.seed), ref.params[0], 'first');
    expectParams(gen.randomTransform(ref.height, ref.width), ref.params[1], 'second');
  });
});

describe('affine transform vs scipy.ndimage.affine_transform', () => {
  it(`matches all ${g.affine.length} golden cases within 1e-4 (scipy ${g.made_with.scipy})`, () => {
    const modes = new Set<string>();
    for (const c of g.affine) {
      const img = g.affineImages[c.image];
      const [h, w, ch] = img.shape;
      const s = resolveAugment(c.settings);
      const out = standardize(applyTransform(new Float32Array(img.data), h, w, ch, c.params, s), s.rescale);
      const e = maxRelErr(out, c.expected);
      expect(e, `${c.image} ${s.fillMode} order ${s.interpolationOrder} ${JSON.stringify(c.params)}`).toBeLessThan(1e-4);
      modes.add(`${s.fillMode}/${s.interpolationOrder}`);
    }
    expect(modes.size).toBe(8); // every fill mode with both interpolation orders
  });

  it('centres at (h/2 + 0.5, w/2 + 0.5): a 180 degree turn of an even-sized image shifts it by one pixel', () => {
    // With the true centre ((h-1)/2) it would be an exact flip; Keras 1.1.2's centre is one pixel off.
    const m = transformMatrix({ theta: 180, tx: 0, ty: 0, shear: 0, zx: 1, zy: 1, flipHorizontal: false, flipVertical: false }, 4, 4)!;
    expect(m[2]).toBeCloseTo(5, 12); // row r pulls from 5 - r
    expect(m[5]).toBeCloseTo(5, 12);
    const src = Float32Array.from({ length: 16 }, (_, i) => i);
    const out = affineTransform(src, 4, 4, 1, m, 'constant', -1, 1);
    expect(out[0]).toBe(-1); // (0,0) reads (5,5): outside
    expect(out[(2 * 4 + 2)]).toBeCloseTo(src[3 * 4 + 3], 5); // (2,2) reads (3,3)
  });

  it('ty shifts columns (width), tx rows (height)', () => {
    const src = Float32Array.from({ length: 12 }, (_, i) => i); // 3x4
    const p = { theta: 0, tx: 0, ty: 1, shear: 0, zx: 1, zy: 1, flipHorizontal: false, flipVertical: false };
    const out = applyTransform(src, 3, 4, 1, p, { fillMode: 'constant', cval: -1, interpolationOrder: 1 });
    expect(Array.from(out.subarray(0, 4))).toEqual([1, 2, 3, -1]); // output col c pulls col c+1
  });
});

describe('flips and rescale', () => {
  const img = Float32Array.from({ length: 2 * 3 * 2 }, (_, i) => i * 10); // 2x3, 2 channels
  const none = { theta: 0, tx: 0, ty: 0, shear: 0, zx: 1, zy: 1, flipHorizontal: false, flipVertical: false };
  const s = { fillMode: 'constant' as const, cval: 255, interpolationOrder: 1 as const };

  it('flips columns for horizontal, rows for vertical, keeping channels together', () => {
    const h = applyTransform(img, 2, 3, 2, { ...none, flipHorizontal: true }, s);
    expect(Array.from(h.subarray(0, 6))).toEqual([40, 50, 20, 30, 0, 10]);
    const v = applyTransform(img, 2, 3, 2, { ...none, flipVertical: true }, s);
    expect(Array.from(v.subarray(0, 6))).toEqual([60, 70, 80, 90, 100, 110]);
  });

  it('flips after the affine transform: a shift then a horizontal flip', () => {
    const shiftThenFlip = applyTransform(img, 2, 3, 2, { ...none, ty: 1, flipHorizontal: true }, s);
    // shift: row 0 becomes [20,30][40,50][255,255]; the flip then mirrors it
    expect(Array.from(shiftThenFlip.subarray(0, 6))).toEqual([255, 255, 40, 50, 20, 30]);
  });

  it('rescales after the transform: the constant fill is rescaled too', () => {
    const out = standardize(applyTransform(img, 2, 3, 2, { ...none, ty: 1 }, s), 1 / 255);
    expect(out[4]).toBe(1); // cval 255 * 1/255
    expect(out[0]).toBe(Math.fround(20 * Math.fround(1 / 255)));
  });
});

describe('resize like Pillow', () => {
  it('matches Image.resize byte for byte (NEAREST and BILINEAR)', () => {
    const src = new Uint8Array(g.resizeSource.data);
    for (const c of g.resize) {
      const out = resizeRgb(src, g.resizeSource.height, g.resizeSource.width, c.height, c.width, c.interpolation);
      expect(Array.from(out), `${c.interpolation} -> ${c.height}x${c.width}`).toEqual(c.expected);
    }
  });

  it('leaves an image of the target size alone', () => {
    const src = new Uint8Array(g.resizeSource.data);
    expect(resizeRgb(src, 9, 13, 9, 13, 'bilinear')).toBe(src);
  });
});

describe('DirectoryIterator schedule (seeded)', () => {
  /** A loader that returns an image filled with its index. */
  function indexLoader(h: number, w: number): ImageLoader {
    return {
      async load(index) {
        return new Float32Array(h * w * 3).fill(index);
      },
      async close() {},
    };
  }

  it('matches Keras: seed + batches seen, first permutation in the first batch, later ones at epoch end', async () => {
    const c = g.iterator;
    const flow = new DirectoryIterator({
      filenames: Array.from({ length: c.n }, (_, i) => `f${i}.png`),
      labels: Array.from({ length: c.n }, (_, i) => i % 2),
      classIndices: { a: 0, b: 1 },
      height: c.height, width: c.width, batchSize: c.batchSize, classMode: 'binary', shuffle: true, seed: c.seed,
      prefetch: 0, augment: resolveAugment(c.settings), loader: indexLoader(c.height, c.width), what: 'test',
    });
    expect(flow.length).toBe(3);
    for (const epoch of c.epochs) {
      let k = 0;
      for await (const batch of flow) {
        const want = epoch[k++];
        const got = Array.from({ length: batch.y.length }, (_, i) => batch.x[i * c.height * c.width * 3]);
        expect(got).toEqual(want.indices);
        expect(Array.from(batch.y)).toEqual(want.indices.map((i) => i % 2));
      }
      expect(k).toBe(epoch.length);
    }
    // the parameters drawn for each image, in order
    const planned = new DirectoryIterator({
      filenames: Array.from({ length: c.n }, (_, i) => `f${i}.png`), labels: new Array(c.n).fill(0), classIndices: { a: 0 },
      height: c.height, width: c.width, batchSize: c.batchSize, classMode: null, shuffle: true, seed: c.seed, prefetch: 9,
      augment: resolveAugment(c.settings), loader: indexLoader(c.height, c.width), what: 'test',
    });
    await planned.nextBatch(); // plans batch 0 and the 9 after it (the golden has 8 of them)
    const flat = c.epochs.flat();
    const queue = planned.peekPlanned().slice(0, flat.length - 1);
    expect(queue.length).toBe(flat.length - 1);
    queue.forEach((b, i) => {
      expect(Array.from(b.indices)).toEqual(flat[i + 1].indices);
      b.params.forEach((p, j) => expectParams(p, flat[i + 1].params[j], `batch ${i + 1} image ${j}`));
    });
    await planned.close();
  });
});

describe('options', () => {
  it('rejects unknown and snake_case options with a hint', () => {
    expect(() => new ImageDataGenerator({ rotation_range: 30 } as never)).toThrow(/unsupported option 'rotation_range' \(write it as rotationRange\)/);
    expect(() => new ImageDataGenerator({ brightnessRange: [0.5, 1] } as never)).toThrow(/unsupported option 'brightnessRange'/);
    expect(() => new ImageDataGenerator({ fillMode: 'mirror' as never })).toThrow(/fillMode/);
    expect(() => new ImageDataGenerator({ zoomRange: [0.5] as never })).toThrow(/zoomRange/);
  });

  it('turns zoomRange z into [1 - z, 1 + z]', () => {
    expect(new ImageDataGenerator({ zoomRange: 0.3 }).settings.zoomRange).toEqual([1 - 0.3, 1 + 0.3]);
    expect(new ImageDataGenerator({ zoomRange: [0.5, 2] }).settings.zoomRange).toEqual([0.5, 2]);
  });
});
