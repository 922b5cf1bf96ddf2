import { parseArgs } from 'node:util';
import { Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D, Model, SGD, VGG16, getGpu, memory, setInitSeed } from '../index.ts';
import { fmtBytes } from '../gpu/index.ts';
import { syntheticImages, toBatches } from './synthetic.ts';

const HELP = `webgpu-finetune: fine-tune convolutional networks on WebGPU (Dawn in Node, or a browser)

Usage: webgpu-finetune <command> [options]

Commands:
  info                 the WebGPU adapter, its limits and features
  demo                 train a network on generated two-class images (the default main job
                       until folder datasets and pretrained weights arrive)
  help                 this text

Run 'webgpu-finetune <command> --help' for a command's options.
`;

const DEMO_HELP = `webgpu-finetune demo [options]

Trains on generated images (class 1 leans red, class 0 blue) and prints Keras's progress.
  --model small|vgg16   small: a VGG-style net (2 conv blocks + Dense 64); vgg16: VGG16 with
                        Keras's random initialisation, first 15 layers frozen, the reference
                        top (Flatten, Dense 256 ReLU, Dropout 0.5, Dense 1 sigmoid)  [small]
  --size HxW            input size                                          [32x32]
  --batch N             batch size                                          [16]
  --epochs N            epochs                                              [5]
  --images N            training images (validation gets a quarter as many) [256]
  --lr X                SGD learning rate                                   [0.05]
  --momentum X          SGD momentum                                        [0.9]
  --seed N              seed for data, initial weights and dropout          [1]
`;

class UsageError extends Error {}

function int(v: string | undefined, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${name} must be a positive integer, got '${v}'`);
  return n;
}

function num(v: string | undefined, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${name} must be a number >= 0, got '${v}'`);
  return n;
}

async function info(): Promise<void> {
  const gpu = await getGpu();
  console.log(`adapter: ${gpu.describe()}`);
  const l = gpu.limits as unknown as Record<string, number>;
  for (const k of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupsPerDimension']) {
    const v = l[k];
    console.log(`  ${k.padEnd(36)} ${k.includes('Size') && v > 65536 ? fmtBytes(v) : v}`);
  }
  console.log(`features: ${[...gpu.features].sort().join(', ')}`);
}

async function demo(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: {
    model: { type: 'string' }, size: { type: 'string' }, batch: { type: 'string' }, epochs: { type: 'string' },
    images: { type: 'string' }, lr: { type: 'string' }, momentum: { type: 'string' }, seed: { type: 'string' }, help: { type: 'boolean' },
  } });
  if (values.help) {
    console.log(DEMO_HELP);
    return;
  }
  const size = (values.size ?? '32x32').split('x').map(Number);
  if (size.length !== 2 || size.some((d) => !Number.isInteger(d) || d < 8)) throw new UsageError(`--size must look like 32x32 (each at least 8), got '${values.size}'`);
  const batch = int(values.batch, 'batch', 16);
  const epochs = int(values.epochs, 'epochs', 5);
  const images = int(values.images, 'images', 256);
  const seed = int(values.seed, 'seed', 1);
  const kind = values.model ?? 'small';
  if (kind !== 'small' && kind !== 'vgg16') throw new UsageError(`--model must be small or vgg16, got '${kind}'`);
  const shape: [number, number, number] = [size[0], size[1], 3];
  setInitSeed(seed);

  const gpu = await getGpu();
  console.log(`adapter: ${gpu.describe()}`);
  let model: Model;
  if (kind === 'vgg16') {
    if (size[0] < 32 || size[1] < 32) throw new UsageError('--model vgg16 needs --size of at least 32x32');
    const base = await VGG16({ weights: null, includeTop: false, inputTensor: Input({ shape }) });
    for (const l of base.layers.slice(0, 15)) l.trainable = false;
    let x = new Flatten().apply(base.output);
    x = new Dense({ units: 256, activation: 'relu' }).apply(x);
    x = new Dropout({ rate: 0.5 }).apply(x);
    model = new Model({ inputs: base.input, outputs: new Dense({ units: 1, activation: 'sigmoid' }).apply(x) });
  } else {
    const input = Input({ shape });
    let x = new Conv2D({ filters: 16, kernelSize: 3, padding: 'same', activation: 'relu', name: 'block1_conv1' }).apply(input);
    x = new MaxPooling2D({ name: 'block1_pool' }).apply(x);
    x = new Conv2D({ filters: 32, kernelSize: 3, padding: 'same', activation: 'relu', name: 'block2_conv1' }).apply(x);
    x = new MaxPooling2D({ name: 'block2_pool' }).apply(x);
    x = new Flatten().apply(x);
    x = new Dense({ units: 64, activation: 'relu' }).apply(x);
    x = new Dropout({ rate: 0.5 }).apply(x);
    model = new Model({ inputs: input, outputs: new Dense({ units: 1, activation: 'sigmoid' }).apply(x) });
  }
  model.seed = seed;
  model.compile({ optimizer: new SGD({ learningRate: num(values.lr, 'lr', 0.05), momentum: num(values.momentum, 'momentum', 0.9) }), loss: 'binary_crossentropy', metrics: ['acc'] });
  model.summary();
  const train = syntheticImages(images, shape, seed);
  const val = syntheticImages(Math.max(1, Math.floor(images / 4)), shape, seed + 1000);
  const t0 = Date.now();
  const history = await model.fit(toBatches(train.x, train.y, batch), { epochs, validationData: toBatches(val.x, val.y, batch) });
  const best = history.history.val_acc.reduce((b, v, i, a) => (v > a[b] ? i : b), 0);
  const m = model.memory(batch);
  console.log(`best val_acc ${history.history.val_acc[best].toFixed(4)} at epoch ${best + 1}; ${((Date.now() - t0) / 1000).toFixed(1)} s; ` +
    `plan memory ${fmtBytes(m.total)} (weights ${fmtBytes(m.weights)}, gradients ${fmtBytes(m.gradients)}, activations ${fmtBytes(m.activations)}); device now ${fmtBytes(memory().numBytes)}`);
}

/** Runs a command; returns the exit code (2: usage error, 1: failure). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === 'help' || command === '--help' || command === '-h') {
      console.log(HELP);
      return command ? 0 : 2;
    }
    if (command === 'info') await info();
    else if (command === 'demo') await demo(rest);
    else throw new UsageError(`unknown command '${command}'; run 'webgpu-finetune help'`);
    return 0;
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`webgpu-finetune: ${(e as Error).message}`);
      return 2;
    }
    console.error(`webgpu-finetune: ${(e as Error).message}`);
    return 1;
  } finally {
    // Dawn keeps the process alive otherwise.
    setTimeout(() => process.exit(process.exitCode ?? 0), 50).unref();
  }
}
