/**
 * The page's data sets: the built-in sample (generated circles vs squares) or a picked folder with
 * train/ and test/ class folders, and the flows the training program reads them with (Keras's
 * flow_from_directory over File objects). Platform-free: no DOM, so the browser test's Node side
 * builds exactly the same batches.
 */
import type { DirectoryIterator } from '../../src/io/flow.ts';
import { compareCodePoints, hasImageExtension } from '../../src/io/dataset.ts';
import { ImageDataGenerator } from '../../src/io/image-data-generator.ts';
import { generateSampleSet, SAMPLE_CLASSES } from '../../src/io/sample-data.ts';
import { mobilenetV2, resnet50 } from '../../src/graph/preprocess.ts';
import { smallCnnPreprocessInput } from '../../src/graph/small-cnn.ts';
import { AUGMENTATION, baseOf, type BaseName, type TrainSettings } from './settings.ts';

/** A File, or any Blob with a name (what flowFromFiles reads). */
export type NamedBlob = Blob & { name: string };

/** class name -> its image files */
export type Split = Record<string, NamedBlob[]>;

export interface DataSet {
  /** shown to the user: the folder's name, or the sample's description */
  name: string;
  train: Split;
  test: Split;
  /** Keras's class order (sorted); index 0 is the sigmoid's "0" */
  classes: string[];
  /** files in the picked folder that are not used, and why (shown, never silently dropped) */
  ignored: string[];
}

export interface SampleOptions {
  train: number;
  test: number;
  /** generated images are size x size (the flows resize them to the input size) */
  size: number;
  seed: number;
}

export const DEFAULT_SAMPLE: SampleOptions = { train: 64, test: 32, size: 64, seed: 7 };

/** Binary PPM (P6): the simplest lossless image file the engine decodes, written in a few lines. */
export function encodePpm(rgb: Uint8Array, height: number, width: number): Uint8Array {
  const header = new TextEncoder().encode(`P6\n${width} ${height}\n255\n`);
  const out = new Uint8Array(header.length + rgb.length);
  out.set(header);
  out.set(rgb, header.length);
  return out;
}

function named(bytes: Uint8Array, name: string): NamedBlob {
  return Object.assign(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'image/x-portable-pixmap' }), { name });
}

/** The sample set as PPM files in class folders, so it goes through the same flows as a picked folder. */
export function sampleDataSet(o: SampleOptions = DEFAULT_SAMPLE): DataSet {
  const split = (count: number, seed: number): Split => {
    const out: Split = Object.fromEntries(SAMPLE_CLASSES.map((c) => [c, [] as NamedBlob[]]));
    generateSampleSet({ count, height: o.size, width: o.size, seed }).forEach((img, i) => {
      out[img.className].push(named(encodePpm(img.rgb, img.height, img.width), `${img.className}_${String(i).padStart(4, '0')}.ppm`));
    });
    return out;
  };
  return {
    name: `built-in sample: ${SAMPLE_CLASSES.join(' vs ')} (${o.size}x${o.size}, seed ${o.seed})`,
    train: split(o.train, o.seed),
    test: split(o.test, o.seed + 1),
    classes: [...SAMPLE_CLASSES],
    ignored: [],
  };
}

const SPLITS: Record<string, 'train' | 'test'> = { train: 'train', test: 'test', validation: 'test', val: 'test' };

/**
 * A picked or dropped folder: `path` is each file's path inside it (webkitRelativePath, or the
 * entry path of a drop). The first folder named train/ (and test/, or validation/) holds one folder
 * per class; images deeper inside a class folder belong to that class, as in Keras.
 */
export function dataSetFromFiles(files: { path: string; file: NamedBlob }[], name = 'the picked folder'): DataSet {
  const data: DataSet = { name, train: {}, test: {}, classes: [], ignored: [] };
  for (const { path, file } of files) {
    const parts = path.split('/').filter(Boolean);
    if (parts.some((p) => p.startsWith('.'))) continue; // .DS_Store, .git: not data
    const at = parts.findIndex((p) => SPLITS[p.toLowerCase()]);
    if (at < 0) {
      data.ignored.push(`${path}: not inside a train/ or test/ folder`);
      continue;
    }
    if (parts.length < at + 3) {
      data.ignored.push(`${path}: directly in ${parts[at]}/, outside a class folder`);
      continue;
    }
    if (!hasImageExtension(file.name)) {
      data.ignored.push(`${path}: not an image file (png, jpg, jpeg, bmp, ppm)`);
      continue;
    }
    const split = data[SPLITS[parts[at].toLowerCase()]];
    (split[parts[at + 1]] ??= []).push(file);
  }
  const trainClasses = Object.keys(data.train).sort(compareCodePoints);
  const testClasses = Object.keys(data.test).sort(compareCodePoints);
  if (!trainClasses.length) {
    throw new Error(`${name}: no images in a train/ folder. Expected train/<class>/*.jpg and test/<class>/*.jpg, e.g. train/cats, train/dogs, test/cats, test/dogs.`);
  }
  if (!testClasses.length) throw new Error(`${name}: no images in a test/ (or validation/) folder; it is used to measure accuracy on images the model does not train on.`);
  if (trainClasses.join('\n') !== testClasses.join('\n')) {
    throw new Error(`${name}: train/ has the classes ${trainClasses.join(', ')} but test/ has ${testClasses.join(', ')}; both need the same class folders.`);
  }
  data.classes = trainClasses;
  return data;
}

export function countImages(split: Split): Record<string, number> {
  return Object.fromEntries(Object.entries(split).map(([c, f]) => [c, f.length]));
}

/**
 * The generators' preprocessing_function for a base: null for VGG16 (the reference program
 * rescales by 1/255 instead), the base's preprocess_input for the others (Keras's guide).
 */
export function preprocessFor(base: BaseName): ((x: Float32Array) => Float32Array) | null {
  switch (base) {
    case 'mobilenet_v2': return mobilenetV2.preprocessInput;
    case 'resnet50': return resnet50.preprocessInput;
    // -1..1, as its pretraining saw the shapes (src/graph/shape-pretraining.ts)
    case 'small_cnn': return smallCnnPreprocessInput;
    default: return null;
  }
}

/**
 * The reference program's flows: rescale 1/255 (VGG16; the other bases use their preprocess_input
 * instead, as Keras's transfer-learning guide), the reference augmentation when enabled, binary
 * labels; one seed for shuffling and augmentation so a run can be repeated exactly.
 */
export async function makeFlows(data: DataSet, s: TrainSettings, log: (line: string) => void = () => {}): Promise<{ train: DirectoryIterator; test: DirectoryIterator }> {
  if (data.classes.length !== 2) {
    throw new Error(`the model ends in one sigmoid unit (two classes), but ${data.name} has ${data.classes.length} classes: ${data.classes.join(', ')}`);
  }
  const common = { targetSize: [s.height, s.width] as [number, number], batchSize: s.batchSize, classMode: 'binary' as const, classes: data.classes, seed: s.seed, log, warn: log };
  const preprocess = preprocessFor(baseOf(s));
  const scaling = preprocess ? { preprocessingFunction: preprocess } : { rescale: 1 / 255 };
  const train = await new ImageDataGenerator({ ...scaling, ...(s.augment ? AUGMENTATION : {}) }).flowFromFiles(data.train, common);
  const test = await new ImageDataGenerator(scaling).flowFromFiles(data.test, common);
  return { train, test };
}
