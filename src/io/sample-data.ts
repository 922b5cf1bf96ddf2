/**
 * A built-in two-class image set, generated on the fly (pure TypeScript: no Node, no DOM), so the
 * demo trains on something real on any machine and the browser page can offer the same set.
 *
 * The classes differ the way photo classes do, by shape and texture rather than by a pixel or a
 * colour: 'circles' show round objects (discs and rings, smooth or spotted), 'squares' show
 * rotated squares (solid or striped). Colours, sizes, positions, counts, backgrounds (gradients
 * with faint distracting lines) and pixel noise are random and shared by both classes, so no
 * single pixel, colour or brightness gives the class away. Edges are antialiased (4x4
 * supersampling), as a camera would blur them.
 *
 * API:
 *   SAMPLE_CLASSES                        ['circles', 'squares'] (label 0, label 1; alphabetical,
 *                                         which is also flow_from_directory's class order)
 *   sampleImage(label, height, width, seed) -> Uint8Array   one image, RGB, row-major HWC
 *   generateSampleSet({ count, height, width, seed }) -> SampleImage[]
 *                                         `count` images, labels alternating 0, 1, 0, ... (balanced);
 *                                         image i depends only on (seed, i), so a larger count
 *                                         extends a smaller set with the same first images.
 * Everything is deterministic for a seed (its own PRNG, not Math.random).
 */

export const SAMPLE_CLASSES = ['circles', 'squares'] as const;
/** With `classes: 3`, a third class: rotated triangles, solid or checked. */
export const SAMPLE_CLASSES_3 = ['circles', 'squares', 'triangles'] as const;
export type SampleClass = (typeof SAMPLE_CLASSES_3)[number];

export interface SampleImage {
  /** RGB bytes, row-major, height x width x 3 */
  rgb: Uint8Array;
  height: number;
  width: number;
  /** 0 = circles, 1 = squares */
  label: number;
  className: SampleClass;
}

export interface SampleSetOptions {
  count: number;
  height: number;
  width: number;
  seed?: number;
  /** 2 (circles, squares; the default) or 3 (adds triangles) */
  classes?: 2 | 3;
}

/** mulberry32: a small, good-enough 32-bit PRNG with a reproducible stream. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mixes (seed, index) into one 32-bit seed so image i does not depend on the images before it. */
function mix(seed: number, index: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return h >>> 0;
}

type Rgb = [number, number, number];

/** A random colour with a random hue and enough saturation/value to be seen. */
function randomColour(r: () => number): Rgb {
  const h = r() * 6;
  const s = 0.35 + 0.65 * r();
  const v = 0.3 + 0.7 * r();
  const i = Math.floor(h);
  const f = h - i;
  const p = v * (1 - s);
  const q = v * (1 - s * f);
  const t = v * (1 - s * (1 - f));
  const rgb: Rgb[] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]];
  return rgb[i % 6].map((c) => c * 255) as Rgb;
}

/** A colour far enough from `bg` (Euclidean, in 0..255 RGB) that the object stands out. */
function contrastingColour(r: () => number, bg: Rgb): Rgb {
  let best = randomColour(r);
  let bestD = 0;
  for (let k = 0; k < 8; k++) {
    const c = k === 0 ? best : randomColour(r);
    const d = Math.hypot(c[0] - bg[0], c[1] - bg[1], c[2] - bg[2]);
    if (d > bestD) [best, bestD] = [c, d];
    if (d > 120) break;
  }
  return best;
}

/**
 * One object: `inside(x, y)` says whether a point (in pixels) is covered, `fill(x, y)` its colour
 * there (textures are functions of position).
 */
interface Shape {
  inside(x: number, y: number): boolean;
  fill(x: number, y: number): Rgb;
}

function makeShape(label: number, r: () => number, height: number, width: number, bg: Rgb): Shape {
  const m = Math.min(height, width);
  const size = m * (0.22 + 0.2 * r()); // radius, or half the side
  // Centre: the object may overhang an edge a little, as objects in photos do.
  const cx = size * 0.6 + r() * (width - 1.2 * size);
  const cy = size * 0.6 + r() * (height - 1.2 * size);
  const c1 = contrastingColour(r, bg);
  const c2 = contrastingColour(r, c1);
  const textured = r() < 0.5;
  const period = Math.max(2.5, size * (0.35 + 0.3 * r()));
  if (label === 0) {
    const ring = r() < 0.35;
    const inner = size * (0.45 + 0.2 * r());
    return {
      inside(x, y) {
        const d = Math.hypot(x - cx, y - cy);
        return d <= size && (!ring || d >= inner);
      },
      // spots: a lattice of small discs
      fill(x, y) {
        if (!textured) return c1;
        const u = ((x - cx) / period) - Math.round((x - cx) / period);
        const v = ((y - cy) / period) - Math.round((y - cy) / period);
        return u * u + v * v < 0.09 ? c2 : c1;
      },
    };
  }
  if (label === 2) {
    // an equilateral triangle, rotated; checked texture
    const turn = r() * 2 * Math.PI;
    const rt = size * 1.2; // circumradius: area close to the other classes' objects
    const corners = [0, 1, 2].map((k) => [cx + rt * Math.cos(turn + (k * 2 * Math.PI) / 3), cy + rt * Math.sin(turn + (k * 2 * Math.PI) / 3)]);
    const side = (x: number, y: number, a: number[], b: number[]) => (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]);
    return {
      inside(x, y) {
        const d0 = side(x, y, corners[0], corners[1]);
        const d1 = side(x, y, corners[1], corners[2]);
        const d2 = side(x, y, corners[2], corners[0]);
        return (d0 >= 0 && d1 >= 0 && d2 >= 0) || (d0 <= 0 && d1 <= 0 && d2 <= 0);
      },
      fill(x, y) {
        if (!textured) return c1;
        return (Math.floor((x - cx) / period) + Math.floor((y - cy) / period)) % 2 === 0 ? c2 : c1;
      },
    };
  }
  const angle = r() * Math.PI / 2;
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const stripeAngle = r() * Math.PI;
  const sc = Math.cos(stripeAngle);
  const ss = Math.sin(stripeAngle);
  const s = size * 0.9; // equal area to a disc would be 0.886 r; keeps the two classes' sizes alike
  return {
    inside(x, y) {
      const u = (x - cx) * cos + (y - cy) * sin;
      const v = -(x - cx) * sin + (y - cy) * cos;
      return Math.abs(u) <= s && Math.abs(v) <= s;
    },
    // stripes: bands across the square at a random angle
    fill(x, y) {
      if (!textured) return c1;
      const t = ((x - cx) * sc + (y - cy) * ss) / period;
      return t - Math.floor(t) < 0.45 ? c2 : c1;
    },
  };
}

/**
 * One generated image of class `label` (0 circles, 1 squares), RGB bytes row-major HWC.
 * Deterministic for (label, height, width, seed).
 */
export function sampleImage(label: number, height: number, width: number, seed: number): Uint8Array {
  if (label !== 0 && label !== 1 && label !== 2) throw new Error(`sampleImage: label must be 0 (circles), 1 (squares) or 2 (triangles), got ${label}`);
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 8 || width < 8) {
    throw new Error(`sampleImage: height and width must be integers of at least 8, got ${height}x${width}`);
  }
  const r = prng(seed);
  // Background: a linear gradient between two random colours plus faint lines (both classes).
  const b0 = randomColour(r);
  const b1 = randomColour(r);
  const ga = r() * 2 * Math.PI;
  const gx = Math.cos(ga) / width;
  const gy = Math.sin(ga) / height;
  const lineAngle = r() * Math.PI;
  const lx = Math.cos(lineAngle);
  const ly = Math.sin(lineAngle);
  const linePeriod = 3 + r() * Math.min(height, width) * 0.4;
  const lineStrength = r() < 0.5 ? 0 : 12 + 25 * r();
  const mid: Rgb = [(b0[0] + b1[0]) / 2, (b0[1] + b1[1]) / 2, (b0[2] + b1[2]) / 2];
  const count = 1 + Math.floor(r() * 2.2); // 1..3 objects, mostly 1 or 2
  const shapes: Shape[] = [];
  for (let k = 0; k < count; k++) shapes.push(makeShape(label, r, height, width, mid));
  const noise = 4 + 14 * r();

  const out = new Uint8Array(height * width * 3);
  const SS = 4; // supersampling per axis: antialiased edges
  const acc = [0, 0, 0];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      acc[0] = acc[1] = acc[2] = 0;
      for (let sy = 0; sy < SS; sy++) {
        for (let sx = 0; sx < SS; sx++) {
          const px = x + (sx + 0.5) / SS;
          const py = y + (sy + 0.5) / SS;
          let c: Rgb | null = null;
          // later objects are drawn over earlier ones
          for (let k = shapes.length - 1; k >= 0 && !c; k--) if (shapes[k].inside(px, py)) c = shapes[k].fill(px, py);
          if (c) {
            acc[0] += c[0];
            acc[1] += c[1];
            acc[2] += c[2];
          } else {
            const t = Math.min(1, Math.max(0, 0.5 + (px - width / 2) * gx + (py - height / 2) * gy));
            const lt = (px * lx + py * ly) / linePeriod;
            const line = lt - Math.floor(lt) < 0.2 ? lineStrength : 0;
            for (let ch = 0; ch < 3; ch++) acc[ch] += b0[ch] + (b1[ch] - b0[ch]) * t + line;
          }
        }
      }
      const o = (y * width + x) * 3;
      for (let ch = 0; ch < 3; ch++) {
        // sum of 4 uniforms: a cheap, roughly Gaussian sensor noise
        const n = (r() + r() + r() + r() - 2) * noise;
        out[o + ch] = Math.max(0, Math.min(255, Math.round(acc[ch] / (SS * SS) + n)));
      }
    }
  }
  return out;
}

/**
 * `count` generated images, labels cycling 0, 1, (2,) 0, ... Image i is sampleImage(i % classes,
 * height, width, mix(seed, i)).
 */
export function generateSampleSet(options: SampleSetOptions): SampleImage[] {
  const { count, height, width } = options;
  const seed = options.seed ?? 0;
  if (!Number.isInteger(count) || count < 0) throw new Error(`generateSampleSet: count must be a non-negative integer, got ${count}`);
  const classes = options.classes ?? 2;
  if (classes !== 2 && classes !== 3) throw new Error(`generateSampleSet: classes must be 2 or 3, got ${classes}`);
  const out: SampleImage[] = [];
  for (let i = 0; i < count; i++) {
    const label = i % classes;
    out.push({ rgb: sampleImage(label, height, width, mix(seed, i)), height, width, label, className: SAMPLE_CLASSES_3[label] });
  }
  return out;
}
