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
 * Other shape families (triangles, crescents, crosses, stars) are drawn by the same code on the
 * same backgrounds with the same textures and noise: the offline demo pretrains a base on four of
 * them and then fine-tunes it on circles vs squares, so what carries over is features, not labels.
 *
 * API:
 *   SAMPLE_CLASSES                        ['circles', 'squares'] (label 0, label 1; alphabetical,
 *                                         which is also flow_from_directory's class order)
 *   PRETRAIN_FAMILIES                     the four families the demo pretrains on (neither target class)
 *   sampleImage(family, height, width, seed) -> Uint8Array   one image, RGB, row-major HWC
 *                                         (family: a name, or 0 circles, 1 squares, 2 triangles)
 *   generateSampleSet({ count, height, width, seed, families }) -> SampleImage[]
 *                                         `count` images, labels cycling 0, 1, 0, ... (balanced);
 *                                         image i depends only on (seed, i), so a larger count
 *                                         extends a smaller set with the same first images.
 * Everything is deterministic for a seed (its own PRNG, not Math.random). SAMPLE_GENERATOR_VERSION
 * changes whenever any image would; caches of things learned from the images key on it.
 */

export const SAMPLE_CLASSES = ['circles', 'squares'] as const;
/** With `classes: 3`, a third class: rotated triangles, solid or checked. */
export const SAMPLE_CLASSES_3 = ['circles', 'squares', 'triangles'] as const;
/** Every family the generator draws; the first three keep their old labels 0, 1, 2. */
export const SHAPE_FAMILIES = ['circles', 'squares', 'triangles', 'crescents', 'crosses', 'stars'] as const;
export type ShapeFamily = (typeof SHAPE_FAMILIES)[number];
/** @deprecated the name of a family; kept for callers of the two- and three-class sets */
export type SampleClass = ShapeFamily;
/** What the offline demo pretrains on: alphabetical (flow_from_directory's order), no target class. */
export const PRETRAIN_FAMILIES = ['crescents', 'crosses', 'stars', 'triangles'] as const satisfies readonly ShapeFamily[];
/** Bumped whenever the images for a given (family, size, seed) change. */
export const SAMPLE_GENERATOR_VERSION = 2;

export interface SampleImage {
  /** RGB bytes, row-major, height x width x 3 */
  rgb: Uint8Array;
  height: number;
  width: number;
  /** index into the set's families (0 = circles, 1 = squares for the default set) */
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
  /** the families, in label order (overrides `classes`); names from SHAPE_FAMILIES, no repeats */
  families?: readonly ShapeFamily[];
  /** the first image's number: a set can be drawn in parts (images start .. start + count - 1) */
  start?: number;
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

/** Spots, stripes or checks of two colours, as a function of position (for the newer families). */
function texture(kind: number, c1: Rgb, c2: Rgb, cx: number, cy: number, period: number, angle: number): (x: number, y: number) => Rgb {
  const ca = Math.cos(angle);
  const sa = Math.sin(angle);
  if (kind === 0) return () => c1;
  if (kind === 1) {
    return (x, y) => {
      const u = (x - cx) / period - Math.round((x - cx) / period);
      const v = (y - cy) / period - Math.round((y - cy) / period);
      return u * u + v * v < 0.09 ? c2 : c1;
    };
  }
  if (kind === 2) {
    return (x, y) => {
      const t = ((x - cx) * ca + (y - cy) * sa) / period;
      return t - Math.floor(t) < 0.45 ? c2 : c1;
    };
  }
  return (x, y) => ((Math.floor((x - cx) / period) + Math.floor((y - cy) / period)) & 1) === 0 ? c2 : c1;
}

/** Even-odd ray casting: whether (x, y) lies inside the polygon with corners `p` (x0, y0, x1, y1, ...). */
function insidePolygon(p: number[], x: number, y: number): boolean {
  let inside = false;
  for (let i = 0, j = p.length - 2; i < p.length; j = i, i += 2) {
    const [xi, yi, xj, yj] = [p[i], p[i + 1], p[j], p[j + 1]];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Crescents (spots), crosses (stripes) and stars (checks): curved outlines, right angles, sharp points. */
function makeNewerShape(family: 'crescents' | 'crosses' | 'stars', r: () => number, cx: number, cy: number, size: number, c1: Rgb, c2: Rgb, period: number): Shape {
  // Each family has its own texture (half the objects are plain), as circles (spots), squares
  // (stripes) and triangles (checks) do.
  const kind = { crescents: 1, crosses: 2, stars: 3 }[family];
  const fill = texture(r() < 0.5 ? 0 : kind, c1, c2, cx, cy, period, r() * Math.PI);
  const turn = r() * 2 * Math.PI;
  if (family === 'crescents') {
    // a disc with an offset disc cut out of it
    const cut = size * (0.75 + 0.15 * r());
    const off = size * (0.45 + 0.2 * r());
    const ox = cx + off * Math.cos(turn);
    const oy = cy + off * Math.sin(turn);
    return { inside: (x, y) => Math.hypot(x - cx, y - cy) <= size && Math.hypot(x - ox, y - oy) > cut, fill };
  }
  if (family === 'crosses') {
    // a plus sign: two bars of half-length `size` and half-width `arm`, rotated
    const arm = size * (0.28 + 0.1 * r());
    const cos = Math.cos(turn);
    const sin = Math.sin(turn);
    return {
      inside(x, y) {
        const u = Math.abs((x - cx) * cos + (y - cy) * sin);
        const v = Math.abs(-(x - cx) * sin + (y - cy) * cos);
        return (u <= size && v <= arm) || (v <= size && u <= arm);
      },
      fill,
    };
  }
  // a five-pointed star: ten corners alternating outer and inner radius
  const outer = size * 1.15;
  const inner = outer * (0.38 + 0.1 * r());
  const corners: number[] = [];
  for (let k = 0; k < 10; k++) {
    const a = turn + (k * Math.PI) / 5;
    const rad = k % 2 === 0 ? outer : inner;
    corners.push(cx + rad * Math.cos(a), cy + rad * Math.sin(a));
  }
  return { inside: (x, y) => insidePolygon(corners, x, y), fill };
}

function makeShape(family: ShapeFamily, r: () => number, height: number, width: number, bg: Rgb): Shape {
  const m = Math.min(height, width);
  const size = m * (0.22 + 0.2 * r()); // radius, or half the side
  // Centre: the object may overhang an edge a little, as objects in photos do.
  const cx = size * 0.6 + r() * (width - 1.2 * size);
  const cy = size * 0.6 + r() * (height - 1.2 * size);
  const c1 = contrastingColour(r, bg);
  const c2 = contrastingColour(r, c1);
  const textured = r() < 0.5;
  const period = Math.max(2.5, size * (0.35 + 0.3 * r()));
  if (family === 'crescents' || family === 'crosses' || family === 'stars') return makeNewerShape(family, r, cx, cy, size, c1, c2, period);
  if (family === 'circles') {
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
  if (family === 'triangles') {
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
 * One generated image of a family (a name, or 0 circles, 1 squares, 2 triangles), RGB bytes
 * row-major HWC. Deterministic for (family, height, width, seed).
 */
export function sampleImage(family: number | ShapeFamily, height: number, width: number, seed: number): Uint8Array {
  const name = typeof family === 'number' ? SAMPLE_CLASSES_3[family] : SHAPE_FAMILIES.includes(family) ? family : undefined;
  if (name === undefined) {
    throw new Error(`sampleImage: the family must be one of ${SHAPE_FAMILIES.join(', ')} (or label 0 (circles), 1 (squares) or 2 (triangles)), got ${String(family)}`);
  }
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
  for (let k = 0; k < count; k++) shapes.push(makeShape(name, r, height, width, mid));
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

/** The families of a set, in label order: `families`, else the two or three classes. */
export function sampleFamilies(options: Pick<SampleSetOptions, 'classes' | 'families'>): readonly ShapeFamily[] {
  if (options.families !== undefined) {
    const f = options.families;
    const bad = f.find((n) => !SHAPE_FAMILIES.includes(n));
    if (bad !== undefined) throw new Error(`generateSampleSet: unknown family "${bad}"; the families are ${SHAPE_FAMILIES.join(', ')}`);
    if (f.length < 2 || new Set(f).size !== f.length) throw new Error(`generateSampleSet: families must be at least two different names, got [${f.join(', ')}]`);
    return f;
  }
  const classes = options.classes ?? 2;
  if (classes !== 2 && classes !== 3) throw new Error(`generateSampleSet: classes must be 2 or 3, got ${classes}`);
  return classes === 3 ? SAMPLE_CLASSES_3 : SAMPLE_CLASSES;
}

/**
 * `count` generated images, labels cycling 0, 1, (2, ...) 0, ... Image i is
 * sampleImage(families[i % n], height, width, mix(seed, i)).
 */
export function generateSampleSet(options: SampleSetOptions): SampleImage[] {
  const { count, height, width } = options;
  const seed = options.seed ?? 0;
  if (!Number.isInteger(count) || count < 0) throw new Error(`generateSampleSet: count must be a non-negative integer, got ${count}`);
  const families = sampleFamilies(options);
  const start = options.start ?? 0;
  if (!Number.isInteger(start) || start < 0) throw new Error(`generateSampleSet: start must be a non-negative integer, got ${start}`);
  const out: SampleImage[] = [];
  for (let i = start; i < start + count; i++) {
    const label = i % families.length;
    out.push({ rgb: sampleImage(families[label], height, width, mix(seed, i)), height, width, label, className: families[label] });
  }
  return out;
}
