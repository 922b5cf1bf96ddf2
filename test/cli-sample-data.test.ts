import { describe, expect, it } from 'vitest';
import { SAMPLE_CLASSES, generateSampleSet, sampleImage } from '../src/io/sample-data.ts';

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
    const straightness = (im: Uint8Array, h: number, w: number) => {
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
      return (sorted[0] + sorted[1]) / total; // share of the two strongest orientations
    };
    let circles = 0;
    let squares = 0;
    const n = 60;
    for (let i = 0; i < n; i++) {
      circles += straightness(sampleImage(0, 48, 48, 100 + i), 48, 48);
      squares += straightness(sampleImage(1, 48, 48, 100 + i), 48, 48);
    }
    expect(squares / n).toBeGreaterThan(circles / n + 0.05);
  });

  it('rejects bad arguments with a message that names them', () => {
    expect(() => sampleImage(3, 16, 16, 0)).toThrow(/label must be 0 \(circles\), 1 \(squares\) or 2/);
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
