// `predict` and `evaluate` on a trained run folder: the settings tell the input size and the
// classes; the weights are the run's final ones, or its last checkpoint if it did not finish.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { importWeights, setInitSeed, type Model } from '../index.ts';
import { compareCodePoints, hasImageExtension } from '../io/dataset.ts';
import { checkImage, MAX_IMAGE_PIXELS } from '../io/image-decode.ts';
import { processImage, type ImageSpec } from '../io/pipeline.ts';
import { readPngNode } from '../io/png-node.ts';
import { confusionMatrix, type ConfusionMatrix } from '../graph/confusion.ts';
import { display, int, parse, required, UsageError } from './args.ts';
import { CHECKPOINT_FILE, readCheckpoint } from './checkpoint.ts';
import { baseOf, BASES, referenceModel } from './reference-model.ts';
import { generators, readSettings, requireDir, WEIGHTS_DIR, type RunSettings } from './train.ts';

export const PREDICT_HELP = `webgpu-finetune predict --model RUN_DIR [--json] [--batch N] IMAGE_OR_FOLDER...

Classifies images with a trained run (the --out folder of train): prints each image's class
and the probability of that class. Folders are searched recursively for image files (png, jpg,
jpeg, bmp, ppm). Images are resized to the run's size (nearest neighbour, as Keras's load_img)
and scaled by 1/255, as in training (runs on mobilenet_v2 or resnet50: the base's
preprocess_input instead).

  --model DIR   the run folder (settings.json + weights/, or its checkpoint)     (required)
  --json        print JSON instead of a table: for each image its file, class, probability,
                and output (the sigmoid output, the probability of the class with index 1)
  --batch N     images per forward pass                                     [the run's batch]
  --max-image-pixels N|none
                images with more pixels are refused (decompression bombs)  [the run's]
`;

export const EVALUATE_HELP = `webgpu-finetune evaluate --model RUN_DIR --data DIR [--json] [--batch N]

Loss, accuracy and the run's other metrics on a folder of images (one subfolder per class, the
same classes as in training), as Keras's model.evaluate on a flow_from_directory with rescale
1/255 (or the base's preprocess_input, as the run's validation images); then the confusion
matrix (rows: true class, columns: predicted; p > 0.5 for two classes, else the most probable)
with each class's precision and recall.

  --model DIR   the run folder                                                 (required)
  --data DIR    the images                                                      (required)
  --json        print { "loss", "acc" (and the run's other metrics), "samples", "classes",
                "confusion": { "counts": [[...]] }, "perClass": { CLASS: { precision, recall, images } } }
  --batch N     batch size                                                  [the run's batch]
  --max-image-pixels N|none
                images with more pixels are skipped (decompression bombs)  [the run's]
`;

const nanToNull = (x: number) => (Number.isNaN(x) ? null : x);

/** The confusion matrix as a table (rows: true class, columns: predicted) and each class's precision and recall. */
export function confusionLines(cm: ConfusionMatrix): string[] {
  const w = Math.max(9, ...cm.classes.map((c) => c.length)) + 2;
  const cell = (t: string | number) => String(t).padStart(w);
  const lines = ['', 'Confusion matrix (rows: true class, columns: predicted class):', `${''.padEnd(w)}${cm.classes.map(cell).join('')}`];
  cm.counts.forEach((row, i) => lines.push(`${cm.classes[i].padEnd(w)}${row.map(cell).join('')}`));
  const f = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(4));
  lines.push('', `${'class'.padEnd(w)}${cell('precision')}${cell('recall')}${cell('images')}`);
  cm.classes.forEach((c, i) => lines.push(`${c.padEnd(w)}${cell(f(cm.precision[i]))}${cell(f(cm.recall[i]))}${cell(cm.counts[i].reduce((a, b) => a + b, 0))}`));
  return lines;
}

/** --max-image-pixels as given (undefined: the run's setting, else Pillow's default). */
function pixelLimit(v: string | undefined, settings: Pick<RunSettings, 'maxImagePixels'>): number | null {
  if (v === 'none') return null;
  if (v !== undefined) return int(v, 'max-image-pixels', 0);
  return settings.maxImagePixels === undefined ? MAX_IMAGE_PIXELS : settings.maxImagePixels;
}

/** A run's model with its trained weights; says which weights when they are the checkpoint's. */
export async function loadRun(dir: string, note: (l: string) => void): Promise<{ settings: RunSettings; model: Model; classes: string[] }> {
  const abs = resolve(dir);
  const st = await stat(abs).catch(() => null);
  if (!st?.isDirectory()) throw new UsageError(`--model: run folder '${dir}' does not exist; give the --out folder of a train run`);
  const settings = await readSettings(abs);
  setInitSeed(settings.seed);
  const model = await referenceModel(settings, null);
  const final = join(abs, WEIGHTS_DIR);
  const ckptPath = join(abs, CHECKPOINT_FILE);
  const [weightsStat, ckptStat] = await Promise.all([stat(join(final, 'manifest.json')).catch(() => null), stat(ckptPath).catch(() => null)]);
  // a run resumed and then killed leaves weights/ from its earlier end and a newer checkpoint: use the newest
  const useCheckpoint = !weightsStat || (ckptStat !== null && ckptStat.mtimeMs > weightsStat.mtimeMs);
  if (!useCheckpoint) {
    await model.loadWeights(final).catch((e: Error) => {
      throw new Error(`cannot load the run's weights from ${final}: ${e.message}`);
    });
  } else {
    const ckpt = await readCheckpoint(ckptPath).catch((e: Error) => {
      throw new Error(`the run in '${dir}' has no ${weightsStat ? 'usable checkpoint newer than its' : 'final weights (' + WEIGHTS_DIR + '/) and no usable checkpoint'}${weightsStat ? ` final weights (${WEIGHTS_DIR}/)` : ''}: ${e.message}`);
    });
    await importWeights(model, ckpt.weights.manifest, ckpt.weights.data, { source: ckptPath });
    const at = `epoch ${ckpt.state.epoch}${ckpt.state.step ? ` and ${ckpt.state.step} steps` : ''}`;
    note(weightsStat
      ? `note: the checkpoint (${at}, ${ckpt.created}) is newer than the final weights in ${WEIGHTS_DIR}/ (${weightsStat.mtime.toISOString()}): the run was continued after it ended; using the checkpoint`
      : `note: the run did not finish; using its checkpoint (${at}) from ${ckpt.created}`);
  }
  const indices = settings.classIndices ?? { '0': 0, '1': 1 };
  const classes = Object.entries(indices).sort((a, b) => a[1] - b[1]).map(([name]) => name);
  return { settings, model, classes };
}

/** Image files named on the command line: files as given, folders searched recursively (sorted). */
export async function collectImages(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => compareCodePoints(a.name, b.name));
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (hasImageExtension(e.name)) out.push(p);
    }
  };
  for (const p of paths) {
    const st = await stat(p).catch(() => null);
    if (!st) throw new UsageError(`'${p}' does not exist; give image files or folders of images`);
    if (st.isDirectory()) {
      const before = out.length;
      await walk(p);
      if (out.length === before) throw new UsageError(`the folder '${p}' holds no image files (png, jpg, jpeg, bmp, ppm)`);
    } else out.push(p);
  }
  return out;
}

export interface Prediction {
  file: string;
  class: string | null;
  classIndex: number | null;
  /** probability of `class` */
  probability: number | null;
  /** the sigmoid output: probability of class index 1 (binary runs; null for categorical ones) */
  output: number | null;
  /** categorical runs: the most likely classes, best first, with their probabilities */
  top?: { class: string; probability: number }[];
  error?: string;
}

/** Predictions for image files, in the order given. Unreadable files get an `error` instead. */
export async function predictFiles(model: Model, settings: RunSettings, classes: string[], files: string[], batch: number, maxImagePixels: number | null = settings.maxImagePixels === undefined ? MAX_IMAGE_PIXELS : settings.maxImagePixels): Promise<Prediction[]> {
  const pre = BASES[baseOf(settings)].preprocess;
  const spec: ImageSpec = { height: settings.height, width: settings.width, interpolation: 'nearest', augment: { fillMode: 'nearest', cval: 0, interpolationOrder: 1, rescale: pre ? null : 1 / 255 } };
  const per = settings.height * settings.width * 3;
  const results: Prediction[] = files.map((f) => ({ file: f, class: null, classIndex: null, probability: null, output: null }));
  const good: number[] = [];
  const images: Float32Array[] = [];
  for (let i = 0; i < files.length; i++) {
    try {
      const bytes = new Uint8Array(await readFile(files[i]));
      if (maxImagePixels !== null) checkImage(bytes, maxImagePixels); // before any pixel is decoded
      const img = processImage(bytes, spec, null, readPngNode);
      images.push(pre ? pre(img) : img);
      good.push(i);
    } catch (e) {
      results[i].error = (e as Error).message;
    }
  }
  for (let s = 0; s < good.length; s += batch) {
    const n = Math.min(batch, good.length - s);
    const x = new Float32Array(n * per);
    for (let k = 0; k < n; k++) x.set(images[s + k], k * per);
    const p = await model.predict(x, { batchSize: n });
    if (settings.classMode === 'categorical') {
      const K = classes.length;
      for (let k = 0; k < n; k++) {
        const r = results[good[s + k]];
        const row = Array.from(p.subarray(k * K, (k + 1) * K), (v, c) => ({ class: classes[c], index: c, probability: v }));
        row.sort((a, b) => b.probability - a.probability || a.index - b.index);
        r.top = row.slice(0, Math.min(3, K)).map(({ class: c, probability }) => ({ class: c, probability }));
        r.classIndex = row[0].index;
        r.class = row[0].class;
        r.probability = row[0].probability;
      }
      continue;
    }
    for (let k = 0; k < n; k++) {
      const r = results[good[s + k]];
      r.output = p[k];
      r.classIndex = p[k] > 0.5 ? 1 : 0;
      r.class = classes[r.classIndex];
      r.probability = r.classIndex === 1 ? p[k] : 1 - p[k];
    }
  }
  return results;
}

export async function predictCommand(args: string[]): Promise<number> {
  const { values: v, positionals } = parse('predict', args, { model: { type: 'string' }, json: { type: 'boolean' }, batch: { type: 'string' }, 'max-image-pixels': { type: 'string' } }, true);
  if (v.help) {
    console.log(PREDICT_HELP);
    return 0;
  }
  const dir = required(v.model, 'model', 'predict', 'RUN_DIR (the --out folder of train)');
  if (!positionals.length) throw new UsageError("predict: give at least one image file or folder after the options; see 'webgpu-finetune predict --help'");
  const files = await collectImages(positionals);
  pixelLimit(v['max-image-pixels'], {}); // a bad value is refused before the model loads
  const { settings, model, classes } = await loadRun(dir, (l) => console.error(l));
  const results = await predictFiles(model, settings, classes, files, int(v.batch, 'batch', settings.batch), pixelLimit(v['max-image-pixels'], settings));
  if (v.json) {
    console.log(JSON.stringify({ model: resolve(dir), classes, predictions: results }, null, 1));
  } else {
    const names = results.map((r) => display(r.file));
    const w = Math.max(5, ...names.map((n) => n.length));
    const cw = Math.max(5, ...classes.map((c) => c.length));
    console.log(`${'image'.padEnd(w)}  ${'class'.padEnd(cw)}  probability${settings.classMode === 'categorical' ? '  next classes' : ''}`);
    results.forEach((r, i) => {
      const more = r.top && r.top.length > 1 ? `       ${r.top.slice(1).map((t) => `${t.class} ${t.probability.toFixed(4)}`).join(', ')}` : '';
      console.log(r.error ? `${names[i].padEnd(w)}  ${'-'.padEnd(cw)}  cannot read it: ${r.error}` : `${names[i].padEnd(w)}  ${r.class!.padEnd(cw)}  ${r.probability!.toFixed(4)}${more}`);
    });
  }
  const failed = results.filter((r) => r.error).length;
  if (failed) console.error(`webgpu-finetune: ${failed} of ${results.length} images could not be read (see above)`);
  return failed ? 1 : 0;
}

export async function evaluateCommand(args: string[]): Promise<number> {
  const { values: v } = parse('evaluate', args, { model: { type: 'string' }, data: { type: 'string' }, json: { type: 'boolean' }, batch: { type: 'string' }, 'max-image-pixels': { type: 'string' } });
  if (v.help) {
    console.log(EVALUATE_HELP);
    return 0;
  }
  const dir = required(v.model, 'model', 'evaluate', 'RUN_DIR (the --out folder of train)');
  const data = await requireDir(required(v.data, 'data', 'evaluate', 'DIR (images in one subfolder per class)'), '--data');
  const log = v.json ? (l: string) => console.error(l) : (l: string) => console.log(l);
  pixelLimit(v['max-image-pixels'], {}); // a bad value is refused before the model loads
  const { settings, model, classes } = await loadRun(dir, (l) => console.error(l));
  const flow = await generators(settings).valGen.flowFromDirectory(data, {
    targetSize: [settings.height, settings.width], batchSize: int(v.batch, 'batch', settings.batch), classMode: settings.classMode ?? 'binary', shuffle: false, classes, log,
    maxImagePixels: pixelLimit(v['max-image-pixels'], settings),
  });
  try {
    const logs = await model.evaluateLogs(flow);
    const names = Object.keys(flow.classIndices);
    const cm = await confusionMatrix(model, flow, names);
    if (v.json) {
      const perClass = Object.fromEntries(names.map((n, i) => [n, { precision: nanToNull(cm.precision[i]), recall: nanToNull(cm.recall[i]), images: cm.counts[i].reduce((a, b) => a + b, 0) }]));
      console.log(JSON.stringify({ ...logs, samples: flow.samples, classes, confusion: { rows: 'true class', columns: 'predicted class', counts: cm.counts }, perClass }));
    } else {
      console.log(`${flow.samples} images: ${Object.entries(logs).map(([k, x]) => `${k}: ${x.toFixed(4)}`).join(' - ')}`);
      for (const line of confusionLines(cm)) console.log(line);
    }
  } finally {
    await flow.close();
  }
  return 0;
}
