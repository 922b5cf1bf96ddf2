/**
 * `train`: the reference program on the user's folders, with a run folder (settings, history,
 * curves, final weights), a checkpoint after every epoch and on Ctrl-C, and `--resume`.
 *
 * Exact resumption: the checkpoint holds the weights, the optimizer state (its iteration also
 * seeds dropout masks), the history, both flows' positions (their order and augmentation are a
 * function of seed and batch counter, so seek() restores them) and, for an epoch stopped
 * part-way, the per-step results already folded into that epoch's running means. A resumed run
 * therefore ends with the same weights and history as one that never stopped.
 */
import { constants } from 'node:fs';
import { access, mkdir, open, readFile, realpath, rm, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { balancedClassWeights, EarlyStopping, getGpu, ImageDataGenerator, ModelCheckpoint, NonFiniteLossError, ReduceLROnPlateau, setInferenceMode, setInitSeed, type DirectoryIterator, type Logs, type Model, type NamedTensor } from '../index.ts';
import { defaultSink, Progbar } from '../graph/progbar.ts';
import { compareCodePoints } from '../io/dataset.ts';
import { listClassFolders } from '../io/directory-node.ts';
import { isDiskFull } from '../io/atomic-file-node.ts';
import { MAX_IMAGE_PIXELS } from '../io/image-decode.ts';
import { metricNames, resolveMetrics } from '../graph/metrics.ts';
import { defaultLearningRate } from '../graph/optimizers.ts';
import { HDF5_SIGNATURE, signatureOffsets } from '../io/keras-h5.ts';
import { display, int, num, oneOf, parse, required, size, UsageError } from './args.ts';
import { CHECKPOINT_FILE, emptyHistory, readCheckpoint, restoreCheckpoint, saveCheckpoint, writeFileAtomic, type Checkpoint, type RunHistory, type TrainState } from './checkpoint.ts';
import { historySvg } from './plot.ts';
import { fmtDuration, withTicker } from './progress.ts';
import { ARCHITECTURE, BASE_NAMES, baseOf, BASES, freezeUntilIndex, OPTIMIZER_NAMES, optimizerFor, referenceModel as buildReference, TOP, topFor, type BaseName, type OptimizerName } from './reference-model.ts';
import { useKernelTuning } from './kernel-tuning.ts';

export const TRAIN_HELP = `webgpu-finetune train --train DIR --val DIR [options]
webgpu-finetune train --resume RUN_DIR [--epochs N]
webgpu-finetune train --train DIR --val DIR --out RUN_DIR --overwrite [options]

Fine-tunes VGG16 on image folders as the reference Keras program does: VGG16 without its top,
the first --freeze layers frozen, Flatten, Dense 256 ReLU, Dropout 0.5, Dense 1 sigmoid; SGD,
binary cross-entropy, accuracy. Each folder holds one subfolder per class, e.g.
data/train/cats, data/train/dogs. With three or more classes the last layer is Dense K softmax
with categorical cross-entropy. Prints Keras's progress; writes a run folder.

--base mobilenet_v2 or resnet50 follows Keras's transfer-learning guide instead: the base's
preprocess_input (no rescale), the whole base frozen (its BatchNormalization layers then run in
inference mode), GlobalAveragePooling2D, Dropout 0.2, Dense 1 sigmoid (Dense K softmax).
--base small_cnn is the same with the offline demo's small base (no ImageNet weights: give
--weights PATH, e.g. a demo run's pretrain/model.h5, or none).

  --train DIR            training images, one subfolder per class            (required)
  --val DIR              validation images, the same class subfolders         (required)
  --base B               vgg16 (the reference program), mobilenet_v2, resnet50 or small_cnn
                                                                             [vgg16]
  --size HxW             images are resized to this (Keras's target_size)
                                 [240x360; 224x224 for mobilenet_v2, resnet50; 32x32 small_cnn]
  --batch N              batch size                                         [32]
  --epochs N             epochs                                             [10]
  --freeze N|all         layers of the base (Keras's model.layers, input layer included) kept
                         frozen; 0 trains everything, all only the new top (VGG16 has 19
                         layers: 15 = blocks 1-4; MobileNetV2 154, ResNet50 175, SmallCNN 21)
                                           [15 for vgg16; all for mobilenet_v2, resnet50]
  --freeze-until LAYER   freeze the base's layers before the one named LAYER (e.g. block5_conv1,
                         block_16_expand, conv5_block1_1_conv); instead of --freeze
  --weights W            the base's starting weights: imagenet (Keras's, cached after the first
                         download), none (random initialisation), or a path to a Keras .h5
                         file or an exported manifest.json / its folder        [imagenet]
  --optimizer O          sgd (the reference program's), adam, adamw or rmsprop, with Keras 3's
                         defaults for what is not given                      [sgd]
  --lr X                 learning rate                  [0.01 for sgd; 0.001 for the others]
  --momentum X           SGD's or RMSprop's momentum, 0 to 1                 [0]
  --nesterov             Nesterov momentum (sgd)
  --weight-decay X       Keras's weight_decay: w -= w * X * lr each step  [none; adamw 0.004]
  --lr-schedule S        none, cosine (to 0 over the run) or exponential (ten times lower by
                         the last step), evaluated at every step              [none]
  --warmup-epochs N      cosine only: a linear warmup from 0 to --lr over N epochs   [0]
  --clipnorm X           clip each gradient's L2 norm to X                   [none]
  --early-stopping P     stop when val_loss has not improved for P epochs; the best epoch's
                         weights are restored at the end (Keras's EarlyStopping) [off]
  --reduce-lr-on-plateau P
                         lower the rate tenfold when val_loss has not improved for P epochs [off]
  --save-best            keep the best epoch's weights (by val_loss) in best/ beside the final ones
  --class-weight W       none, balanced (n_samples / (n_classes * count), from the training
                         folders), or CLASS:WEIGHT pairs such as 0:1,1:3 or cats:1,dogs:3 [none]
  --fine-tune-at N|LAYER Keras's two-phase recipe: after --epochs, unfreeze the base from layer N
                         (or the one named) on, its BatchNormalization kept in inference mode,
                         recompile at --fine-tune-lr and train --fine-tune-epochs more; one
                         history, the phase boundary marked on the curves
  --fine-tune-epochs E   epochs of the fine-tuning phase                     [10]
  --fine-tune-lr X       its learning rate (a new optimizer, as Keras recompiles)  [--lr / 10]
  --metrics M            acc and Keras's stateful metrics: auc, precision, recall (two
                         classes), top_k_categorical_accuracy (more), e.g. acc,auc   [acc]
  --augment keras|none   keras: the reference program's training augmentation (rotation 30,
                         width shift 0.3, zoom 0.3, horizontal and vertical flips); none: rescale
                         only. Validation images are always only rescaled (1/255). For
                         mobilenet_v2 and resnet50 the base's preprocess_input replaces the
                         rescale, for training and validation images alike.   [keras]
  --class-mode M         auto: binary for two class folders, categorical for more; binary
                         (Dense 1 sigmoid, two classes only) or categorical (Dense K softmax) [auto]
  --seed N               seed for data order, augmentation, initial weights and dropout; the
                         same seed gives the same run                         [random]
  --max-image-pixels N|none
                         images with more pixels are skipped with a warning (decompression
                         bombs; Pillow's MAX_IMAGE_PIXELS); none: no limit      [178956970]
  --out DIR              the run folder (not inside --train or --val)       [runs/<time>]
  --verbose              at the end, the kernel each layer ran and what the kernel tuner
                         measured (see Kernels below)
  --overwrite            start a new run in an --out that already holds one (its checkpoint,
                         weights and history are deleted)
  --resume DIR           continue a stopped run from its last checkpoint (its settings are
                         reused; --epochs may raise the epoch count); a run that stopped
                         before its first checkpoint starts again from the beginning

The run folder gets: settings.json (settings, classes, adapter), history.json and history.svg
(loss, accuracy and the other metrics per epoch), best/ (with --save-best or --early-stopping), weights/ (manifest.json + weights.bin), model.h5 (Keras HDF5) and
checkpoint.ckpt (after every epoch, and on Ctrl-C). Ctrl-C stops after the step in progress and
saves a checkpoint; a second Ctrl-C quits at once.

Kernels: each convolution shape's kernel (subgroup tiles of 16/24/32 pixels, tiled, 64x64
tiles, Winograd) is measured on this adapter the first time it is met and remembered in
kernel-tuning.json in the weights cache; WEBGPU_FINETUNE_TUNE_BUDGET (seconds, default 5)
bounds the measuring per run (shapes over it use fixed rules, measured on a later run; 0 uses
only what was measured before; --resume measures nothing, so a run continues with the kernels
it started with). WEBGPU_FINETUNE_KERNELS=tiled|subgroup|winograd|large forces a family
instead.
`;

/** settings.json: what a run was asked to do, and what it found. */
export interface RunSettings {
  format: 'webgpu-finetune-run';
  version: 1;
  /** settings.json's architecture: 'vgg16-reference' for VGG16, else the base's (BASES) */
  architecture: string;
  /** absent in run folders from before --base: vgg16 */
  base?: BaseName;
  top: string;
  train: string;
  val: string;
  height: number;
  width: number;
  batch: number;
  epochs: number;
  /** the base's first `freeze` layers (input included) are frozen */
  freeze: number;
  /** how freezing was asked, when not by a number: 'all' or 'until LAYER' */
  freezeAsked?: string;
  /** as asked: 'imagenet', 'none' or a path */
  weights: string;
  lr: number;
  momentum: number;
  nesterov: boolean;
  augment: 'keras' | 'none';
  seed: number;
  /** absent in older run folders: sgd, no weight decay, no schedule, no clipping, no callbacks, acc */
  optimizer?: OptimizerName;
  weightDecay?: number | null;
  lrSchedule?: 'none' | 'cosine' | 'exponential';
  warmupEpochs?: number;
  clipnorm?: number | null;
  /** EarlyStopping patience on val_loss (best weights restored); null: off */
  earlyStopping?: number | null;
  /** ReduceLROnPlateau patience on val_loss (factor 0.1); null: off */
  reduceLrOnPlateau?: number | null;
  /** keep the best epoch's weights (by val_loss) in best/ beside the final ones */
  saveBest?: boolean;
  classWeightAsked?: string;
  /** 'balanced' until the run starts, then the weights computed from the training folders */
  classWeight?: Record<number, number> | 'balanced' | null;
  metrics?: string[];
  /** two-phase recipe: after `epochs`, the base's layers from this index on are unfrozen (their BatchNormalization in inference mode) for `fineTuneEpochs` more at `fineTuneLr` */
  fineTuneAt?: number;
  fineTuneAsked?: string;
  fineTuneEpochs?: number;
  fineTuneLr?: number;
  /** images with more pixels are skipped; null: no limit; absent in older run folders: the default */
  maxImagePixels?: number | null;
  /** as asked: auto picks from the number of class folders */
  classModeAsked?: 'auto' | 'binary' | 'categorical';
  classMode?: 'binary' | 'categorical';
  numClasses?: number;
  /** filled in when the run starts */
  weightsUsed?: string;
  classIndices?: Record<string, number>;
  trainSamples?: number;
  valSamples?: number;
  adapter?: string;
  created?: string;
  command?: string[];
}

export const SETTINGS_FILE = 'settings.json';
export const HISTORY_FILE = 'history.json';
export const PLOT_FILE = 'history.svg';
export const WEIGHTS_DIR = 'weights';
export const H5_FILE = 'model.h5';
/** the best epoch's weights by val_loss (--save-best, --early-stopping) */
export const BEST_DIR = 'best';

/** The reference program's ImageDataGenerator settings. */
export const KERAS_AUGMENT = { rescale: 1 / 255, widthShiftRange: 0.3, rotationRange: 30, zoomRange: 0.3, horizontalFlip: true, verticalFlip: true };

/** Thrown (as the abort reason) when Ctrl-C stops training. */
export class Interrupted extends Error {
  constructor() {
    super('interrupted');
    this.name = 'Interrupted';
  }
}

/** Class subfolders of a data folder, sorted as flow_from_directory sorts them. */
export async function classFolders(dir: string): Promise<string[]> {
  // the loader's own listing: a class folder may be a symlink to one
  return (await listClassFolders(dir)).classDirs.sort(compareCodePoints);
}

/** Keras's behaviour on a folder that is not there is an exception; ours is a usage error naming it. */
export async function requireDir(path: string, flag: string): Promise<string> {
  const abs = resolve(path);
  const st = await stat(abs).catch(() => null);
  if (!st) throw new UsageError(`${flag} folder '${path}' does not exist (resolved to ${abs}); give a folder with one subfolder per class`);
  if (!st.isDirectory()) throw new UsageError(`${flag} '${path}' is a file; give a folder with one subfolder per class`);
  return abs;
}

function timestamp(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, '').replace(/:/g, '-');
}

export async function readSettings(dir: string): Promise<RunSettings> {
  const path = join(dir, SETTINGS_FILE);
  const text = await readFile(path, 'utf8').catch(() => null);
  if (text === null) throw new UsageError(`'${dir}' is not a run folder (no ${SETTINGS_FILE}); give the --out folder of a train run`);
  let s: RunSettings;
  try {
    s = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path} is damaged (${(e as Error).message})`);
  }
  const base = s.base ?? 'vgg16';
  if (s.format !== 'webgpu-finetune-run' || !(BASE_NAMES as readonly string[]).includes(base) || s.architecture !== BASES[base].architecture) throw new Error(`${path} is not a settings file of this tool (format ${s.format}, architecture ${s.architecture})`);
  return s;
}

/** Parses train's flags into settings (or a resume request). */
export async function parseTrain(args: string[]): Promise<{ help: true } | { resume: string; epochs?: number; verbose: boolean } | { settings: RunSettings; out: string; overwrite: boolean; verbose: boolean }> {
  const { values: v } = parse('train', args, {
    train: { type: 'string' }, val: { type: 'string' }, size: { type: 'string' }, batch: { type: 'string' }, epochs: { type: 'string' },
    freeze: { type: 'string' }, weights: { type: 'string' }, lr: { type: 'string' }, momentum: { type: 'string' }, nesterov: { type: 'boolean' },
    augment: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' }, resume: { type: 'string' }, 'class-mode': { type: 'string' },
    base: { type: 'string' }, 'freeze-until': { type: 'string' }, 'max-image-pixels': { type: 'string' }, overwrite: { type: 'boolean' },
    optimizer: { type: 'string' }, 'weight-decay': { type: 'string' }, 'lr-schedule': { type: 'string' }, 'warmup-epochs': { type: 'string' },
    clipnorm: { type: 'string' }, 'early-stopping': { type: 'string' }, 'reduce-lr-on-plateau': { type: 'string' }, 'save-best': { type: 'boolean' },
    'class-weight': { type: 'string' }, metrics: { type: 'string' },
    'fine-tune-at': { type: 'string' }, 'fine-tune-epochs': { type: 'string' }, 'fine-tune-lr': { type: 'string' },
    verbose: { type: 'boolean' },
  });
  if (v.help) return { help: true };
  if (v.resume !== undefined) {
    const others = Object.keys(v).filter((k) => k !== 'resume' && k !== 'epochs' && k !== 'verbose' && v[k as keyof typeof v] !== undefined);
    if (others.length) throw new UsageError(`train --resume takes the run's own settings; drop ${others.map((k) => `--${k}`).join(', ')} (only --epochs and --verbose may be given)`);
    return { resume: v.resume, epochs: v.epochs === undefined ? undefined : int(v.epochs, 'epochs', 10), verbose: !!v.verbose };
  }
  const trainDir = required(v.train, 'train', 'train', 'DIR (training images, one subfolder per class)');
  const valDir = required(v.val, 'val', 'train', 'DIR (validation images, one subfolder per class)');
  const base = oneOf(v.base, 'base', BASE_NAMES, 'vgg16');
  const info = BASES[base];
  const [height, width] = size(v.size, info.size);
  if (v.freeze !== undefined && v['freeze-until'] !== undefined) throw new UsageError('give --freeze or --freeze-until, not both');
  let freeze: number;
  let freezeAsked: string | undefined;
  if (v['freeze-until'] !== undefined) {
    freeze = await freezeUntilIndex(base, v['freeze-until']);
    freezeAsked = `until ${v['freeze-until']}`;
  } else if ((v.freeze ?? info.freeze) === 'all') {
    freeze = info.layers;
    freezeAsked = 'all';
  } else {
    freeze = int(v.freeze, 'freeze', info.freeze as number, 0);
    if (freeze > info.layers) throw new UsageError(`--freeze must be at most ${info.layers} (${info.builder} has ${info.layers} layers, input included), or all; got ${freeze}`);
  }
  const weights = v.weights ?? 'imagenet';
  if (weights === '') throw new UsageError("--weights must be imagenet, none, or a path");
  const momentum = num(v.momentum, 'momentum', 0, 1); // Keras's SGD refuses momentum outside [0, 1]
  if (v.nesterov && momentum === 0) throw new UsageError('--nesterov needs a --momentum above 0');
  const optimizer = oneOf(v.optimizer, 'optimizer', OPTIMIZER_NAMES, 'sgd');
  if (momentum > 0 && (optimizer === 'adam' || optimizer === 'adamw')) throw new UsageError(`--momentum is SGD's and RMSprop's; ${optimizer} has its own moments (beta1), drop --momentum`);
  if (v.nesterov && optimizer !== 'sgd') throw new UsageError('--nesterov is for --optimizer sgd');
  const lrSchedule = oneOf(v['lr-schedule'], 'lr-schedule', ['none', 'cosine', 'exponential'] as const, 'none');
  const warmupEpochs = int(v['warmup-epochs'], 'warmup-epochs', 0, 0);
  if (warmupEpochs > 0 && lrSchedule !== 'cosine') throw new UsageError('--warmup-epochs needs --lr-schedule cosine (a linear warmup from 0 to --lr, then the cosine decay)');
  if (v['reduce-lr-on-plateau'] !== undefined && lrSchedule !== 'none') throw new UsageError(`--reduce-lr-on-plateau changes a constant rate; with --lr-schedule ${lrSchedule} the schedule sets it: drop one of them`);
  const clipnorm = v.clipnorm === undefined ? null : num(v.clipnorm, 'clipnorm', 0);
  if (clipnorm === 0) throw new UsageError("--clipnorm must be above 0 (each gradient's L2 norm is clipped to it), got '0'");
  const lr = num(v.lr, 'lr', defaultLearningRate(optimizer));
  if (lr === 0) throw new UsageError("--lr must be above 0, got '0'");
  const settings: RunSettings = {
    format: 'webgpu-finetune-run', version: 1, architecture: info.architecture, base, top: TOP,
    train: await requireDir(trainDir, '--train'),
    val: await requireDir(valDir, '--val'),
    height, width,
    batch: int(v.batch, 'batch', 32),
    epochs: int(v.epochs, 'epochs', 10),
    freeze, ...(freezeAsked ? { freezeAsked } : {}), weights,
    lr,
    momentum,
    optimizer,
    weightDecay: v['weight-decay'] === undefined ? null : num(v['weight-decay'], 'weight-decay', 0),
    lrSchedule, warmupEpochs, clipnorm,
    earlyStopping: v['early-stopping'] === undefined ? null : int(v['early-stopping'], 'early-stopping', 0, 0),
    reduceLrOnPlateau: v['reduce-lr-on-plateau'] === undefined ? null : int(v['reduce-lr-on-plateau'], 'reduce-lr-on-plateau', 0, 0),
    saveBest: !!v['save-best'],
    classWeightAsked: v['class-weight'] ?? 'none',
    nesterov: !!v.nesterov,
    augment: oneOf(v.augment, 'augment', ['keras', 'none'] as const, 'keras'),
    seed: v.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : int(v.seed, 'seed', 0, 0),
    classModeAsked: oneOf(v['class-mode'], 'class-mode', ['auto', 'binary', 'categorical'] as const, 'auto'),
    maxImagePixels: v['max-image-pixels'] === 'none' ? null : int(v['max-image-pixels'], 'max-image-pixels', MAX_IMAGE_PIXELS),
  };
  const fineTune = v['fine-tune-at'];
  if (fineTune === undefined && (v['fine-tune-epochs'] !== undefined || v['fine-tune-lr'] !== undefined)) throw new UsageError('--fine-tune-epochs and --fine-tune-lr need --fine-tune-at N|LAYER (where the base is unfrozen for the second phase)');
  if (fineTune !== undefined) {
    const at = /^\d+$/.test(fineTune) ? int(fineTune, 'fine-tune-at', 0, 0) : await freezeUntilIndex(base, fineTune);
    if (at >= settings.freeze) throw new UsageError(`--fine-tune-at ${fineTune} (layer ${at}) unfreezes nothing: the first ${settings.freeze} layers are frozen; give a layer before ${settings.freeze}`);
    if (settings.earlyStopping != null || settings.reduceLrOnPlateau != null) throw new UsageError('--fine-tune-at runs two phases; --early-stopping and --reduce-lr-on-plateau are not supported with it yet (each phase would need its own): drop one of them');
    settings.fineTuneAt = at;
    settings.fineTuneAsked = fineTune;
    settings.fineTuneEpochs = int(v['fine-tune-epochs'], 'fine-tune-epochs', 10);
    // Keras's guide: a rate well below the first phase's (1e-5 with Adam there)
    settings.fineTuneLr = num(v['fine-tune-lr'], 'fine-tune-lr', lr / 10);
    if (settings.fineTuneLr === 0) throw new UsageError("--fine-tune-lr must be above 0, got '0'");
  }
  const folders = await classFolders(settings.train);
  if (folders.length < 2) throw new UsageError(`--train '${trainDir}' has ${folders.length} class subfolder${folders.length === 1 ? '' : 's'} (${folders.join(', ') || 'none'}); give one subfolder per class, at least two`);
  const mode = settings.classModeAsked === 'auto' ? (folders.length === 2 ? 'binary' : 'categorical') : settings.classModeAsked!;
  if (mode === 'binary' && folders.length !== 2) throw new UsageError(`--class-mode binary needs exactly two class folders; '${trainDir}' has ${folders.length} (${folders.join(', ')}): use --class-mode categorical`);
  settings.classMode = mode;
  settings.numClasses = folders.length;
  settings.classWeight = parseClassWeight(settings.classWeightAsked!, folders);
  settings.metrics = parseMetrics(v.metrics, mode === 'binary' ? 'binary_crossentropy' : 'categorical_crossentropy', folders.length);
  settings.top = topFor(mode, folders.length, base);
  if (settings.seed > 0xffffffff) throw new UsageError(`--seed must be below 2^32, got ${settings.seed}`);
  if (weights !== 'imagenet' && weights !== 'none') {
    const st = await stat(resolve(weights)).catch(() => null);
    if (!st) throw new UsageError(`--weights: '${weights}' does not exist; give imagenet, none, or the path of a Keras .h5 file or an exported manifest.json`);
    if (st.isFile()) await requireWeightsFile(resolve(weights), weights, st.size);
    settings.weights = resolve(weights);
  }
  const out = resolve(v.out ?? join('runs', timestamp()));
  await requireOutsideData(out, v.out ?? out, [[settings.train, '--train', trainDir], [settings.val, '--val', valDir]]);
  return { settings, out, overwrite: !!v.overwrite, verbose: !!v.verbose };
}

/**
 * --class-weight: none, balanced (computed from the training folders when the run starts) or
 * CLASS:WEIGHT pairs by index or folder name (classes not named weigh 1, as in Keras).
 */
export function parseClassWeight(asked: string, folders: string[]): Record<number, number> | 'balanced' | null {
  if (asked === 'none') return null;
  if (asked === 'balanced') return 'balanced';
  const out: Record<number, number> = {};
  for (const part of asked.split(',')) {
    const m = /^([^:]+):(.+)$/.exec(part.trim());
    const idx = m ? (/^\d+$/.test(m[1]) ? Number(m[1]) : folders.indexOf(m[1])) : -1;
    if (!m || idx < 0 || idx >= folders.length) {
      throw new UsageError(`--class-weight must be none, balanced, or CLASS:WEIGHT pairs such as 0:1,1:3 (CLASS an index 0-${folders.length - 1} or a folder name: ${folders.join(', ')}); got '${part}'`);
    }
    out[idx] = num(m[2], 'class-weight', 1);
  }
  return out;
}

/** --metrics: Keras's names, checked against the head (auc, precision, recall for two classes; top-k for more). */
export function parseMetrics(asked: string | undefined, loss: 'binary_crossentropy' | 'categorical_crossentropy', classes: number): string[] {
  if (asked === undefined) return ['acc'];
  const names = asked.split(',').map((m) => m.trim()).filter(Boolean);
  if (!names.length) throw new UsageError(`--metrics must list metrics, e.g. acc,auc; valid here: ${metricNames(loss).join(', ')}`);
  try {
    resolveMetrics(names, loss, loss === 'binary_crossentropy' ? 1 : classes);
  } catch (e) {
    throw new UsageError(`--metrics: ${(e as Error).message}`);
  }
  // accuracy is always computed (the summary reads val_acc); listed first as Keras prints it
  return ['acc', ...names.filter((n) => !['acc', 'accuracy'].includes(n))];
}

/**
 * A --weights file must be HDF5 or a manifest (JSON): anything else would be parsed as a
 * manifest and its bytes printed back. One line saying what it is not.
 */
async function requireWeightsFile(path: string, asked: string, size: number): Promise<void> {
  const fh = await open(path, 'r');
  let head: Uint8Array;
  const hdf5 = await (async () => {
    try {
      head = new Uint8Array(64);
      await fh.read(head, 0, 64, 0);
      for (const at of signatureOffsets(size).slice(0, 8)) {
        const b = new Uint8Array(8);
        await fh.read(b, 0, 8, at);
        if (HDF5_SIGNATURE.every((x, i) => b[i] === x)) return true;
      }
      return false;
    } finally {
      await fh.close();
    }
  })();
  if (hdf5) return;
  const what = 'give a Keras .h5 weights file, an exported manifest.json (or its folder), imagenet or none';
  if (/\.(h5|hdf5|keras)$/i.test(path)) throw new UsageError(`--weights '${asked}' is not an HDF5 file (it does not start with the HDF5 signature); ${what}`);
  const first = new TextDecoder().decode(head!).trimStart()[0];
  if (first !== '{') throw new UsageError(`--weights '${asked}' is neither an HDF5 file nor a manifest.json (JSON); ${what}`);
}

/** The real path of `p`, which may not exist yet: its nearest existing ancestor's, resolved, plus the rest. */
async function realPathOf(p: string): Promise<string> {
  const rest: string[] = [];
  for (let at = resolve(p); ; at = dirname(at)) {
    const real = await realpath(at).catch(() => null);
    if (real !== null) return join(real, ...rest.reverse());
    if (dirname(at) === at) return resolve(p);
    rest.push(basename(at));
  }
}

function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** The run folder inside a data folder would become a class folder of it (and break later runs). */
async function requireOutsideData(out: string, outAsked: string, data: [string, string, string][]): Promise<void> {
  const realOut = await realPathOf(out);
  for (const [dir, flag, asked] of data) {
    if (isInside(await realPathOf(dir), realOut)) {
      throw new UsageError(`--out '${outAsked}' is inside ${flag} '${asked}': the run folder would become one of its class folders; choose an --out outside the data folders`);
    }
  }
}

/** What a write error on the run folder means, as a usage error saying what to do. */
export async function runFolderError(e: unknown, out: string, canWrite: (dir: string) => Promise<void> = (d) => access(d, constants.W_OK)): Promise<Error> {
  const code = (e as NodeJS.ErrnoException).code;
  const where = `the run folder '${display(out)}'`;
  if (code === 'EEXIST' || code === 'ENOTDIR') return new UsageError(`--out '${display(out)}' is a file, or lies under one; give a folder for the run (created if missing)`);
  let why = code === 'EROFS' ? 'read-only' : code === 'EACCES' || code === 'EPERM' ? 'denied' : null;
  if (code === 'ENOENT') {
    // mkdir -p on a read-only disk can say ENOENT (a parent is missing and cannot be made): ask the nearest folder there
    let at = dirname(resolve(out));
    while (dirname(at) !== at && !(await stat(at).catch(() => null))) at = dirname(at);
    const c = await canWrite(at).then(() => null, (x: NodeJS.ErrnoException) => x.code);
    why = c === 'EROFS' ? 'read-only' : c === 'EACCES' || c === 'EPERM' ? 'denied' : null;
  }
  if (why === 'read-only') return new UsageError(`cannot create ${where}: the file system is read-only; choose an --out on a writable disk`);
  if (why === 'denied') return new UsageError(`cannot create ${where}: permission denied; choose an --out you can write to`);
  return e as Error;
}

/** Creates the run folder; its errors say what is wrong (a file in the way, a read-only disk). */
export async function makeRunFolder(out: string, makeDir: (p: string) => Promise<unknown> = (p) => mkdir(p, { recursive: true }), canWrite?: (dir: string) => Promise<void>): Promise<void> {
  try {
    await makeDir(out);
  } catch (e) {
    throw await runFolderError(e, out, canWrite);
  }
}

/** What a run writes besides settings.json, removed when a run folder is started over. */
const RUN_OUTPUTS = [CHECKPOINT_FILE, WEIGHTS_DIR, H5_FILE, HISTORY_FILE, PLOT_FILE, BEST_DIR];

export interface TrainOptions {
  /** the run folder */
  out: string;
  /** continue from this checkpoint (the run folder's) */
  resume?: Checkpoint;
  /** start over in a folder that holds a run: its checkpoint, weights and history go (once the run has started) */
  overwrite?: boolean;
  /** resume: settings.json changed (--epochs), written once the run's checks pass */
  saveSettings?: boolean;
  /** when 'imagenet' weights cannot be had: fail (train) or say so and start from random weights (demo) */
  imagenetFallback?: boolean;
  log?: (line: string) => void;
}

export interface TrainResult {
  history: RunHistory;
  interrupted: boolean;
  /** continued from a checkpoint */
  resumed: boolean;
  seconds: number;
}

async function writeHistory(out: string, history: RunHistory): Promise<void> {
  await writeFileAtomic(join(out, HISTORY_FILE), `${JSON.stringify(history, null, 1)}\n`);
  await writeFileAtomic(join(out, PLOT_FILE), historySvg(history, `webgpu-finetune: ${out}`));
}

const fmt4 = (x: number) => String(Math.round(x * 1e4) / 1e4);

const OPTIMIZER_LABELS: Record<OptimizerName, string> = { sgd: 'SGD', adam: 'Adam', adamw: 'AdamW', rmsprop: 'RMSprop' };

/** The optimizer line printed at the start: what trains, at which rate, with what. */
export function optimizerLine(s: RunSettings): string {
  const parts = [`${OPTIMIZER_LABELS[s.optimizer ?? 'sgd']} lr ${s.lr}`];
  if (s.lrSchedule && s.lrSchedule !== 'none') parts.push(`${s.lrSchedule} schedule over ${s.epochs} epochs${s.warmupEpochs ? ` after ${s.warmupEpochs} warmup` : ''}`);
  if ((s.optimizer ?? 'sgd') === 'sgd' || s.optimizer === 'rmsprop') parts.push(`momentum ${s.momentum}${s.nesterov ? ' nesterov' : ''}`);
  if (s.weightDecay != null || s.optimizer === 'adamw') parts.push(`weight decay ${s.weightDecay ?? 0.004}`);
  if (s.clipnorm != null) parts.push(`clipnorm ${s.clipnorm}`);
  if (s.earlyStopping != null) parts.push(`early stopping (val_loss, patience ${s.earlyStopping}, best weights restored)`);
  if (s.reduceLrOnPlateau != null) parts.push(`ReduceLROnPlateau (val_loss, patience ${s.reduceLrOnPlateau})`);
  if ((s.metrics ?? ['acc']).length > 1) parts.push(`metrics ${s.metrics!.join(', ')}`);
  if (s.fineTuneAt !== undefined) parts.push(`then ${s.fineTuneEpochs} fine-tuning epochs from layer ${s.fineTuneAsked} at lr ${s.fineTuneLr}`);
  return parts.join(', ');
}

/** Epochs of the whole run: the first phase's, plus the fine-tuning phase's. */
export function totalEpochs(s: RunSettings): number {
  return s.epochs + (s.fineTuneAt !== undefined ? s.fineTuneEpochs ?? 0 : 0);
}

/**
 * The second phase of Keras's transfer-learning recipe: the base's layers from fineTuneAt on
 * become trainable, the base's BatchNormalization layers stay in inference mode (the guide calls
 * the base with training=False), and the model is compiled again with a new optimizer at the
 * fine-tuning rate (no schedule), as Keras's guide recompiles.
 */
function enterFineTuning(model: Model, s: RunSettings, stepsPerEpoch: number): void {
  const baseLayers = BASES[baseOf(s)].layers;
  for (const l of model.layers.slice(s.fineTuneAt!, s.freeze)) l.trainable = true;
  setInferenceMode(model.layers.slice(0, baseLayers), true);
  const optimizer = optimizerFor({ ...s, lr: s.fineTuneLr!, lrSchedule: 'none', warmupEpochs: 0 }, stepsPerEpoch);
  model.compile({ optimizer, loss: s.classMode === 'categorical' ? 'categorical_crossentropy' : 'binary_crossentropy', metrics: s.metrics ?? ['acc'] });
}

/** EarlyStopping's best weights for a resumed run: best/ on disk (the model keeps the checkpoint's). */
async function bestWeights(out: string, model: Model, at: string): Promise<NamedTensor[] | null> {
  const dir = join(out, BEST_DIR);
  if (!(await stat(dir).catch(() => null))) return null;
  const now = await model.getWeights();
  try {
    await model.loadWeights(dir);
    return await model.getWeights();
  } catch (e) {
    throw new Error(`cannot continue from ${at}: the best epoch's weights in ${dir} do not load (${(e as Error).message}); delete ${dir} to continue without them`);
  } finally {
    await model.setWeights(now);
  }
}

/** The base's weights as asked; with imagenetFallback, random ones (said plainly) when ImageNet's cannot be had. */
async function buildModel(s: RunSettings, o: TrainOptions, log: (l: string) => void, steps: number): Promise<{ model: Model; used: string }> {
  const builder = BASES[baseOf(s)].builder;
  const referenceModel = (r: RunSettings, w: string | null) => buildReference(r, w, steps);
  setInitSeed(s.seed);
  if (o.resume || s.weights === 'none') {
    return { model: await referenceModel(s, null), used: o.resume ? 'from the checkpoint' : 'random initialisation (--weights none)' };
  }
  if (s.weights === 'imagenet') {
    try {
      const model = await withTicker(`Loading the ${builder} ImageNet weights`, () => referenceModel(s, 'imagenet'));
      return { model, used: 'imagenet' };
    } catch (e) {
      if (!o.imagenetFallback) throw new Error(`${(e as Error).message}\nOr train from random weights with --weights none.`);
      log('');
      const why = (e as Error).message.split('\n')[0].replace(`Could not get the ${builder} ImageNet weights: `, '').replace(/\.$/, '');
      log(`NOTICE: the ${builder} ImageNet weights are not available here: no cached copy, and`);
      log(`  ${why}.`);
      log('  Training continues from RANDOM initial weights (Keras\'s initialisation). This is not');
      log('  fine-tuning: the frozen layers compute random features that say almost nothing about');
      log('  the images, so expect accuracy near chance (50%). Every other part runs for real.');
      log('  For the real thing, run once with network access, or copy the weights file into the');
      log('  cache (see the README, "ImageNet weights").');
      log('');
      setInitSeed(s.seed);
      return { model: await referenceModel(s, null), used: 'random initialisation (ImageNet weights unavailable)' };
    }
  }
  const model = await withTicker(`Loading weights from ${s.weights}`, () => referenceModel(s, s.weights)).catch((e: Error) => {
    throw new Error(`cannot use --weights ${s.weights}: ${e.message}`);
  });
  return { model, used: s.weights };
}

/**
 * The training and validation generators: the reference program's (rescale 1/255) for VGG16;
 * for the other bases their preprocess_input as preprocessingFunction, without rescale.
 */
export function generators(s: RunSettings): { trainGen: ImageDataGenerator; valGen: ImageDataGenerator } {
  const pre = BASES[baseOf(s)].preprocess;
  if (!pre) return { trainGen: new ImageDataGenerator(s.augment === 'keras' ? KERAS_AUGMENT : { rescale: 1 / 255 }), valGen: new ImageDataGenerator({ rescale: 1 / 255 }) };
  const { rescale: _, ...augment } = KERAS_AUGMENT;
  return {
    trainGen: new ImageDataGenerator(s.augment === 'keras' ? { ...augment, preprocessingFunction: pre } : { preprocessingFunction: pre }),
    valGen: new ImageDataGenerator({ preprocessingFunction: pre }),
  };
}

/** The model line printed at the start: the base, its weights, what is frozen, the top. */
export function modelLine(s: RunSettings): string {
  const base = baseOf(s);
  const info = BASES[base];
  const weights = s.weightsUsed === 'imagenet' ? 'ImageNet weights' : s.weightsUsed;
  const top = topFor(s.classMode, s.numClasses, base);
  if (base === 'vgg16' && !s.freezeAsked) return `VGG16 (${weights}), first ${s.freeze} layers frozen, ${top}`;
  const frozen = s.freeze >= info.layers ? `all ${info.layers} layers frozen` : s.freeze === 0 ? `no layers frozen (all ${info.layers} train)` : `first ${s.freeze} of ${info.layers} layers frozen${s.freezeAsked?.startsWith('until ') ? ` (${s.freezeAsked.replace(/^until /, 'up to ')})` : ''}`;
  const bn = base === 'vgg16' || s.freeze === 0 ? '' : ` (frozen BatchNormalization in inference mode)`;
  return `${info.builder} (${weights}), ${frozen}${bn}, ${top}`;
}

/**
 * Runs (or resumes) a training run into `o.out`. Writes settings.json at the start, history and
 * a checkpoint after every epoch, and the final weights at the end.
 */
export async function runTraining(s: RunSettings, o: TrainOptions): Promise<TrainResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const t0 = Date.now();
  await makeRunFolder(o.out);
  const gpu = await getGpu();
  log(`adapter: ${gpu.describe()}`);
  useKernelTuning(gpu, { resuming: !!o.resume });

  const { trainGen, valGen } = generators(s);
  const flowOptions = { targetSize: [s.height, s.width] as [number, number], batchSize: s.batch, classMode: s.classMode ?? 'binary', maxImagePixels: s.maxImagePixels, log };
  let train: DirectoryIterator | null = null;
  let val: DirectoryIterator | null = null;
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      process.stderr.write('\nCtrl-C: stopping after the step in progress to save a checkpoint (Ctrl-C again quits without it)\n');
      controller.abort(new Interrupted());
    } else {
      process.stderr.write('\nCtrl-C again: quitting without a checkpoint\n');
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  try {
    train = await trainGen.flowFromDirectory(s.train, { ...flowOptions, seed: s.seed });
    val = await valGen.flowFromDirectory(s.val, { ...flowOptions, seed: (s.seed + 1) % 2 ** 32 });
    const names = (f: DirectoryIterator) => JSON.stringify(f.classIndices);
    if (names(train) !== names(val)) {
      throw new UsageError(`--train and --val must have the same class subfolders: ${Object.keys(train.classIndices).join(', ')} vs ${Object.keys(val.classIndices).join(', ')}`);
    }
    if (o.resume && s.classIndices && names(train) !== JSON.stringify(s.classIndices)) {
      throw new Error(`the class folders changed since the run started (${Object.keys(s.classIndices).join(', ')} then, ${Object.keys(train.classIndices).join(', ')} now)`);
    }
    if (o.resume && (train.samples !== s.trainSamples || val.samples !== s.valSamples)) {
      throw new Error(`the image folders changed since the run started (${s.trainSamples} training and ${s.valSamples} validation images then, ${train.samples} and ${val.samples} now): resuming would not continue the same run`);
    }

    if (s.classWeight === 'balanced') {
      // sklearn's 'balanced': n_samples / (n_classes * count), from the training folders
      const counts = Object.keys(train.classIndices).map((_, c) => train!.classes.filter((k) => k === c).length);
      const empty = counts.findIndex((n) => n === 0);
      if (empty >= 0) throw new UsageError(`--class-weight balanced: class folder '${Object.keys(train.classIndices)[empty]}' has no usable images; give weights by hand (e.g. 0:1,1:3) or remove the empty folder`);
      s.classWeight = balancedClassWeights(counts);
    }
    if (s.classWeight) log(`class weights${s.classWeightAsked === 'balanced' ? ' (balanced)' : ''}: ${Object.keys(train.classIndices).map((name, c) => `${name} ${fmt4((s.classWeight as Record<number, number>)[c] ?? 1)}`).join(', ')}`);

    const { model, used } = await buildModel(s, o, log, train.length);
    if (!o.resume) {
      if (o.overwrite) for (const f of RUN_OUTPUTS) await rm(join(o.out, f), { recursive: true, force: true });
      s.weightsUsed = used;
      s.classIndices = train.classIndices;
      s.trainSamples = train.samples;
      s.valSamples = val.samples;
      s.adapter = gpu.describe();
      s.created = new Date().toISOString();
      s.command ??= process.argv.slice(2); // a run started again keeps the command that made it
    }
    log(`model: ${modelLine(s)}; input ${s.height}x${s.width}`);
    log(`training: ${optimizerLine(s)}, batch ${s.batch}, augmentation ${s.augment}, seed ${s.seed}; run folder ${o.out}`);
    const classWeight = (s.classWeight ?? undefined) as Record<number, number> | undefined;

    // Keras callbacks, with their state in the checkpoint so a resumed run decides as the
    // uninterrupted one; the best epoch's weights (by val_loss) are kept in best/.
    const plateau = s.reduceLrOnPlateau != null ? new ReduceLROnPlateau({ monitor: 'val_loss', patience: s.reduceLrOnPlateau, verbose: 1, print: log }) : null;
    const early = s.earlyStopping != null ? new EarlyStopping({ monitor: 'val_loss', patience: s.earlyStopping, restoreBestWeights: true, verbose: 1, print: log }) : null;
    const keepBest = s.saveBest || early ? new ModelCheckpoint({ filepath: join(o.out, BEST_DIR), monitor: 'val_loss', saveBestOnly: true, verbose: s.saveBest ? 1 : 0, print: log }) : null;
    const runCallbacks = [plateau, early, keepBest].filter((c) => c !== null);
    for (const c of runCallbacks) c.setModel(model);
    let trainEnded = false;

    // Where training stands; restored from the checkpoint when resuming.
    const st: TrainState = o.resume ? structuredClone(o.resume.state) : { epoch: 0, step: 0, partial: { loss: [], acc: [], size: [], seconds: 0 }, history: emptyHistory(), trainPosition: 0, valPosition: 0 };
    const total = totalEpochs(s);
    // which phase the model is in: the checkpoint's optimizer state is the phase it was saved in
    let phase: 1 | 2 = 1;
    const fineTuning = () => {
      enterFineTuning(model, s, train!.length);
      phase = 2;
      st.history.fineTuneFrom ??= st.history.epoch.length;
      log(`fine-tuning: the base's layers from ${s.fineTuneAt} (${model.layers[s.fineTuneAt!].name}) on unfrozen, its BatchNormalization in inference mode; ${OPTIMIZER_LABELS[s.optimizer ?? 'sgd']} lr ${s.fineTuneLr}; epochs ${s.epochs + 1}-${total}`);
    };
    if (o.resume && st.phase === 2) fineTuning();
    if (o.resume) {
      const at = join(o.out, CHECKPOINT_FILE);
      await restoreCheckpoint(model, o.resume, at).catch((e: Error) => {
        throw new Error(`cannot continue from ${at}: its weights do not fit this run's model (${e.message.replace(/\.?\n\s*/g, '; ')}); restore a good copy of it, or start the run over with --overwrite`);
      });
      if (st.metrics) await model.setMetricState(st.metrics.map((a) => Float32Array.from(a)));
      const cs = st.callbacks ?? {};
      if (plateau && cs.plateau) plateau.setState(cs.plateau);
      if (keepBest && cs.bestValLoss !== undefined) keepBest.best = cs.bestValLoss ?? Infinity;
      if (early && cs.earlyStopping) early.setState(cs.earlyStopping, await bestWeights(o.out, model, at));
      train.seek(st.trainPosition);
      val.seek(st.valPosition);
      log(`resuming at epoch ${st.epoch + 1}${st.step ? `, step ${st.step + 1}/${train.length}` : ''} (checkpoint of ${o.resume.created})`);
    }
    // only now that every check has passed (a refused --resume changes nothing)
    if (!o.resume || o.saveSettings) await writeFileAtomic(join(o.out, SETTINGS_FILE), `${JSON.stringify(s, null, 1)}\n`);
    const ckptPath = join(o.out, CHECKPOINT_FILE);
    // epochs in the checkpoint on disk (null: none yet), for the message when the disk fills up
    let savedEpochs: number | null = o.resume ? o.resume.state.history.epoch.length : null;
    let epochStart = Date.now() - st.partial.seconds * 1000;
    const saveState = async () => {
      st.trainPosition = train!.position;
      st.valPosition = val!.position;
      st.partial.seconds = (Date.now() - epochStart) / 1000;
      st.phase = phase;
      st.metrics = st.step > 0 ? (await model.getMetricState()).map((a) => Array.from(a)) : undefined;
      st.callbacks = {
        ...(plateau ? { plateau: plateau.getState() } : {}),
        ...(early ? { earlyStopping: early.getState() } : {}),
        ...(keepBest ? { bestValLoss: Number.isFinite(keepBest.best) ? keepBest.best : null } : {}),
      };
      try {
        await saveCheckpoint(ckptPath, model, st);
      } catch (e) {
        if (!isDiskFull(e)) throw e;
        const kept = savedEpochs === null ? 'no earlier checkpoint exists' : `the last good checkpoint (${savedEpochs ? `epoch ${savedEpochs}` : 'from before the first epoch ended'}) is kept in ${display(ckptPath)}`;
        throw new Error(`disk full: the checkpoint after epoch ${st.history.epoch.length}${st.step ? `, step ${st.step}` : ''} could not be written; ${kept}. Free some space and continue with train --resume ${display(o.out)}`);
      }
      savedEpochs = st.history.epoch.length;
    };
    const endEpoch = async (epoch: number, logs: Logs) => {
      const h = st.history;
      h.epoch.push(epoch);
      for (const [k, v] of Object.entries(logs)) (h.history[k] ??= []).push(v);
      if (early && model.stopTraining && early.stoppedEpoch === epoch) st.stoppedEarly = epoch;
      h.seconds.push(Math.round((Date.now() - epochStart) / 10) / 100);
      st.epoch = epoch + 1;
      st.step = 0;
      st.partial = { loss: [], acc: [], size: [], seconds: 0 };
      epochStart = Date.now();
      await saveState();
      await writeHistory(o.out, h);
    };

    let interrupted = false;
    try {
      // An epoch stopped part-way (Ctrl-C) is finished step by step, its running means rebuilt
      // from the saved steps, so its log line and history entry equal the uninterrupted run's.
      if (st.step > 0 && st.epoch < total) {
        const sink = defaultSink();
        sink.write(`Epoch ${st.epoch + 1}/${st.epoch < s.epochs ? s.epochs : total}\n`);
        const bar = new Progbar(train.length, 1, sink);
        st.partial.loss.forEach((l, i) => bar.update(i + 1, { loss: l, acc: st.partial.acc[i] }, st.partial.size[i]));
        const stateful = (s.metrics ?? ['acc']).filter((m) => m !== 'acc');
        for (let step = st.step; step < train.length; step++) {
          if (controller.signal.aborted) throw controller.signal.reason;
          const b = await train.nextBatch();
          // the epoch's metrics go on accumulating from the checkpoint's (setMetricState above)
          const [loss, acc, ...rest] = await model.trainOnBatch(b.x, b.y, { classWeight, resetMetrics: false });
          st.partial.loss.push(loss);
          st.partial.acc.push(acc);
          st.partial.size.push(b.y.length);
          st.step = step + 1;
          bar.update(step + 1, { loss, acc }, b.y.length, Object.fromEntries(stateful.map((m, i) => [m, rest[i]])));
        }
        // (the stateful metrics read from the model: the checkpoint may have come after the epoch's last step)
        const logs = { ...bar.means(), ...(await model.getMetricsResult()) } as Logs;
        const trained = new Set(Object.keys(logs));
        for (const [k, v] of Object.entries(await model.evaluateLogs(val))) logs[`val_${k}`] = v;
        model.stopTraining = false;
        for (const c of runCallbacks) await c.onEpochEnd(st.epoch, logs);
        bar.finish(train.length, Object.fromEntries(Object.entries(logs).filter(([k]) => !trained.has(k))));
        await endEpoch(st.epoch, logs);
      }
      if (st.stoppedEarly !== undefined && o.resume && st.step === 0) log(`The run was stopped early by EarlyStopping after epoch ${st.stoppedEarly + 1}.`);
      // one fit per phase, as Keras's guide: the first up to --epochs, then the fine-tuning one
      for (const [p, end] of [[1, s.epochs], [2, total]] as const) {
        if (st.epoch >= end || st.stoppedEarly !== undefined) continue;
        if (p === 2 && phase === 1) fineTuning();
        await model.fit(train, {
          epochs: end,
          initialEpoch: st.epoch,
          validationData: val,
          signal: controller.signal,
          classWeight,
          callbacks: [...runCallbacks, {
            onTrainEnd: () => void (trainEnded = true),
            onEpochBegin: (epoch) => {
              st.epoch = epoch;
              st.step = 0;
              st.partial = { loss: [], acc: [], size: [], seconds: 0 };
              epochStart = Date.now();
            },
            onBatchEnd: (step, l) => {
              st.partial.loss.push(l.loss);
              st.partial.acc.push(l.acc);
              st.partial.size.push(l.size);
              st.step = step + 1;
            },
            onEpochEnd: endEpoch,
          }],
        });
      }
    } catch (e) {
      if (e instanceof NonFiniteLossError) throw await stoppedOnNaN(e, o.out, model, st);
      if (!(e instanceof Interrupted)) throw e;
      interrupted = true;
      await saveState();
      await writeHistory(o.out, st.history);
      log(`Stopped at epoch ${st.epoch + 1}, step ${st.step}/${train.length}; checkpoint saved to ${join(o.out, CHECKPOINT_FILE)}.`);
      log(`Continue with: webgpu-finetune train --resume ${display(o.out)}`);
    }
    // fit ran onTrainEnd itself (EarlyStopping restores the best weights there) unless it did not run to the end
    if (!interrupted && !trainEnded) for (const c of runCallbacks) await c.onTrainEnd();
    if (!interrupted) {
      await writeHistory(o.out, st.history);
      await withTicker('Saving the final weights', async () => {
        await model.saveWeights(join(o.out, WEIGHTS_DIR));
        await model.saveWeightsH5(join(o.out, H5_FILE));
      });
    }
    return { history: st.history, interrupted, resumed: !!o.resume, seconds: (Date.now() - t0) / 1000 };
  } finally {
    process.off('SIGINT', onSigint);
    await train?.close();
    await val?.close();
  }
}

/**
 * After a non-finite loss the model holds the last good step's weights (the update guard skipped
 * the bad one): they are written, with the history so far, and the message says where (or says
 * plainly that they were not written, and why).
 */
async function stoppedOnNaN(e: NonFiniteLossError, out: string, model: Model, st: TrainState): Promise<Error> {
  const at = `${e.epoch === null ? '' : `epoch ${e.epoch + 1}, `}step ${e.step + 1}`;
  const ckpt = st.history.epoch.length ? `the last checkpoint (epoch ${st.history.epoch.length}) is kept in ${join(display(out), CHECKPOINT_FILE)}` : 'no checkpoint was saved (the first epoch did not end)';
  let saved: string;
  try {
    await writeHistory(out, st.history);
    await model.saveWeights(join(out, WEIGHTS_DIR));
    await model.saveWeightsH5(join(out, H5_FILE));
    saved = `the weights after the last step with a finite loss are written to ${join(display(out), WEIGHTS_DIR)}/ and ${join(display(out), H5_FILE)}`;
  } catch (w) {
    saved = `the weights were NOT written (${(w as Error).message})`;
  }
  return new Error(`loss became ${e.loss} at ${at}: training stopped; ${saved}; ${ckpt}. Lower the learning rate or check the data for bad values, then start again with --overwrite`);
}

/** The closing lines: best val_acc, time, and where the files are. */
export function summary(out: string, r: TrainResult, s: RunSettings, next = true): string[] {
  const h = r.history;
  const lines: string[] = [];
  const rel = display(out);
  if (h.epoch.length) {
    let best = 0;
    h.history.val_acc.forEach((v, i) => (v > h.history.val_acc[best] ? (best = i) : null));
    const perEpoch = h.seconds.reduce((a, b) => a + b, 0) / h.seconds.length;
    lines.push(`Best val_acc ${h.history.val_acc[best].toFixed(4)} at epoch ${h.epoch[best] + 1} of ${h.epoch.length} (val_loss ${h.history.val_loss[best].toFixed(4)}); ` +
      `last: val_acc ${h.history.val_acc.at(-1)!.toFixed(4)}. Time ${fmtDuration(r.seconds)}${r.resumed ? ' this session' : ''}, ${fmtDuration(perEpoch)} per epoch.`);
    // the epoch the callbacks judge by (val_loss, as EarlyStopping and --save-best monitor it)
    let bestLoss = 0;
    h.history.val_loss.forEach((v, i) => (v < h.history.val_loss[bestLoss] ? (bestLoss = i) : null));
    const stopped = !r.interrupted && h.epoch.length < totalEpochs(s) && s.earlyStopping != null;
    lines.push(`Best val_loss ${h.history.val_loss[bestLoss].toFixed(4)} at epoch ${h.epoch[bestLoss] + 1}` +
      (stopped ? `; EarlyStopping ended the run after epoch ${h.epoch.at(-1)! + 1} of ${totalEpochs(s)}` : '') +
      (s.earlyStopping != null && !r.interrupted ? `; the final weights are epoch ${h.epoch[bestLoss] + 1}'s (restored)` : '') + '.');
  }
  lines.push(`Files in ${rel}/:`);
  lines.push(`  ${SETTINGS_FILE.padEnd(18)} settings, classes ${JSON.stringify(s.classIndices ?? {})}, adapter`);
  lines.push(`  ${HISTORY_FILE.padEnd(18)} ${Object.keys(r.history.history).join(', ') || 'loss, acc, val_loss, val_acc'} and seconds per epoch`);
  lines.push(`  ${PLOT_FILE.padEnd(18)} training curves`);
  if (!r.interrupted) {
    lines.push(`  ${(WEIGHTS_DIR + '/').padEnd(18)} final weights (manifest.json + weights.bin)`);
    lines.push(`  ${H5_FILE.padEnd(18)} final weights in Keras HDF5 (model.load_weights)`);
  }
  if (s.saveBest || s.earlyStopping != null) lines.push(`  ${(BEST_DIR + '/').padEnd(18)} the best epoch's weights by val_loss (manifest.json + weights.bin)`);
  lines.push(`  ${CHECKPOINT_FILE.padEnd(18)} last checkpoint (train --resume ${rel} continues from it)`);
  if (!r.interrupted && next) lines.push(`Next: webgpu-finetune predict --model ${rel} IMAGE_OR_FOLDER   |   webgpu-finetune evaluate --model ${rel} --data DIR`);
  return lines;
}

/**
 * --verbose: the kernel each layer ran (measured by the tuner, else src/kernels/variants.ts's
 * rules; WEBGPU_FINETUNE_KERNELS forces a family), and what the tuner did.
 */
export function kernelLines(gpu: { kernelFamily: string; kernelChoices: ReadonlyMap<string, string> }, tuning?: string): string[] {
  const lines = [`Kernels (family ${gpu.kernelFamily}${gpu.kernelFamily === 'auto' ? ': chosen per adapter and shape' : ', forced'}):`];
  for (const [layer, choice] of gpu.kernelChoices) lines.push(`  ${layer.padEnd(24)} ${choice}`);
  if (tuning) lines.push(`  ${tuning}`);
  return lines;
}

/** `train`: returns the exit code. */
export async function trainCommand(args: string[]): Promise<number> {
  const parsed = await parseTrain(args);
  if ('help' in parsed) {
    console.log(TRAIN_HELP);
    return 0;
  }
  let settings: RunSettings;
  let out: string;
  let resume: Checkpoint | undefined;
  let overwrite = false;
  let saveSettings = false;
  if ('resume' in parsed) {
    out = resolve(parsed.resume);
    const st = await stat(out).catch(() => null);
    if (!st?.isDirectory()) throw new UsageError(`--resume: run folder '${parsed.resume}' does not exist; give the --out folder of an earlier train run`);
    settings = await readSettings(out);
    // Nothing is written before every check has passed: a refused --resume leaves the folder as it was.
    const ckptPath = join(out, CHECKPOINT_FILE);
    if (await stat(ckptPath).catch(() => null)) resume = await readCheckpoint(ckptPath);
    if (parsed.epochs !== undefined) {
      if (settings.fineTuneAt !== undefined) throw new UsageError(`--resume --epochs: ${display(out)} is a two-phase run (--fine-tune-at); its epochs are fixed, resume it without --epochs`);
      if (resume && parsed.epochs < resume.state.epoch) throw new UsageError(`--epochs ${parsed.epochs} is below the ${resume.state.epoch} epochs already done`);
      saveSettings = settings.epochs !== parsed.epochs;
      settings.epochs = parsed.epochs;
    }
    await requireDir(settings.train, 'the run\'s training');
    await requireDir(settings.val, 'the run\'s validation');
    if (!resume) {
      // stopped before its first epoch ended: nothing to continue, so it starts over with its own settings
      console.log(`note: ${display(out)} has no checkpoint yet (the run stopped before its first epoch ended): starting the run again from the beginning with its stored settings`);
      overwrite = true;
    }
  } else {
    ({ settings, out, overwrite } = parsed);
    const outStat = await stat(out).catch(() => null);
    if (outStat && !outStat.isDirectory()) throw await runFolderError(Object.assign(new Error('EEXIST'), { code: 'EEXIST' }), out);
    const existing = await stat(join(out, SETTINGS_FILE)).catch(() => null);
    if (existing && !overwrite) throw new UsageError(`--out '${display(out)}' already holds a run; continue it with --resume ${display(out)}, start it over with --overwrite (its checkpoint, weights and history are deleted), or choose another --out`);
  }
  const result = await runTraining(settings, { out, resume, overwrite, saveSettings });
  console.log('');
  for (const l of summary(out, result, settings)) console.log(l);
  if (parsed.verbose) {
    const gpu = await getGpu();
    for (const l of kernelLines(gpu, useKernelTuning(gpu)?.summary())) console.log(l);
  }
  return result.interrupted ? 130 : 0;
}
