/**
 * Node: Fashion-MNIST (Zalando's 28x28 grayscale photos of clothes, 10 classes) from its IDX files,
 * gzipped or not, as Debian's dataset-fashion-mnist installs them (scripts/install-fashion-mnist.sh),
 * written out as Keras-style image folders, <dir>/train/<class>/*.png and <dir>/test/<class>/*.png,
 * so a test can fine-tune on real photos through flowFromDirectory like any user's folders.
 *
 * IDX (LeCun's format): a big-endian header, magic 0x0000 0x08 <ndim>, then one uint32 per
 * dimension, then the unsigned bytes. Images are idx3 (count x rows x cols), labels idx1.
 */
import { access, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { resizeBilinear } from './resize.ts';

/** Where Debian's dataset-fashion-mnist puts the files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Label i's name (Fashion-MNIST's, made folder-safe: "T-shirt/top" -> t-shirt_top). */
export const FASHION_MNIST_CLASSES = ['t-shirt_top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle_boot'] as const;
export type FashionMnistClass = (typeof FASHION_MNIST_CLASSES)[number];

const INSTALL_HINT = 'run scripts/install-fashion-mnist.sh (as root: it installs Debian\'s dataset-fashion-mnist)';

const FILES = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' },
} as const;

export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  /** count x rows x cols bytes, 0 = background */
  pixels: Uint8Array;
}

export interface FashionMnistSplit {
  images: IdxImages;
  /** one label (0..9) per image */
  labels: Uint8Array;
}

/** The header's dimensions after checking the magic number (0x0000 0x08 <ndim>) and the size. */
function idxDims(bytes: Uint8Array, file: string, ndim: number): number[] {
  const what = ndim === 3 ? 'an IDX image file (idx3-ubyte)' : 'an IDX label file (idx1-ubyte)';
  const head = 4 + 4 * ndim;
  const short = () => new Error(`${file}: ${bytes.length} bytes, too short for ${what} (its header alone is ${head} bytes)`);
  if (bytes.length < 4) throw short();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const want = 0x0800 + ndim;
  if (magic !== want) throw new Error(`${file}: magic number 0x${magic.toString(16).padStart(8, '0')}, expected 0x${want.toString(16).padStart(8, '0')} for ${what}`);
  if (bytes.length < head) throw short();
  const dims = Array.from({ length: ndim }, (_, i) => view.getUint32(4 + 4 * i));
  const body = dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== head + body) {
    throw new Error(`${file}: ${bytes.length} bytes, but its header (${dims.join(' x ')}) implies ${head + body}; the file is truncated or not ${what}`);
  }
  return dims;
}

/** An idx3-ubyte image file's bytes (already gunzipped); `file` names it in errors. */
export function parseIdxImages(bytes: Uint8Array, file: string): IdxImages {
  const [count, rows, cols] = idxDims(bytes, file, 3);
  return { count, rows, cols, pixels: bytes.subarray(16) };
}

/** An idx1-ubyte label file's bytes (already gunzipped); every label must be a class (0..9). */
export function parseIdxLabels(bytes: Uint8Array, file: string): Uint8Array {
  idxDims(bytes, file, 1);
  const labels = bytes.subarray(8);
  const bad = labels.findIndex((l) => l >= FASHION_MNIST_CLASSES.length);
  if (bad >= 0) throw new Error(`${file}: label ${bad} is ${labels[bad]}, Fashion-MNIST's labels are 0..${FASHION_MNIST_CLASSES.length - 1}`);
  return labels;
}

/** A file's bytes, gunzipped when they start with gzip's magic (1f 8b). */
export async function readMaybeGzip(path: string): Promise<Uint8Array> {
  const raw = new Uint8Array(await readFile(path));
  if (raw[0] !== 0x1f || raw[1] !== 0x8b) return raw;
  try {
    return new Uint8Array(gunzipSync(raw));
  } catch (e) {
    throw new Error(`${path}: not a valid gzip file (${(e as Error).message}); reinstall the data: ${INSTALL_HINT}`);
  }
}

/** `name.gz` or `name` in `dir`, whichever exists; the error lists both and says how to get them. */
async function locate(dir: string, name: string): Promise<string> {
  for (const p of [join(dir, `${name}.gz`), join(dir, name)]) {
    if (await access(p).then(() => true, () => false)) return p;
  }
  throw new Error(`Fashion-MNIST: neither ${join(dir, name)}.gz nor ${join(dir, name)} exists; ${INSTALL_HINT}`);
}

/** One split's images and labels from `dir` (default FASHION_MNIST_DIR), checked against each other. */
export async function readFashionMnist(split: 'train' | 'test', dir: string = FASHION_MNIST_DIR): Promise<FashionMnistSplit> {
  const names = FILES[split];
  if (!names) throw new Error(`readFashionMnist: split must be 'train' or 'test', got ${JSON.stringify(split)}`);
  const imagesPath = await locate(dir, names.images);
  const labelsPath = await locate(dir, names.labels);
  const images = parseIdxImages(await readMaybeGzip(imagesPath), imagesPath);
  const labels = parseIdxLabels(await readMaybeGzip(labelsPath), labelsPath);
  if (images.count !== labels.length) throw new Error(`Fashion-MNIST ${split}: ${imagesPath} has ${images.count} images but ${labelsPath} has ${labels.length} labels`);
  return { images, labels };
}

export interface FashionMnistFolderOptions {
  /** the classes to write, one folder each (at least one, no repeats) */
  classes: readonly FashionMnistClass[];
  /** training images per class: the first ones of that class in the training file */
  train: number;
  /** test images per class, from the test (t10k) file */
  test: number;
  /** side of the written images in pixels (bilinear resize, as Pillow); default 28, the original */
  size?: number;
  /** where the IDX files are; default FASHION_MNIST_DIR */
  from?: string;
}

/** A 28x28 gray image as RGB PNG bytes (gray copied to R, G and B). */
function grayPng(gray: Uint8Array, side: number): Uint8Array {
  const rgba = Buffer.alloc(side * side * 4);
  for (let i = 0; i < gray.length; i++) rgba.fill(gray[i], i * 4, i * 4 + 3), (rgba[i * 4 + 3] = 255);
  const png = new PNG({ width: side, height: side, colorType: 2 });
  png.data = rgba;
  return new Uint8Array(PNG.sync.write(png, { colorType: 2 }));
}

function count(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`writeFashionMnistFolders: ${name} must be an integer >= 0 (images per class), got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Writes <dir>/train/<class>/<index>.png and <dir>/test/<class>/<index>.png (index: the image's
 * position in its IDX file, so each file traces back to the original). `dir` must be new or
 * empty: mixing with an earlier set would change the counts. Returns the images written per split.
 */
export async function writeFashionMnistFolders(dir: string, options: FashionMnistFolderOptions): Promise<{ train: number; test: number }> {
  const { classes } = options;
  if (!Array.isArray(classes) || classes.length === 0) throw new Error(`writeFashionMnistFolders: classes must be a non-empty list of ${FASHION_MNIST_CLASSES.join(', ')}`);
  for (const c of classes) {
    if (!(FASHION_MNIST_CLASSES as readonly string[]).includes(c)) throw new Error(`writeFashionMnistFolders: unknown class ${JSON.stringify(c)}; Fashion-MNIST's are ${FASHION_MNIST_CLASSES.join(', ')}`);
  }
  if (new Set(classes).size !== classes.length) throw new Error(`writeFashionMnistFolders: classes has a repeat: ${classes.join(', ')}`);
  const perClass = { train: count(options.train, 'train'), test: count(options.test, 'test') };
  const size = options.size ?? 28;
  if (!Number.isInteger(size) || size < 1 || size > 1024) throw new Error(`writeFashionMnistFolders: size must be an integer in [1, 1024] pixels, got ${JSON.stringify(options.size)}`);
  const entries = await readdir(dir).catch(() => [] as string[]);
  if (entries.length) throw new Error(`writeFashionMnistFolders: '${dir}' is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); give a new or empty folder`);

  const written = { train: 0, test: 0 };
  for (const split of ['train', 'test'] as const) {
    const want = perClass[split];
    const { images, labels } = await readFashionMnist(split, options.from ?? FASHION_MNIST_DIR);
    const { rows, cols } = images;
    const digits = String(images.count - 1).length;
    for (const cls of classes) {
      const label = FASHION_MNIST_CLASSES.indexOf(cls);
      const out = join(dir, split, cls);
      await mkdir(out, { recursive: true });
      let n = 0;
      for (let i = 0; i < labels.length && n < want; i++) {
        if (labels[i] !== label) continue;
        let gray = images.pixels.subarray(i * rows * cols, (i + 1) * rows * cols);
        if (size !== rows || size !== cols) gray = resizeBilinear(gray, rows, cols, 1, size, size);
        await writeFile(join(out, `${String(i).padStart(digits, '0')}.png`), grayPng(gray, size));
        n++;
      }
      if (n < want) throw new Error(`writeFashionMnistFolders: the ${split} file has only ${n} images of '${cls}', asked for ${want}`);
      written[split] += n;
    }
  }
  return written;
}
