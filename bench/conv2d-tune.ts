/**
 * Times conv2d kernel configurations on the VGG16 layer shapes (60x90 input, batch 8 by
 * default), alternating configurations within each repetition (the machine is shared, so
 * absolute numbers drift; compare within one run), and prints the median GFLOP/s.
 *
 *   npx tsx bench/conv2d-tune.ts [--layers block2_conv2,block3_conv2] [--pass forward,backwardInput,backwardFilter]
 *                                [--reps 5] [--batch 8] [--size 60x90] [--tfjs]
 *
 * --tfjs also times TensorFlow.js's WebGPU conv2d (+bias+relu, fused) on the same adapter.
 */
import { acquireGpu, type Gpu, type GpuOp } from '../src/gpu/index.ts';
import { Conv2dKernel, type Conv2dShape, type Conv2dTuning } from '../src/kernels/conv2d.ts';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a.startsWith('--')) args.set(a.slice(2), process.argv[i + 1]?.startsWith('--') || i + 1 >= process.argv.length ? '1' : process.argv[++i]);
}
const batch = Number(args.get('batch') ?? 8);
const [H0, W0] = (args.get('size') ?? '60x90').split('x').map(Number);
const reps = Number(args.get('reps') ?? 5);
const passes = (args.get('pass') ?? 'forward').split(',') as ('forward' | 'backwardInput' | 'backwardFilter')[];

// VGG16's convolutions: [name, input scale (1 / 2^pool), Cin, Cout].
const vgg: [string, number, number, number][] = [
  ['block1_conv1', 0, 3, 64], ['block1_conv2', 0, 64, 64],
  ['block2_conv1', 1, 64, 128], ['block2_conv2', 1, 128, 128],
  ['block3_conv1', 2, 128, 256], ['block3_conv2', 2, 256, 256],
  ['block4_conv1', 3, 256, 512], ['block4_conv2', 3, 512, 512],
  ['block5_conv1', 4, 512, 512],
];
const wanted = (args.get('layers') ?? 'block2_conv2,block3_conv2,block4_conv2').split(',');
const layers = vgg.filter(([n]) => wanted.includes(n));

function shapeOf([name, pool, cin, cout]: [string, number, number, number]): Conv2dShape {
  let h = H0;
  let w = W0;
  for (let i = 0; i < pool; i++) { h = Math.floor(h / 2); w = Math.floor(w / 2); }
  return { batch, height: h, width: w, inChannels: cin, outChannels: cout, kernelSize: [3, 3], padding: 'same', activation: 'relu', label: name };
}

/** The configurations to compare: subgroup tiles of 8*g pixels, and the workgroup-memory kernel. */
function configs(gpu: Gpu, s: Conv2dShape, pass: string): Partial<Conv2dTuning>[] {
  const sub = s.outChannels % 4 === 0 && gpu.features.has('subgroups');
  const list: Partial<Conv2dTuning>[] = [];
  if (pass === 'backwardFilter') {
    for (const splits of (args.get('splits') ?? '1,2,4').split(',').map(Number)) {
      if (sub) list.push({ variant: 'subgroup', splits });
      if (!args.has('no-tiled')) list.push({ variant: 'tiled', splits });
    }
    return list;
  }
  if (sub) for (const pixelGroups of (args.get('groups') ?? '2,3,4,5,6').split(',').map(Number)) list.push({ variant: 'subgroup', pixelGroups });
  if (!args.has('no-tiled')) list.push({ variant: 'tiled' });
  return list;
}

function describeTuning(t: Conv2dTuning, pass: string): string {
  if (pass === 'backwardFilter') return `${t.variant} splits=${t.splits}`;
  return t.variant === 'subgroup' ? `subgroup ${8 * t.pixelGroups}px x 32ch` : 'tiled 32x32 (wg memory)';
}

async function time(gpu: Gpu, op: GpuOp): Promise<number> {
  const t0 = performance.now();
  gpu.submit(op.label, op);
  await gpu.sync();
  return performance.now() - t0;
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];

async function tfjsConv(s: Conv2dShape): Promise<(() => Promise<number>) | null> {
  // TF.js's WebGPU backend registers only if navigator.gpu exists when it loads.
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  if (!(globalThis as { navigator?: unknown }).navigator) {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]) }, configurable: true });
  }
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-webgpu');
  await tf.setBackend('webgpu');
  await tf.ready();
  const x = tf.randomUniform([s.batch, s.height, s.width, s.inChannels]) as import('@tensorflow/tfjs').Tensor4D;
  const w = tf.randomUniform([3, 3, s.inChannels, s.outChannels], -0.1, 0.1) as import('@tensorflow/tfjs').Tensor4D;
  const b = tf.randomUniform([s.outChannels]) as import('@tensorflow/tfjs').Tensor1D;
  return async () => {
    const t0 = performance.now();
    const y = tf.fused.conv2d({ x, filter: w, bias: b, strides: 1, pad: 'same', activation: 'relu' });
    await y.data();
    const t = performance.now() - t0;
    y.dispose();
    return t;
  };
}

const gpu = await acquireGpu();
console.log(`adapter: ${gpu.describe()}; input ${H0}x${W0}, batch ${batch}, median of ${reps} after warm-up`);
for (const pass of passes) {
  for (const layer of layers) {
    const s = shapeOf(layer);
    const kernels = await Promise.all(configs(gpu, s, pass).map((t) => Conv2dKernel.create(gpu, s, t)));
    const k0 = kernels[0];
    const bytes = (n: number) => gpu.createBuffer('bench', n * 4);
    const x = bytes(s.batch * s.height * s.width * s.inChannels);
    const w = bytes(9 * s.inChannels * s.outChannels);
    const b = bytes(s.outChannels);
    const y = bytes(s.batch * k0.outHeight * k0.outWidth * s.outChannels);
    const dx = bytes(s.batch * s.height * s.width * s.inChannels);
    const dw = bytes(9 * s.inChannels * s.outChannels);
    const ops = kernels.map((k) => pass === 'forward' ? k.forward({ x, w, b, y })
      : pass === 'backwardInput' ? k.backwardInput({ dy: y, y, w, dx })
        : k.backwardFilter({ x, dy: y, y, dw, db: b }));
    const times: number[][] = ops.map(() => []);
    for (const op of ops) await time(gpu, op); // warm-up (first dispatch of a pipeline)
    const tfjs = pass === 'forward' && args.has('tfjs') ? await tfjsConv(s) : null;
    const tfTimes: number[] = [];
    if (tfjs) await tfjs();
    for (let r = 0; r < reps; r++) {
      for (let i = 0; i < ops.length; i++) times[i].push(await time(gpu, ops[i]));
      if (tfjs) tfTimes.push(await tfjs());
    }
    const flop = k0.flops()[pass];
    const line = (what: string, ms: number) => console.log(`${pass.padEnd(14)} ${s.label!.padEnd(13)} ${`${s.height}x${s.width}x${s.inChannels}->${s.outChannels}`.padEnd(16)} ${what.padEnd(28)} ${ms.toFixed(1).padStart(8)} ms ${(flop / ms / 1e6).toFixed(1).padStart(6)} GFLOP/s`);
    kernels.forEach((k, i) => line(describeTuning(k.tuning, pass), median(times[i])));
    if (tfjs) line('tfjs webgpu fused conv2d', median(tfTimes));
    for (const k of kernels) k.destroy();
    for (const buf of [x, w, b, y, dx, dw]) gpu.destroyBuffer(buf);
  }
}
gpu.destroy();
process.exit(0);
