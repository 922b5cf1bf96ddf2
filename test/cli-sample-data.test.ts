import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { PRETRAIN_FAMILIES, SAMPLE_CLASSES, SAMPLE_GENERATOR_VERSION, SHAPE_FAMILIES, generateSampleSet, sampleImage } from '../src/io/sample-data.ts';

/** Share of edge strength in the two strongest of 8 orientation bins: high for straight outlines. */
function straightness(im: Uint8Array, h: number, w: number): number {
  const bins = new Float64Array(8);
  for (let y = 1; y < h - 1; y++) for (let x = 1; x < w - 1; x++) {
    const g = (yy: number, xx: number) => im[(yy * w + xx) * 3] + im[(yy * w + xx) * 3 + 1] + im[(yy * w + xx) * 3 + 2];
    const gx = g(y, x + 1) - g(y, x - 1);
    const gy = g(y + 1, x) - g(y - 1, x);
    const m = Math.hypot(gx, gy);
    if (m < 120) continue;
    const a = (Math.atan2(gy, gx) + Math.PI) % Math.PI; // orientation, 0..pi
    bins[Math.min(7, Math.floor((a / Math.PI) * 8))] += m;
  }
  const total = bins.reduce((s, v) => s + v, 0) || 1;
  const sorted = [...bins].sort((p, q) => q - p);
  return (sorted[0] + sorted[1]) / total;
}

const meanStraightness = (family: (typeof SHAPE_FAMILIES)[number] | number, n = 60) => {
  let s = 0;
  for (let i = 0; i < n; i++) s += straightness(sampleImage(family, 48, 48, 100 + i), 48, 48);
  return s / n;
};

describe('sample data (the demo\'s generated two-class set)', () => {
  it('is deterministic for a seed, balanced, and image i depends only on (seed, i)', () => {
    const a = generateSampleSet({ count: 6, height: 16, width: 20, seed: 3 });
    const b = generateSampleSet({ count: 9, height: 16, width: 20, seed: 3 });
    expect(a.map((s) => s.label)).toEqual([0, 1, 0, 1, 0, 1]);
    expect(a.map((s) => s.className)).toEqual(['circles', 'squares', 'circles', 'squares', 'circles', 'squares']);
    for (let i = 0; i < 6; i++) expect(b[i].rgb).toEqual(a[i].rgb);
    expect(a[0].rgb.length).toBe(16 * 20 * 3);
    const c = generateSampleSet({ count: 6, height: 16, width: 20, seed: 4 });
    expect(c[0].rgb).not.toEqual(a[0].rgb);
    expect(SAMPLE_CLASSES).toEqual(['circles', 'squares']);
  });

  it('does not give the class away by colour or brightness: class means overlap', () => {
    const set = generateSampleSet({ count: 200, height: 24, width: 24, seed: 1 });
    const mean = (label: number, ch: number) => {
      let s = 0;
      let n = 0;
      for (const im of set) if (im.label === label) for (let p = ch; p < im.rgb.length; p += 3) (s += im.rgb[p]), n++;
      return s / n;
    };
    for (let ch = 0; ch < 3; ch++) expect(Math.abs(mean(0, ch) - mean(1, ch))).toBeLessThan(15);
    // images vary: no two identical, and each uses a wide range of values
    const keys = new Set(set.map((s) => Buffer.from(s.rgb).toString('base64')));
    expect(keys.size).toBe(200);
  });

  it('draws the class\'s shape: squares\' edges concentrate on fewer orientations than circles\'', () => {
    // Squares have straight edges, so strong gradients fall into 2 orientation bins per image;
    // a disc's edge spreads over all of them.
    expect(meanStraightness(1)).toBeGreaterThan(meanStraightness(0) + 0.05);
  });

  it('rejects bad arguments with a message that names them', () => {
    expect(() => sampleImage(3, 16, 16, 0)).toThrow(/family must be one of circles, squares, triangles, crescents, crosses, stars \(or label 0 \(circles\), 1 \(squares\) or 2/);
    expect(() => sampleImage('ovals' as 'stars', 16, 16, 0)).toThrow(/got ovals/);
    expect(() => generateSampleSet({ count: 3, height: 16, width: 16, families: ['stars', 'blobs' as 'stars'] })).toThrow(/unknown family "blobs"/);
    expect(() => generateSampleSet({ count: 3, height: 16, width: 16, families: ['stars', 'stars'] })).toThrow(/at least two different/);
    expect(() => generateSampleSet({ count: 3, height: 16, width: 16, start: -2 })).toThrow(/start must be/);
    expect(() => generateSampleSet({ count: 3, height: 16, width: 16, classes: 4 as 3 })).toThrow(/classes must be 2 or 3/);
    expect(() => sampleImage(0, 4, 16, 0)).toThrow(/at least 8/);
    expect(() => generateSampleSet({ count: -1, height: 16, width: 16 })).toThrow(/count/);
  });
});

describe('three-class sample set', () => {
  it('cycles circles, squares, triangles and keeps the two-class images unchanged', () => {
    const three = generateSampleSet({ count: 6, height: 16, width: 16, seed: 2, classes: 3 });
    expect(three.map((s) => s.className)).toEqual(['circles', 'squares', 'triangles', 'circles', 'squares', 'triangles']);
    const two = generateSampleSet({ count: 2, height: 16, width: 16, seed: 2 });
    expect(three[0].rgb).toEqual(two[0].rgb); // same (seed, index, label) → same image
    expect(three[2].rgb).not.toEqual(three[0].rgb);
  });
});

describe('the pretraining families (the offline demo pretrains on them)', () => {
  it('are four other families, alphabetical, none of them a target class', () => {
    expect(PRETRAIN_FAMILIES).toEqual(['crescents', 'crosses', 'stars', 'triangles']);
    expect(PRETRAIN_FAMILIES.filter((f) => (SAMPLE_CLASSES as readonly string[]).includes(f))).toEqual([]);
    const set = generateSampleSet({ count: 8, height: 16, width: 16, seed: 4, families: PRETRAIN_FAMILIES });
    expect(set.map((s) => [s.label, s.className])).toEqual([0, 1, 2, 3, 0, 1, 2, 3].map((l) => [l, PRETRAIN_FAMILIES[l]]));
  });

  it('draws in parts: images start .. start+count-1 are those of the whole set', () => {
    const whole = generateSampleSet({ count: 10, height: 16, width: 16, seed: 8, families: PRETRAIN_FAMILIES });
    const part = generateSampleSet({ count: 4, start: 6, height: 16, width: 16, seed: 8, families: PRETRAIN_FAMILIES });
    expect(part.map((p) => p.rgb)).toEqual(whole.slice(6).map((p) => p.rgb));
    expect(part.map((p) => p.label)).toEqual([2, 3, 0, 1]);
  });

  it('draw their outlines: crosses are straighter than crescents, triangles than crescents', () => {
    const crescents = meanStraightness('crescents');
    expect(meanStraightness('crosses')).toBeGreaterThan(crescents + 0.05);
    expect(meanStraightness('triangles')).toBeGreaterThan(crescents + 0.03);
  });

  it('have not changed without a new SAMPLE_GENERATOR_VERSION (cached pretrained bases key on it)', () => {
    // If this fails because the drawing changed on purpose, bump SAMPLE_GENERATOR_VERSION and the hashes.
    const hash = (xs: Uint8Array[]) => createHash('sha256').update(Buffer.concat(xs)).digest('hex').slice(0, 16);
    expect(SAMPLE_GENERATOR_VERSION).toBe(2);
    expect(hash(generateSampleSet({ count: 8, height: 32, width: 32, seed: 1, families: SHAPE_FAMILIES }).map((s) => s.rgb))).toBe('b4980f891aae06cc');
    // the two- and three-class sets are those of version 1 (the demo's folders stay valid)
    expect(createHash('sha256').update(sampleImage(0, 24, 20, 5)).digest('hex').slice(0, 16)).toBe('b389c71685005b82');
    expect(createHash('sha256').update(sampleImage(2, 24, 20, 77)).digest('hex').slice(0, 16)).toBe('94423b5dbf92e6ce');
  });
});
