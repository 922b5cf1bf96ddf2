// `demo`: the main job on a fresh machine. Writes a generated two-class image set (circles vs
// squares, src/io/sample-data.ts) as PNG/JPEG class folders, then runs `train` on it with the
// reference program's model and settings at a small size, so it finishes in minutes on a CPU.
import { join, resolve } from 'node:path';
import { writeSampleFolders } from '../io/sample-data-node.ts';
import { display, int, num, oneOf, parse, size, UsageError } from './args.ts';
import { countBar } from './progress.ts';
import { ARCHITECTURE, topFor } from './reference-model.ts';
import { SAMPLE_CLASSES, SAMPLE_CLASSES_3 } from '../io/sample-data.ts';
import { runTraining, summary, type RunSettings } from './train.ts';

export const DEMO_HELP = `webgpu-finetune demo [options]

Generates a small two-class image set (circles vs squares: random colours, sizes, positions,
textures, backgrounds and noise), writes it as PNG and JPEG files into train/ and test/ class
folders, and fine-tunes on it exactly as 'train' does: the reference program's model (VGG16 with
its first 15 layers frozen, Flatten, Dense 256 ReLU, Dropout 0.5, Dense 1 sigmoid), SGD, binary
cross-entropy, the reference augmentation. Uses the ImageNet weights when they are cached or can
be downloaded; otherwise says so and starts from random weights.

  --data DIR      where the images go (re-used when already generated)  [runs/sample-data]
  --size HxW      image size                                            [32x32]
  --images N      training images, half per class (test gets a quarter as many) [160]
  --epochs N      epochs                                                [5]
  --batch N       batch size                                            [16]
  --weights W     imagenet, none, or a path (as for train)              [imagenet]
  --lr X          SGD learning rate                                     [0.01]
  --momentum X    SGD momentum                                          [0]
  --augment A     keras or none                                         [keras]
  --classes N     2 (circles, squares) or 3 (and triangles: a categorical run with a
                  Dense 3 softmax top and categorical cross-entropy)    [2]
  --seed N        seed for the images, the run and its weights          [1]
  --out DIR       the run folder                                        [runs/demo-<time>]
`;

export async function demoCommand(args: string[]): Promise<number> {
  const { values: v } = parse('demo', args, {
    data: { type: 'string' }, size: { type: 'string' }, images: { type: 'string' }, epochs: { type: 'string' }, batch: { type: 'string' },
    weights: { type: 'string' }, lr: { type: 'string' }, momentum: { type: 'string' }, augment: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' },
    classes: { type: 'string' },
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

  const bar = countBar('Writing the sample images');
  const wrote = await writeSampleFolders(data, { height, width, train: images, test, seed, ...(classes === 3 ? { classes } : {}) }, bar).catch((e: Error) => {
    throw new UsageError(`--data: ${e.message}`);
  });
  const rel = display(data);
  console.log(`${wrote ? 'Wrote' : 'Using'} ${images} training and ${test} test images (${height}x${width}, ${names.join(' vs ')}) in ${rel}/{train,test}/{${names.join(',')}}`);

  const classMode = classes === 3 ? 'categorical' : 'binary';
  const settings: RunSettings = {
    format: 'webgpu-finetune-run', version: 1, architecture: ARCHITECTURE, top: topFor(classMode, classes),
    classModeAsked: 'auto', classMode, numClasses: classes,
    train: join(data, 'train'), val: join(data, 'test'),
    height, width,
    batch: int(v.batch, 'batch', 16),
    epochs: int(v.epochs, 'epochs', 5),
    freeze: 15,
    weights: weights === 'imagenet' || weights === 'none' ? weights : resolve(weights),
    lr: num(v.lr, 'lr', 0.01),
    momentum: num(v.momentum, 'momentum', 0, 1),
    nesterov: false,
    augment: oneOf(v.augment, 'augment', ['keras', 'none'] as const, 'keras'),
    seed,
  };
  const out = resolve(v.out ?? join('runs', `demo-${new Date().toISOString().replace(/\.\d+Z$/, '').replace(/:/g, '-')}`));
  const result = await runTraining(settings, { out, imagenetFallback: true });
  console.log('');
  for (const l of summary(out, result, settings, false)) console.log(l);
  if (settings.weightsUsed?.startsWith('random')) {
    const why = settings.weights === 'none' ? 'as asked with --weights none' : 'see the NOTICE above';
    console.log(`(These weights started random, not from ImageNet (${why}): accuracy near ${Math.round(100 / classes)}% is the expected result.)`);
  }
  if (!result.interrupted) {
    console.log(`Try: npx webgpu-finetune predict --model ${display(out)} ${rel}/test/squares`);
    console.log(`On your own folders (a GPU helps at full size): npx webgpu-finetune train --train DIR --val DIR --size 240x360 --epochs 10`);
  }
  return result.interrupted ? 130 : 0;
}
