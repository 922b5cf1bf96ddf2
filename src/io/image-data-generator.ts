/**
 * Keras's ImageDataGenerator (keras-preprocessing 1.1.2 semantics) with flow_from_directory:
 *
 *   const gen = new ImageDataGenerator({ rescale: 1 / 255, rotationRange: 30, zoomRange: 0.3,
 *                                        widthShiftRange: 0.3, horizontalFlip: true });
 *   const train = await gen.flowFromDirectory('data/train', { targetSize: [240, 360], batchSize: 32, classMode: 'binary' });
 *   await model.fit(train, { epochs: 10 });
 *
 * Node reads folders (flowFromDirectory, decoding in worker threads); browsers take the File
 * objects of a picked folder (flowFromFiles) or URLs (flowFromUrls). This module has no
 * Node-only imports: the Node part is loaded on demand.
 */
import { randomTransform, applyTransform, standardize, type AugmentSettings, type FillMode, type TransformParams } from './augment.ts';
import { prepareFlow, resolveFlowOptions, type FlowOptions, type Listing } from './dataset.ts';
import type { DirectoryIterator } from './flow.ts';
import { InThreadLoader } from './in-thread-loader.ts';
import { NumpyRandom } from './numpy-random.ts';

export interface ImageDataGeneratorOptions {
  /** multiply every pixel by this after the transform (e.g. 1 / 255) */
  rescale?: number | null;
  /** degrees; theta ~ U(-r, r) */
  rotationRange?: number;
  /** fraction of the width (< 1), pixels (>= 1), or a list of pixel shifts to choose from */
  widthShiftRange?: number | number[];
  /** the same for the height */
  heightShiftRange?: number | number[];
  /** shear angle in degrees, counter-clockwise */
  shearRange?: number;
  /** z gives zoom factors in [1 - z, 1 + z]; or [lower, upper]; > 1 zooms out */
  zoomRange?: number | [number, number];
  horizontalFlip?: boolean;
  verticalFlip?: boolean;
  /** how points outside the input are filled; default 'nearest' */
  fillMode?: FillMode;
  /** the value for fillMode 'constant' */
  cval?: number;
  /** 1 = bilinear (Keras's default), 0 = nearest */
  interpolationOrder?: 0 | 1;
  /** default seed of this generator's flows (each flow's own `seed` wins) */
  seed?: number;
  /**
   * Keras's preprocessing_function: called on each image (height x width x 3 float32, 0..255 and
   * already transformed) before rescale, e.g. mobilenetV2.preprocessInput. It must return an
   * array of the same size.
   */
  preprocessingFunction?: ((x: Float32Array) => Float32Array) | null;
}

const KEYS: Record<keyof ImageDataGeneratorOptions, string> = {
  rescale: 'rescale', rotationRange: 'rotation_range', widthShiftRange: 'width_shift_range', heightShiftRange: 'height_shift_range',
  shearRange: 'shear_range', zoomRange: 'zoom_range', horizontalFlip: 'horizontal_flip', verticalFlip: 'vertical_flip',
  fillMode: 'fill_mode', cval: 'cval', interpolationOrder: 'interpolation_order', seed: 'seed', preprocessingFunction: 'preprocessing_function',
};

function finite(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`ImageDataGenerator: ${name} must be a finite number, got ${JSON.stringify(v)}`);
  return v;
}

function shiftRange(v: unknown, name: string): number | number[] {
  if (Array.isArray(v)) return v.map((x) => finite(x, name));
  return finite(v ?? 0, name);
}

function preprocessingFunction(f: unknown): ((x: Float32Array) => Float32Array) | null {
  if (f === undefined || f === null) return null;
  if (typeof f !== 'function') throw new Error(`ImageDataGenerator: preprocessingFunction must be a function of one image (Float32Array) returning one, got ${typeof f}`);
  return f as (x: Float32Array) => Float32Array;
}

/** Options -> the settings the augmentation code uses, checked, with Keras's defaults. */
export function resolveAugment(o: ImageDataGeneratorOptions): AugmentSettings {
  const snake = Object.fromEntries(Object.entries(KEYS).map(([k, v]) => [v, k]));
  for (const k of Object.keys(o)) {
    if (k in KEYS) continue;
    const hint = snake[k] ? ` (write it as ${snake[k]})` : '';
    throw new Error(`ImageDataGenerator: unsupported option '${k}'${hint}; supported: ${Object.keys(KEYS).join(', ')}`);
  }
  const z = o.zoomRange ?? 0;
  let zoomRange: [number, number];
  if (typeof z === 'number') zoomRange = [1 - finite(z, 'zoomRange'), 1 + z];
  else if (Array.isArray(z) && z.length === 2) zoomRange = [finite(z[0], 'zoomRange'), finite(z[1], 'zoomRange')];
  else throw new Error(`ImageDataGenerator: zoomRange must be a number or [lower, upper], got ${JSON.stringify(z)}`);
  const fillMode = o.fillMode ?? 'nearest';
  if (!['nearest', 'constant', 'reflect', 'wrap'].includes(fillMode)) throw new Error(`ImageDataGenerator: fillMode must be 'nearest', 'constant', 'reflect' or 'wrap', got ${JSON.stringify(fillMode)}`);
  const order = o.interpolationOrder ?? 1;
  if (order !== 0 && order !== 1) throw new Error(`ImageDataGenerator: interpolationOrder must be 0 or 1, got ${order}`);
  return {
    rotationRange: finite(o.rotationRange ?? 0, 'rotationRange'),
    widthShiftRange: shiftRange(o.widthShiftRange, 'widthShiftRange'),
    heightShiftRange: shiftRange(o.heightShiftRange, 'heightShiftRange'),
    shearRange: finite(o.shearRange ?? 0, 'shearRange'),
    zoomRange,
    horizontalFlip: !!o.horizontalFlip,
    verticalFlip: !!o.verticalFlip,
    fillMode,
    cval: finite(o.cval ?? 0, 'cval'),
    interpolationOrder: order,
    rescale: o.rescale ? finite(o.rescale, 'rescale') : null,
    preprocess: preprocessingFunction(o.preprocessingFunction),
  };
}

/** A file from a picked folder: its path relative to the pick (webkitRelativePath) says its class. */
type PickedFile = Blob & { name: string; webkitRelativePath?: string };

/** Class folders -> files or URLs, for sources without a folder structure of their own. */
export type ClassMap<T> = Record<string, T[]>;

export class ImageDataGenerator {
  readonly settings: AugmentSettings;
  readonly seed: number | null;
  /** the RNG of randomTransform() (flows have their own) */
  private readonly rng: NumpyRandom;

  constructor(options: ImageDataGeneratorOptions = {}) {
    this.settings = resolveAugment(options);
    const seed = options.seed ?? null;
    if (seed !== null && (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)) throw new Error(`ImageDataGenerator: seed must be an integer in [0, 2^32 - 1], got ${seed}`);
    this.seed = seed;
    this.rng = new NumpyRandom(seed ?? Math.floor(Math.random() * 2 ** 32));
  }

  /** get_random_transform for an image of this size; `seed` reseeds first, like Keras's. */
  randomTransform(height: number, width: number, seed?: number): TransformParams {
    if (seed !== undefined) this.rng.seed(seed);
    return randomTransform(this.rng, this.settings, height, width);
  }

  /** apply_transform on one HWC float32 image (affine pull map, then the flips). */
  applyTransform(x: Float32Array, height: number, width: number, channels: number, params: TransformParams): Float32Array {
    return applyTransform(x, height, width, channels, params, this.settings);
  }

  /** standardize: preprocessingFunction, then rescale (in place), as Keras. */
  standardize(x: Float32Array): Float32Array {
    const f = this.settings.preprocess;
    return standardize(f ? f(x) : x, this.settings.rescale);
  }

  /**
   * Node: images from `directory/<class>/**` (Keras's flow_from_directory). Prints
   * "Found N images belonging to K classes."; unreadable files are skipped with a warning.
   */
  async flowFromDirectory(directory: string, options: FlowOptions = {}): Promise<DirectoryIterator> {
    const what = `flowFromDirectory('${directory}')`;
    const resolved = resolveFlowOptions(options, what, this.seed);
    const isNode = typeof process !== 'undefined' && !!process.versions?.node;
    if (!isNode) throw new Error(`${what}: reading folders needs Node; in a browser use flowFromFiles (a picked folder) or flowFromUrls`);
    // Kept out of static analysis so browser bundles leave the Node-only module alone.
    const file = `./directory-node${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`;
    const mod = (await import(/* @vite-ignore */ new URL(file, import.meta.url).href)) as typeof import('./directory-node.ts');
    return mod.flowFromDirectoryNode(directory, resolved, this.settings, what);
  }

  /**
   * Browsers: the File objects of a picked folder (`<input type="file" webkitdirectory>`); each
   * file's class is the first folder below the picked one. Or a map { className: File[] }.
   */
  async flowFromFiles(files: Iterable<PickedFile> | ArrayLike<PickedFile> | ClassMap<PickedFile>, options: FlowOptions = {}): Promise<DirectoryIterator> {
    const what = 'flowFromFiles';
    const resolved = resolveFlowOptions(options, what, this.seed);
    const listing: Listing<PickedFile> = { root: 'the picked files', classDirs: [], files: [], outside: [] };
    const classes = new Set<string>();
    if (isClassMap(files)) {
      for (const [cls, list] of Object.entries(files)) {
        classes.add(cls);
        for (const f of list) listing.files.push({ cls, dir: '', name: f.name, source: f });
      }
    } else {
      for (const f of Array.from(files as ArrayLike<PickedFile>)) {
        const parts = (f.webkitRelativePath || f.name).split('/');
        // root/class/.../file: the picked folder itself is parts[0]
        if (parts.length < 3) {
          listing.outside.push(f.webkitRelativePath || f.name);
          continue;
        }
        classes.add(parts[1]);
        listing.files.push({ cls: parts[1], dir: parts.slice(2, -1).join('/'), name: parts[parts.length - 1], source: f });
      }
    }
    listing.classDirs = [...classes];
    return this.inThreadFlow(what, listing, resolved, async (f) => new Uint8Array(await f.arrayBuffer()));
  }

  /**
   * Browsers (or any fetch): images by URL. A map { className: urls } names the classes;
   * a plain list takes each URL's parent folder as its class (…/train/cats/1.jpg -> cats).
   * Every URL is fetched once up front to check it, and again when its batch is built.
   */
  async flowFromUrls(urls: string[] | ClassMap<string>, options: FlowOptions = {}): Promise<DirectoryIterator> {
    const what = 'flowFromUrls';
    const resolved = resolveFlowOptions(options, what, this.seed);
    const listing: Listing<string> = { root: 'the given URLs', classDirs: [], files: [], outside: [] };
    const classes = new Set<string>();
    const add = (cls: string, url: string) => {
      classes.add(cls);
      const name = decodeURIComponent(new URL(url, base()).pathname.split('/').pop() ?? url);
      listing.files.push({ cls, dir: '', name, source: url });
    };
    if (Array.isArray(urls)) {
      for (const u of urls) {
        const parts = new URL(u, base()).pathname.split('/').filter(Boolean);
        if (parts.length < 2) listing.outside.push(u);
        else add(decodeURIComponent(parts[parts.length - 2]), u);
      }
    } else {
      for (const [cls, list] of Object.entries(urls)) {
        classes.add(cls);
        for (const u of list) add(cls, u);
      }
    }
    listing.classDirs = [...classes];
    return this.inThreadFlow(what, listing, resolved, async (url) => {
      const res = await fetch(url);
      if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText} for ${url}`);
      return new Uint8Array(await res.arrayBuffer());
    });
  }

  private async inThreadFlow<S>(what: string, listing: Listing<S>, options: ReturnType<typeof resolveFlowOptions>, read: (s: S) => Promise<Uint8Array>): Promise<DirectoryIterator> {
    const { readPngBrowser } = await import('./png-browser.ts');
    return prepareFlow({
      what,
      listing,
      options,
      augment: this.settings,
      read,
      makeLoader: (sources, spec) => new InThreadLoader((i) => read(sources[i]), spec, readPngBrowser),
    });
  }
}

function isClassMap<T>(v: unknown): v is ClassMap<T> {
  return typeof v === 'object' && v !== null && !(Symbol.iterator in v) && !('length' in v);
}

/** Base for relative URLs: the page in a browser, a dummy origin elsewhere. */
function base(): string {
  const loc = (globalThis as { location?: { href: string } }).location;
  return loc?.href ?? 'http://localhost/';
}
