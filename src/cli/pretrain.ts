// The offline demo's pretrained base, cached: pretrains SmallCNN on the four other shape families
// (src/graph/shape-pretraining.ts) once, and keeps its weights in the weights cache under a key
// naming the generator's version and every setting, so a second demo run skips the pretraining.
// The entry is written into a temporary folder and renamed into place: an interrupted run never
// leaves an entry that looks complete.
import { cp, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PRETRAIN_FAMILIES, SAMPLE_GENERATOR_VERSION } from '../io/sample-data.ts';
import { defaultCacheDir } from '../io/weights-node.ts';
import { pretrainShapes, shapePretrainKey, type ShapePretrainSettings } from '../graph/shape-pretraining.ts';
import { emptyHistory, type RunHistory } from './checkpoint.ts';
import { historySvg } from './plot.ts';
import { countBar } from './progress.ts';
import { useKernelTuning } from './kernel-tuning.ts';
import { getGpu } from '../graph/backend.ts';

export const PRETRAINED_WEIGHTS = 'model.h5';
const INFO = 'pretrain.json';

export interface PretrainInfo {
  format: 'webgpu-finetune-pretrained-base';
  version: 1;
  architecture: 'small_cnn';
  families: string[];
  generator: number;
  settings: ShapePretrainSettings;
  /** the last epoch's accuracy on held-out images of the four families */
  valAcc: number;
  seconds: number;
  history: RunHistory;
}

export interface PretrainedBase {
  /** the cache entry's folder */
  dir: string;
  /** the base's weights (Keras HDF5, loadable by SmallCNN({ weights }) or Keras's load_weights) */
  weights: string;
  /** true: found in the cache, not trained now */
  cached: boolean;
  info: PretrainInfo;
}

/** The cache entry for these settings. */
export function pretrainDir(s: ShapePretrainSettings, cacheDir = defaultCacheDir()): string {
  return join(cacheDir, 'pretrained-bases', shapePretrainKey(s));
}

/** The cache entry for these settings when it is there and whole; else null. */
export async function cachedPretrainedBase(s: ShapePretrainSettings, cacheDir?: string): Promise<PretrainInfo | null> {
  return readEntry(pretrainDir(s, cacheDir));
}

async function readEntry(dir: string): Promise<PretrainInfo | null> {
  try {
    const info = JSON.parse(await readFile(join(dir, INFO), 'utf8')) as PretrainInfo;
    await readFile(join(dir, PRETRAINED_WEIGHTS)).then((b) => {
      if (b.length < 8) throw new Error('truncated');
    });
    return info.format === 'webgpu-finetune-pretrained-base' ? info : null;
  } catch {
    return null;
  }
}

const ENTRY_FILES = [PRETRAINED_WEIGHTS, 'history.json', 'history.svg', INFO];

/**
 * The cached base for these settings, else pretrains it (Keras's progress lines on stdout) and
 * caches it; either way its weights, history, curves and pretrain.json are also put in `runDir`
 * (the demo's <run>/pretrain). A damaged entry is pretrained again; a cache that cannot be
 * written is said, and the run goes on with the copy in `runDir`.
 */
export async function pretrainedBase(s: ShapePretrainSettings, o: { runDir: string; cacheDir?: string; log?: (l: string) => void; signal?: AbortSignal }): Promise<PretrainedBase> {
  const log = o.log ?? ((l: string) => console.log(l));
  const dir = pretrainDir(s, o.cacheDir);
  await mkdir(o.runDir, { recursive: true });
  const found = await readEntry(dir);
  if (found) {
    for (const f of ENTRY_FILES) await cp(join(dir, f), join(o.runDir, f));
    return { dir, weights: join(o.runDir, PRETRAINED_WEIGHTS), cached: true, info: found };
  }

  useKernelTuning(await getGpu());
  const bar = countBar('Drawing the pretraining images');
  const run = await pretrainShapes(s, { verbose: 1, signal: o.signal, onImages: bar });
  const history = emptyHistory();
  history.epoch = run.history.epoch;
  history.history = run.history.history as RunHistory['history'];
  const info: PretrainInfo = {
    format: 'webgpu-finetune-pretrained-base', version: 1, architecture: 'small_cnn', families: [...PRETRAIN_FAMILIES], generator: SAMPLE_GENERATOR_VERSION,
    settings: s, valAcc: history.history.val_acc.at(-1) ?? Number.NaN, seconds: run.seconds, history,
  };
  try {
    await run.base.saveWeights(join(o.runDir, PRETRAINED_WEIGHTS));
  } finally {
    await run.base.dispose();
  }
  await writeFile(join(o.runDir, 'history.json'), `${JSON.stringify(history, null, 1)}\n`);
  await writeFile(join(o.runDir, 'history.svg'), historySvg(history, `SmallCNN pretraining on ${PRETRAIN_FAMILIES.join(', ')}`));
  await writeFile(join(o.runDir, INFO), `${JSON.stringify(info, null, 1)}\n`);

  // pretrain.json is copied last and the folder renamed into place: no half entry is ever found
  const tmp = `${dir}.${process.pid}.tmp`;
  try {
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    for (const f of ENTRY_FILES) await cp(join(o.runDir, f), join(tmp, f));
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    log(`(could not cache the pretrained base in ${dir}: ${(e as Error).message}; the next demo run pretrains again)`);
    return { dir: o.runDir, weights: join(o.runDir, PRETRAINED_WEIGHTS), cached: false, info };
  }
  return { dir, weights: join(o.runDir, PRETRAINED_WEIGHTS), cached: false, info };
}
