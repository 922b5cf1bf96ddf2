/**
 * Node: writes the generated sample set (sample-data.ts) as real image files in Keras's folder
 * layout, <dir>/train/<class>/*.png|jpg and <dir>/test/<class>/*.png|jpg, so the demo reads it
 * through flowFromDirectory like any user's folders. Every other image is a JPEG (quality 90),
 * so both decoders are exercised.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { generateSampleSet, SAMPLE_CLASSES, SAMPLE_CLASSES_3, type SampleImage } from './sample-data.ts';

export interface SampleFolderOptions {
  height: number;
  width: number;
  /** training images (balanced between the two classes) */
  train: number;
  /** test (validation) images */
  test: number;
  seed?: number;
  /** 2 (circles, squares) or 3 (and triangles) */
  classes?: 2 | 3;
}

/** PNG or JPEG bytes of one RGB image. */
export function encodeSample(im: SampleImage, format: 'png' | 'jpg'): Uint8Array {
  const rgba = Buffer.alloc(im.width * im.height * 4);
  for (let p = 0, q = 0; p < im.rgb.length; p += 3, q += 4) {
    rgba[q] = im.rgb[p];
    rgba[q + 1] = im.rgb[p + 1];
    rgba[q + 2] = im.rgb[p + 2];
    rgba[q + 3] = 255;
  }
  if (format === 'jpg') return jpeg.encode({ data: rgba, width: im.width, height: im.height }, 90).data;
  const png = new PNG({ width: im.width, height: im.height, colorType: 2 });
  png.data = rgba;
  return PNG.sync.write(png, { colorType: 2 });
}

const STAMP = 'sample-data.json';

/**
 * Writes the set into `dir` unless it is already there with the same options (a stamp file
 * records them); returns whether it wrote. The set is written beside `dir` and renamed into
 * place, so an interrupted run never leaves half a data set that looks complete.
 */
export async function writeSampleFolders(dir: string, options: SampleFolderOptions, onProgress?: (done: number, total: number) => void): Promise<boolean> {
  const seed = options.seed ?? 0;
  const names = (options.classes ?? 2) === 3 ? SAMPLE_CLASSES_3 : SAMPLE_CLASSES;
  const stamp = JSON.stringify({ generator: 'webgpu-finetune sample-data 1', classes: names, ...options, seed });
  const old = await readFile(join(dir, STAMP), 'utf8').catch(() => null);
  if (old?.trim() === stamp) return false;
  // Never replace a folder this generator did not write (a user's own data given by mistake).
  const entries = await readdir(dir).catch(() => [] as string[]);
  if (entries.length && old === null) {
    throw new Error(`${dir} exists and is not a generated sample set (no ${STAMP} in it); give another folder, or remove it`);
  }
  const tmp = `${dir}.${process.pid}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  const total = options.train + options.test;
  let done = 0;
  // Train and test come from different seeds: no image is in both.
  for (const [split, count, splitSeed] of [['train', options.train, seed], ['test', options.test, seed + 7919]] as const) {
    for (const cls of names) await mkdir(join(tmp, split, cls), { recursive: true });
    const set = generateSampleSet({ count, height: options.height, width: options.width, seed: splitSeed, classes: options.classes });
    for (let i = 0; i < set.length; i++) {
      const format = (i >> 1) % 2 === 0 ? 'png' : 'jpg';
      const name = `${set[i].className}_${String(i).padStart(4, '0')}.${format}`;
      await writeFile(join(tmp, split, set[i].className, name), encodeSample(set[i], format));
      onProgress?.(++done, total);
    }
  }
  await writeFile(join(tmp, STAMP), `${stamp}\n`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, '..'), { recursive: true });
  await rename(tmp, dir);
  return true;
}
