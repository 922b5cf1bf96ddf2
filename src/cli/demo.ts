// `demo`: the main job on a fresh machine. Writes a generated two-class image set (circles vs
// squares, src/io/sample-data.ts) as PNG/JPEG class folders, then fine-tunes on it. With the
// ImageNet weights (cached, or downloaded once) it runs `train` with the reference program's
// model and settings at a small size. Without them it shows transfer learning anyway: it
// pretrains a small base on four other generated shape families (cached), fine-tunes that base
// frozen, and compares with the same fine-tuning from a random base.
import { join, resolve } from 'node:path';
import { writeSampleFolders } from '../io/sample-data-node.ts';
import { imagenetVgg16Weights } from '../io/weights-node.ts';
import { SHAPE_PRETRAIN_DEFAULTS, type ShapePretrainSettings } from '../graph/shape-pretraining.ts';
import { SMALL_CNN_LAYERS } from '../graph/small-cnn.ts';
import { display, int, num, oneOf, parse, size, UsageError } from './args.ts';
import { cachedPretrainedBase, pretrainedBase } from './pretrain.ts';
import { countBar, fmtDuration, withTicker } from './progress.ts';
import { ARCHITECTURE, BASES, topFor } from './reference-model.ts';
import { PRETRAIN_FAMILIES, SAMPLE_CLASSES, SAMPLE_CLASSES_3 } from '../io/sample-data.ts';
import { runTraining, summary, type RunSettings, type TrainResult } from './train.ts';

export const DEMO_HELP = `webgpu-finetune demo [options]

Generates a small two-class image set (circles vs squares: random colours, sizes, positions,
textures, backgrounds and noise), writes it as PNG and JPEG files into train/ and test/ class
folders, and fine-tunes a pretrained base on it. It takes one of two paths:

With ImageNet weights (cached, or downloaded once: needs network access the first time), it
runs the reference program exactly as 'train' does: VGG16 with its first 15 layers frozen,
Flatten, Dense 256 ReLU, Dropout 0.5, Dense 1 sigmoid, SGD, binary cross-entropy, the
reference augmentation.

Without them (offline), it shows transfer learning with a base it pretrains itself:
  1. pretrains SmallCNN (a small VGG-style base with BatchNormalization) on four OTHER shape
     families drawn by the same generator (${PRETRAIN_FAMILIES.join(', ')}; never circles or
     squares), with Adam, in about three minutes on 2 CPU cores; the base is cached in the
     weights cache (keyed by the generator's version, the seed and these settings), so later
     runs skip this step;
  2. fine-tunes that base, frozen, with a new top (GlobalAveragePooling2D, Dropout 0.2,
     Dense 1 sigmoid) on the circles-vs-squares folders with the same augmentation;
  3. runs the same fine-tuning from a randomly initialised frozen base, and compares the two.
The run folder then holds pretrain/, pretrained-base/ and random-base/.

  --weights W     imagenet, none, or a path (as for train)              [imagenet]
                  (imagenet when the weights cannot be had: the offline path;
                  none or a path: the reference program with those weights)
  --pretrain      take the offline path even when ImageNet weights are available
  --no-pretrain   never pretrain: without ImageNet weights, train the reference program from
                  random weights (it says so; expect accuracy near chance)
  --data DIR      where the images go (re-used when already generated)  [runs/sample-data]
  --size HxW      image size                                            [32x32]
  --images N      training images, half per class (test gets a quarter as many) [160]
  --epochs N      fine-tuning epochs                                    [5]
  --batch N       batch size                                            [16]
  --lr X          learning rate   [reference: SGD 0.01; offline: Adam 0.01 (only the top trains)]
  --momentum X    SGD momentum (reference path)                         [0]
  --augment A     keras or none                                         [keras]
  --classes N     2 (circles, squares) or 3 (and triangles: a categorical run with a
                  Dense 3 softmax top and categorical cross-entropy; triangles are a
                  pretraining family, so 3 classes never take the offline path)   [2]
  --pretrain-images N  offline: pretraining images                      [${SHAPE_PRETRAIN_DEFAULTS.images}]
  --pretrain-epochs N  offline: pretraining epochs                      [${SHAPE_PRETRAIN_DEFAULTS.epochs}]
  --seed N        seed for the images, the runs and their weights       [1]
  --out DIR       the run folder                                        [runs/demo-<time>]
`;

/** The demo's settings for a `train` run on the sample folders (the reference program's unless `base` is small_cnn). */
function runSettings(v: Record<string, string | boolean | undefined>, o: { data: string; height: number; width: number; classes: 2 | 3; seed: number; weights: string; offline: boolean }): RunSettings {
  const classMode = o.classes === 3 ? 'categorical' : 'binary';
  const common = {
    format: 'webgpu-finetune-run', version: 1, classModeAsked: 'auto', classMode, numClasses: o.classes,
    train: join(o.data, 'train'), val: join(o.data, 'test'), height: o.height, width: o.width,
    batch: int(v.batch as string | undefined, 'batch', 16),
    epochs: int(v.epochs as string | undefined, 'epochs', 5),
    weights: o.weights,
    momentum: num(v.momentum as string | undefined, 'momentum', 0, 1),
    nesterov: false,
    augment: oneOf(v.augment as string | undefined, 'augment', ['keras', 'none'] as const, 'keras'),
    seed: o.seed,
  } as const;
  if (!o.offline) return { ...common, architecture: ARCHITECTURE, top: topFor(classMode, o.classes), freeze: 15, lr: num(v.lr as string | undefined, 'lr', 0.01) };
  return {
    ...common, base: 'small_cnn', architecture: BASES.small_cnn.architecture, top: topFor(classMode, o.classes, 'small_cnn'),
    freeze: SMALL_CNN_LAYERS, freezeAsked: 'all', optimizer: 'adam', lr: num(v.lr as string | undefined, 'lr', 0.01),
  };
}

/** Whether Keras's VGG16 ImageNet weights can be had (cached, or downloaded now); the reason when not. */
async function imagenetAvailable(): Promise<{ ok: true } | { ok: false; why: string }> {
  try {
    await withTicker('Looking for the VGG16 ImageNet weights (the cache, else a download)', () => imagenetVgg16Weights());
    return { ok: true };
  } catch (e) {
    return { ok: false, why: (e as Error).message.split('\n')[0].replace('Could not get the VGG16 ImageNet weights: ', '').replace(/\.$/, '') };
  }
}

const bestOf = (r: TrainResult) => Math.max(...r.history.history.val_acc);

export async function demoCommand(args: string[]): Promise<number> {
  const { values: v } = parse('demo', args, {
    data: { type: 'string' }, size: { type: 'string' }, images: { type: 'string' }, epochs: { type: 'string' }, batch: { type: 'string' },
    weights: { type: 'string' }, lr: { type: 'string' }, momentum: { type: 'string' }, augment: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' },
    classes: { type: 'string' }, pretrain: { type: 'boolean' }, 'no-pretrain': { type: 'boolean' }, 'pretrain-images': { type: 'string' }, 'pretrain-epochs': { type: 'string' },
  });
  if (v.help) {
    console.log(DEMO_HELP);
    return 0;
  }
  const [height, width] = size(v.size, [32, 32]);
  const images = int(v.images, 'images', 160, 4);
  const seed = int(v.seed, 'seed', 1, 0);
  const weights = v.weights ?? 'imagenet';
  if (weights === '') throw new UsageError('--weights must be imagenet, none, or a path');
  const data = resolve(v.data ?? join('runs', 'sample-data'));
  const test = Math.max(2, Math.round(images / 4));
  const classes = Number(oneOf(v.classes, 'classes', ['2', '3'] as const, '2')) as 2 | 3;
  const names = classes === 3 ? SAMPLE_CLASSES_3 : SAMPLE_CLASSES;
  if (v.pretrain && v['no-pretrain']) throw new UsageError('--pretrain and --no-pretrain contradict each other; give one');
  if (v.pretrain && weights !== 'imagenet') throw new UsageError(`--pretrain pretrains its own base, so it takes no --weights (got --weights ${weights})`);
  if (v.pretrain && classes === 3) throw new UsageError('--pretrain needs --classes 2: triangles are one of the pretraining families, and the target classes must not be');
  const pretrain: ShapePretrainSettings = {
    height, width, seed, ...SHAPE_PRETRAIN_DEFAULTS,
    images: int(v['pretrain-images'], 'pretrain-images', SHAPE_PRETRAIN_DEFAULTS.images, 8),
    epochs: int(v['pretrain-epochs'], 'pretrain-epochs', SHAPE_PRETRAIN_DEFAULTS.epochs),
  };
  const out = resolve(v.out ?? join('runs', `demo-${new Date().toISOString().replace(/\.\d+Z$/, '').replace(/:/g, '-')}`));
  const t0 = Date.now();

  const bar = countBar('Writing the sample images');
  const wrote = await writeSampleFolders(data, { height, width, train: images, test, seed, ...(classes === 3 ? { classes } : {}) }, bar).catch((e: Error) => {
    throw new UsageError(`--data: ${e.message}`);
  });
  const rel = display(data);
  console.log(`${wrote ? 'Wrote' : 'Using'} ${images} training and ${test} test images (${height}x${width}, ${names.join(' vs ')}) in ${rel}/{train,test}/{${names.join(',')}}`);

  let offline = !!v.pretrain;
  if (!offline && weights === 'imagenet' && !v['no-pretrain'] && classes === 2) {
    const found = await imagenetAvailable();
    if (!found.ok) {
      offline = true;
      console.log('');
      console.log('NOTICE: the VGG16 ImageNet weights are not available here: no cached copy, and');
      console.log(`  ${found.why}.`);
      console.log('  So the demo shows transfer learning with a base it pretrains itself, offline: SmallCNN');
      console.log(`  learns to tell ${PRETRAIN_FAMILIES.join(', ')} apart (never circles or squares), then`);
      console.log('  fine-tunes, frozen, on circles vs squares; the same fine-tuning from a random base is the');
      console.log('  comparison. (With network access once, the demo fine-tunes VGG16 from ImageNet instead.)');
    }
  }
  if (!offline && classes === 3 && weights === 'imagenet' && !v['no-pretrain']) {
    console.log('(--classes 3 never takes the offline path: triangles are one of its pretraining families.)');
  }
  if (!offline) return referenceDemo(v, { data, rel, height, width, classes, seed, weights, out });
  return offlineDemo(v, { data, rel, height, width, seed, out, pretrain, t0 });
}

/** The reference program on the sample folders (ImageNet VGG16, or the weights asked for). */
async function referenceDemo(v: Record<string, string | boolean | undefined>, o: { data: string; rel: string; height: number; width: number; classes: 2 | 3; seed: number; weights: string; out: string }): Promise<number> {
  const settings = runSettings(v, { ...o, weights: o.weights === 'imagenet' || o.weights === 'none' ? o.weights : resolve(o.weights), offline: false });
  const result = await runTraining(settings, { out: o.out, imagenetFallback: true });
  console.log('');
  for (const l of summary(o.out, result, settings, false)) console.log(l);
  if (settings.weightsUsed?.startsWith('random')) {
    const why = settings.weights === 'none' ? 'as asked with --weights none' : 'see the NOTICE above';
    console.log(`(These weights started random, not from ImageNet (${why}): accuracy near ${Math.round(100 / o.classes)}% is the expected result.)`);
  }
  if (!result.interrupted) {
    console.log(`Try: npx webgpu-finetune predict --model ${display(o.out)} ${o.rel}/test/squares`);
    console.log(`On your own folders (a GPU helps at full size): npx webgpu-finetune train --train DIR --val DIR --size 240x360 --epochs 10`);
  }
  return result.interrupted ? 130 : 0;
}

/** Pretrain (or take the cached base), fine-tune it frozen, then the same from a random base. */
async function offlineDemo(v: Record<string, string | boolean | undefined>, o: { data: string; rel: string; height: number; width: number; seed: number; out: string; pretrain: ShapePretrainSettings; t0: number }): Promise<number> {
  const p = o.pretrain;
  console.log('');
  const what = `SmallCNN on ${PRETRAIN_FAMILIES.join(', ')} (${p.images} generated images, ${p.height}x${p.width}, ${p.epochs} epochs, Adam lr ${p.lr})`;
  console.log((await cachedPretrainedBase(p)) ? `== 1/3 The base pretrained earlier: ${what} ==` : `== 1/3 Pretraining ${what} ==`);
  const stop = new AbortController();
  const onSigint = () => stop.abort(new Error('interrupted'));
  process.on('SIGINT', onSigint);
  let base;
  try {
    base = await pretrainedBase(p, { runDir: join(o.out, 'pretrain'), signal: stop.signal });
  } catch (e) {
    if (stop.signal.aborted) {
      console.log('Stopped during pretraining: nothing was cached; the next demo run pretrains again.');
      return 130;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
  }
  const pretrainedAcc = base.info.valAcc.toFixed(4);
  if (base.cached) console.log(`Using the pretrained base cached in ${display(base.dir)} (pretrained in ${fmtDuration(base.info.seconds)}; val_acc ${pretrainedAcc} on held-out images of the four families).`);
  else console.log(`Pretrained in ${fmtDuration(base.info.seconds)}: val_acc ${pretrainedAcc} on held-out images of the four families (chance 0.25); cached in ${display(base.dir)}.`);

  const runs: [string, string, string][] = [
    ['2/3', 'pretrained-base', base.weights],
    ['3/3', 'random-base', 'none'],
  ];
  const results: { name: string; result: TrainResult; settings: RunSettings }[] = [];
  for (const [step, name, weights] of runs) {
    const settings = runSettings(v, { data: o.data, height: o.height, width: o.width, classes: 2, seed: o.seed, weights, offline: true });
    console.log('');
    console.log(`== ${step} Fine-tuning the ${name === 'random-base' ? 'RANDOMLY INITIALISED' : 'pretrained'} base, frozen, on circles vs squares ==`);
    const dir = join(o.out, name);
    const result = await runTraining(settings, { out: dir });
    console.log('');
    for (const l of summary(dir, result, settings, false)) console.log(l);
    if (result.interrupted) return 130;
    results.push({ name, result, settings });
  }
  const [pre, rnd] = results.map((r) => bestOf(r.result));
  console.log('');
  console.log(`Transfer learning, offline (${fmtDuration((Date.now() - o.t0) / 1000)} in all; run folder ${display(o.out)}):`);
  const labels = [`pretrained base (SmallCNN pretrained on ${PRETRAIN_FAMILIES.join(', ')}):`, 'random base (the same SmallCNN with random weights, frozen):'];
  const width = Math.max(...labels.map((l) => l.length));
  console.log(`  ${labels[0].padEnd(width)} best val_acc ${pre.toFixed(4)}`);
  console.log(`  ${labels[1].padEnd(width)} best val_acc ${rnd.toFixed(4)}   (chance 0.5)`);
  console.log('Why: only the new top trains, so it can use only what the frozen base computes. Pretraining on');
  console.log('other shapes taught the base to respond to curved and straight outlines, corners and textures;');
  console.log('those features separate circles from squares, so 160 images suffice. Random features do not.');
  console.log('With ImageNet weights (network access once), the same code fine-tunes VGG16, MobileNetV2 or');
  console.log('ResNet50 on your own folders: npx webgpu-finetune train --base mobilenet_v2 --train DIR --val DIR');
  console.log(`Try: npx webgpu-finetune predict --model ${display(join(o.out, 'pretrained-base'))} ${o.rel}/test/squares`);
  return 0;
}
