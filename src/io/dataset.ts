/**
 * From a list of files grouped in class folders to a DirectoryIterator, shared by
 * flowFromDirectory (Node), flowFromFiles and flowFromUrls (browsers): Keras's class and file
 * order, the structural check of every image (unreadable ones are skipped and reported, never
 * silently dropped), the messages, and the "Found N images belonging to K classes." line.
 */
import type { AugmentSettings } from './augment.ts';
import { DirectoryIterator, type ClassMode, type ImageLoader } from './flow.ts';
import { checkImage, ImageError, MAX_IMAGE_PIXELS } from './image-decode.ts';
import type { ImageSpec } from './pipeline.ts';
import type { Interpolation } from './resize.ts';

/** Keras's white_list_formats; files with other extensions are not considered images. */
export const IMAGE_EXTENSIONS = ['png', 'jpg', 'jpeg', 'bmp', 'ppm', 'tif', 'tiff'];

export function hasImageExtension(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((e) => lower.endsWith(`.${e}`));
}

/** Python's string order (by code point; JS's default compares UTF-16 units). */
export function compareCodePoints(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i].codePointAt(0)! - y[i].codePointAt(0)!;
  }
  return x.length - y.length;
}

export interface FlowOptions {
  /** [height, width] every image is resized to; default [256, 256] as in Keras */
  targetSize?: [number, number];
  /** default 32 */
  batchSize?: number;
  /** default 'categorical' as in Keras; the reference program uses 'binary' */
  classMode?: ClassMode;
  /** class folder names in index order; default: every subfolder, sorted */
  classes?: string[];
  /** a new permutation every epoch; default true */
  shuffle?: boolean;
  /** 32-bit seed: same batches and augmentation every run (and the same parameters as Keras) */
  seed?: number;
  /** resize filter when a file's size differs from targetSize; default 'nearest' as in Keras */
  interpolation?: Interpolation;
  /** batches prepared ahead of the consumer; default 3 */
  prefetch?: number;
  /** Node: worker threads for decoding (default: cores - 1, at most 4); 0 decodes in the main thread */
  workers?: number;
  /** Node: descend into symlinked folders (Keras's follow_links); default false */
  followLinks?: boolean;
  /**
   * images with more pixels are skipped up front, with the reason, and refused again when decoded
   * (decompression bombs); default Pillow's MAX_IMAGE_PIXELS, 178,956,970; null or Infinity: no limit
   */
  maxImagePixels?: number | null;
  /** where "Found N images ..." goes; default console.log */
  log?: (line: string) => void;
  /** where warnings (skipped files, empty classes) go; default console.warn */
  warn?: (line: string) => void;
}

const FLOW_KEYS = new Set(['targetSize', 'batchSize', 'classMode', 'classes', 'shuffle', 'seed', 'interpolation', 'prefetch', 'workers', 'followLinks', 'maxImagePixels', 'log', 'warn']);

export interface ResolvedFlowOptions {
  height: number;
  width: number;
  batchSize: number;
  classMode: ClassMode;
  classes: string[] | null;
  shuffle: boolean;
  seed: number | null;
  interpolation: Interpolation;
  prefetch: number;
  workers: number | null;
  followLinks: boolean;
  /** null: no limit */
  maxImagePixels: number | null;
  log: (line: string) => void;
  warn: (line: string) => void;
}

/** ImageSpec plus the pixel limit, which travels with it to the decoders (workers included). */
export type LimitedImageSpec = ImageSpec & { maxImagePixels: number | null };

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

export function resolveFlowOptions(o: FlowOptions, what: string, defaultSeed: number | null): ResolvedFlowOptions {
  for (const k of Object.keys(o)) {
    if (!FLOW_KEYS.has(k)) throw new Error(`${what}: unknown option '${k}' (options: ${[...FLOW_KEYS].join(', ')})`);
  }
  const [height, width] = o.targetSize ?? [256, 256];
  if (!isPositiveInt(height) || !isPositiveInt(width) || (o.targetSize && o.targetSize.length !== 2)) {
    throw new Error(`${what}: targetSize must be [height, width] in whole pixels, got ${JSON.stringify(o.targetSize)}`);
  }
  const batchSize = o.batchSize ?? 32;
  if (!isPositiveInt(batchSize)) throw new Error(`${what}: batchSize must be a positive integer, got ${batchSize}`);
  const classMode = o.classMode === undefined ? 'categorical' : o.classMode;
  if (![null, 'binary', 'categorical', 'sparse'].includes(classMode)) {
    throw new Error(`${what}: classMode must be 'binary', 'categorical', 'sparse' or null, got ${JSON.stringify(classMode)}`);
  }
  const interpolation = o.interpolation ?? 'nearest';
  if (interpolation !== 'nearest' && interpolation !== 'bilinear') throw new Error(`${what}: interpolation must be 'nearest' or 'bilinear', got ${JSON.stringify(interpolation)}`);
  const seed = o.seed ?? defaultSeed;
  if (seed !== null && (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)) throw new Error(`${what}: seed must be an integer in [0, 2^32 - 1], got ${seed}`);
  const prefetch = o.prefetch ?? 3;
  if (!Number.isInteger(prefetch) || prefetch < 0) throw new Error(`${what}: prefetch must be a whole number of batches, got ${prefetch}`);
  const workers = o.workers ?? null;
  if (workers !== null && (!Number.isInteger(workers) || workers < 0)) throw new Error(`${what}: workers must be a whole number, got ${workers}`);
  const limit = o.maxImagePixels === undefined ? MAX_IMAGE_PIXELS : o.maxImagePixels;
  if (limit !== null && limit !== Infinity && !isPositiveInt(limit)) throw new Error(`${what}: maxImagePixels must be a whole number of pixels above 0, or null (no limit), got ${limit}`);
  return {
    maxImagePixels: limit === Infinity ? null : limit,
    height, width, batchSize, classMode, interpolation, seed, prefetch, workers,
    classes: o.classes ?? null,
    shuffle: o.shuffle ?? true,
    followLinks: o.followLinks ?? false,
    log: o.log ?? ((l) => console.log(l)),
    warn: o.warn ?? ((l) => console.warn(l)),
  };
}

/** One candidate image: its class folder, its folder inside the class (posix, '' at the top), its name. */
export interface SourceFile<S> {
  cls: string;
  dir: string;
  name: string;
  source: S;
}

export interface Listing<S> {
  /** where the images come from, for messages (a folder, "the picked files", ...) */
  root: string;
  /** class folders found (any order; sorted here unless options.classes gives the order) */
  classDirs: string[];
  /** every file under the class folders, image extension or not */
  files: SourceFile<S>[];
  /** files lying directly in the root, outside any class folder (ignored, as Keras does) */
  outside: string[];
}

export interface PrepareArgs<S> {
  what: string;
  listing: Listing<S>;
  options: ResolvedFlowOptions;
  augment: AugmentSettings;
  read(source: S): Promise<Uint8Array>;
  makeLoader(sources: S[], spec: LimitedImageSpec): ImageLoader;
}

function rel(f: { cls: string; dir: string; name: string }): string {
  return [f.cls, f.dir, f.name].filter(Boolean).join('/');
}

function examples(names: string[], n = 3): string {
  const shown = names.slice(0, n).map((s) => `'${s}'`).join(', ');
  return names.length > n ? `${shown}, ...` : shown;
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const run = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return out;
}

export async function prepareFlow<S>(a: PrepareArgs<S>): Promise<DirectoryIterator> {
  const { what, listing, options: o } = a;
  const present = new Set(listing.classDirs);
  let classNames: string[];
  if (o.classes) {
    const missing = o.classes.filter((c) => !present.has(c));
    if (missing.length) throw new Error(`${what}: class folder${missing.length > 1 ? 's' : ''} ${examples(missing, 10)} not found in ${listing.root} (it has: ${[...present].sort(compareCodePoints).join(', ') || 'no subfolders'})`);
    classNames = [...o.classes];
  } else {
    classNames = [...present].sort(compareCodePoints);
  }
  if (!classNames.length) {
    throw new Error(`${what}: no class subfolders in ${listing.root}; put each class's images in a folder of its own (e.g. cats/, dogs/)${listing.outside.length ? `; the ${listing.outside.length} files directly inside are not used` : ''}`);
  }
  if (o.classMode === 'binary' && classNames.length !== 2) {
    throw new Error(`${what}: classMode 'binary' needs exactly 2 class folders, found ${classNames.length} in ${listing.root}: ${classNames.join(', ')}`);
  }
  const classIndices: Record<string, number> = {};
  classNames.forEach((c, i) => (classIndices[c] = i));

  // Keras's order: classes in index order; inside a class, folders sorted by path, files by name.
  const wanted = listing.files.filter((f) => f.cls in classIndices);
  const notImages = wanted.filter((f) => !hasImageExtension(f.name)).map(rel);
  const candidates = wanted.filter((f) => hasImageExtension(f.name)).sort((x, y) =>
    classIndices[x.cls] - classIndices[y.cls] || compareCodePoints(x.dir, y.dir) || compareCodePoints(x.name, y.name));

  // Every file is checked before training: truncated files and non-images are skipped here, with a word.
  const checks = await mapLimit(candidates, 8, async (f) => {
    try {
      checkImage(await a.read(f.source), o.maxImagePixels);
      return null;
    } catch (e) {
      return e instanceof ImageError ? e.reason : `cannot read it: ${(e as Error).message}`;
    }
  });
  const skipped: { file: string; reason: string }[] = [];
  const kept: SourceFile<S>[] = [];
  candidates.forEach((f, i) => (checks[i] === null ? kept.push(f) : skipped.push({ file: rel(f), reason: checks[i]! })));

  if (skipped.length) {
    const lines = skipped.slice(0, 20).map((s) => `  ${s.file}: ${s.reason}`);
    if (skipped.length > 20) lines.push(`  ... and ${skipped.length - 20} more`);
    o.warn(`${what}: skipped ${skipped.length} of ${candidates.length} image files that cannot be used:\n${lines.join('\n')}`);
  }
  if (notImages.length) o.warn(`${what}: ignored ${notImages.length} file${notImages.length > 1 ? 's' : ''} without an image extension (${IMAGE_EXTENSIONS.join(', ')}): ${examples(notImages)}`);
  if (listing.outside.length) o.warn(`${what}: ignored ${listing.outside.length} file${listing.outside.length > 1 ? 's' : ''} directly in ${listing.root}, outside the class folders: ${examples(listing.outside)}`);
  const counts = classNames.map((c) => kept.filter((f) => f.cls === c).length);
  const empty = classNames.filter((_, i) => counts[i] === 0);
  if (kept.length && empty.length) {
    o.warn(`${what}: class folder${empty.length > 1 ? 's' : ''} ${empty.map((c) => `'${c}' (index ${classIndices[c]})`).join(', ')} in ${listing.root} ${empty.length > 1 ? 'have' : 'has'} no usable images`);
  }
  o.log(`Found ${kept.length} images belonging to ${classNames.length} classes.`);
  if (!kept.length) throw new Error(`${what}: no usable images in ${listing.root} (class folders: ${classNames.join(', ')}; extensions: ${IMAGE_EXTENSIONS.join(', ')})`);

  const spec: LimitedImageSpec = {
    maxImagePixels: o.maxImagePixels,
    height: o.height,
    width: o.width,
    interpolation: o.interpolation,
    // a preprocessingFunction cannot travel to a worker: rescale then follows it on the main thread (flow.ts)
    augment: { fillMode: a.augment.fillMode, cval: a.augment.cval, interpolationOrder: a.augment.interpolationOrder, rescale: a.augment.preprocess ? null : a.augment.rescale },
  };
  return new DirectoryIterator({
    filenames: kept.map(rel),
    labels: kept.map((f) => classIndices[f.cls]),
    classIndices,
    height: o.height,
    width: o.width,
    batchSize: o.batchSize,
    classMode: o.classMode,
    shuffle: o.shuffle,
    seed: o.seed,
    prefetch: o.prefetch,
    augment: a.augment,
    loader: a.makeLoader(kept.map((f) => f.source), spec),
    what,
    skipped,
  });
}
