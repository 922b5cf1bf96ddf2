/**
 * Training-step benchmark: the reference model (VGG16 base, blocks 1-4 frozen, Flatten, Dense
 * 256 ReLU, Dropout 0.5, Dense 1 sigmoid, SGD) in this engine, in TensorFlow.js's WebGPU
 * backend on the same adapter in the same process, and in PyTorch on the CPU (a python child
 * process running bench/lib/torch_step.py, when /usr/bin/python3 can import torch; install it
 * with scripts/install-torch.sh), steps alternating between the engines.
 *
 *   npm run bench:step -- [--sizes 60x90,32x32] [--batch 8] [--repeats 5] [--no-tfjs] [--no-torch]
 *                         [--torch-threads 2] [--no-tune] [--json FILE]
 *
 * Our kernels are the ones `train` runs: the kernel tuner's stored choices (kernel-tuning.json in
 * the weights cache; shapes not measured yet are measured first, within
 * $WEBGPU_FINETUNE_TUNE_BUDGET), or with --no-tune the fixed rules of src/kernels/variants.ts.
 *
 * Prints seconds per step (median), images/s, GFLOP/s (analytic count of the step's work),
 * percent of the adapter's measured FMA ceiling, device memory, and the ratios (each rival's
 * seconds over ours); then the plan for 240x360 batch 32 (memory by kind) without running it,
 * and a table of the three engines' times.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Conv2D, Dense, Model, fmtBytes, memory, setGpu } from '../src/index.ts';
import { FROZEN, referenceModel } from './lib/reference-model.ts';
import { useKernelTuning } from '../src/cli/kernel-tuning.ts';
import { measureCeiling } from './lib/ceiling.ts';
import { openBenchGpu } from './lib/engine.ts';
import { loadTfjs, tfjsAdapter, type Tf } from './lib/tfjs.ts';
import { median, OpTimer } from './lib/timing.ts';
import { randomData } from './lib/rows.ts';
import { DEFAULT_PYTHON, torchAvailable, TorchStep, type TorchInfo } from './lib/torch.ts';

/**
 * Multiply-adds of one step: forward of every layer, weight gradients of trainable layers, input
 * gradients of trainable-part layers after the first trainable one (the first needs none).
 */
export function stepMacs(model: Model, batch: number): number {
  const layers = model.layers.slice(1);
  const first = layers.findIndex((l) => l.trainableParams.length > 0);
  let macs = 0;
  layers.forEach((l, i) => {
    let fwd = 0;
    const inShape = l.inputs[0].shape;
    const outSize = l.output!.shape.reduce((a, b) => a * b, 1);
    if (l instanceof Conv2D) fwd = outSize * l.kernelSize[0] * l.kernelSize[1] * inShape[2];
    else if (l instanceof Dense) fwd = inShape[0] * l.units;
    macs += fwd * batch;
    if (first >= 0 && i >= first) {
      if (l.trainable) macs += fwd * batch; // weight gradient
      if (i > first) macs += fwd * batch; // input gradient
    }
  });
  return macs;
}

function tfjsReference(tf: Tf, h: number, w: number) {
  const input = tf.input({ shape: [h, w, 3] });
  let x = input as import('@tensorflow/tfjs').SymbolicTensor;
  const blocks: [number, number][] = [[64, 2], [128, 2], [256, 3], [512, 3], [512, 3]];
  for (const [filters, convs] of blocks) {
    for (let c = 0; c < convs; c++) x = tf.layers.conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(x) as typeof x;
    x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }).apply(x) as typeof x;
  }
  x = tf.layers.flatten().apply(x) as typeof x;
  x = tf.layers.dense({ units: 256, activation: 'relu' }).apply(x) as typeof x;
  x = tf.layers.dropout({ rate: 0.5 }).apply(x) as typeof x;
  const out = tf.layers.dense({ units: 1, activation: 'sigmoid' }).apply(x) as typeof x;
  const model = tf.model({ inputs: input, outputs: out });
  for (const l of model.layers.slice(0, FROZEN)) l.trainable = false;
  model.compile({ optimizer: tf.train.sgd(0.01), loss: 'binaryCrossentropy', metrics: ['acc'] });
  return model;
}

interface Result {
  size: string;
  batch: number;
  gflopPerStep: number;
  oursS: number;
  tfjsS: number | null;
  oursGflops: number;
  tfjsGflops: number | null;
  ceilingGflops: number;
  oursBytes: number;
  tfjsBytes: number | null;
  speedup: number | null;
  /** PyTorch's seconds per step (median, timed inside its process), null without torch. */
  torchS: number | null;
  torchGflops: number | null;
  /** torchS / oursS: how many times faster ours is than PyTorch. */
  torchSpeedup: number | null;
  /** PyTorch's loss at its last timed step (its weights are its own; about ln 2 at first). */
  torchLoss: number | null;
}

const HELP = 'npm run bench:step -- [--sizes 60x90,32x32] [--batch 8] [--repeats 5] [--no-tfjs] [--no-torch] [--torch-threads 2] [--torch-device cpu|cuda] [--torch-tf32] [--python PATH] [--no-tune] [--json FILE]';

/** Rival seconds over ours: "2.35x faster", or "0.20x (5.0x slower)". */
function ratio(r: number | null): string {
  if (r === null) return '-';
  return r >= 1 ? `${r.toFixed(2)}x faster` : `${r.toFixed(2)}x (${(1 / r).toFixed(1)}x slower)`;
}

/** Starts the PyTorch rival, or says why not (and how to get it) and returns null. */
async function startTorch(skip: boolean, python: string): Promise<TorchStep | null> {
  if (skip) return null;
  if (!(await torchAvailable(python))) {
    console.log(`torch: not available (${python} -c 'import torch' fails); install it with scripts/install-torch.sh (Debian's python3-torch) for a third column, or pass --no-torch. Going on without it.`);
    return null;
  }
  return new TorchStep(python);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    sizes: { type: 'string', default: '60x90,32x32' }, batch: { type: 'string', default: '8' }, repeats: { type: 'string', default: '5' },
    'no-tfjs': { type: 'boolean', default: false }, 'no-torch': { type: 'boolean', default: false }, 'no-tune': { type: 'boolean', default: false }, 'torch-threads': { type: 'string', default: '2' },
    'torch-device': { type: 'string', default: 'cpu' }, 'torch-tf32': { type: 'boolean', default: false }, python: { type: 'string', default: DEFAULT_PYTHON },
    json: { type: 'string' }, help: { type: 'boolean', default: false },
  } });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const torchThreads = Number(values['torch-threads']);
  if (!Number.isInteger(torchThreads) || torchThreads < 1) throw new Error(`--torch-threads must be an integer >= 1, got '${values['torch-threads']}'`);
  const batch = Number(values.batch);
  const repeats = Number(values.repeats);
  const sizes = values.sizes!.split(',').map((s) => s.split('x').map(Number) as [number, number]);
  const { dawn, gpu } = await openBenchGpu();
  setGpu(gpu);
  console.log(`adapter: ${gpu.describe()}`);
  const tuner = values['no-tune'] ? null : useKernelTuning(gpu);
  const ceiling = await measureCeiling(gpu, new OpTimer(gpu, 'wall'));
  console.log(`FMA ceiling: ${ceiling.gflops.toFixed(1)} GFLOP/s (vec4 FMA loop)`);
  const tf = values['no-tfjs'] ? null : await loadTfjs(dawn);
  if (tf) console.log(`rival: TensorFlow.js ${tf.version.tfjs} webgpu backend on ${tfjsAdapter(tf)} (same Dawn instance)`);
  const torchDevice = values['torch-device']!;
  const tf32 = values['torch-tf32']!;
  let torch = await startTorch(values['no-torch']!, values.python!);
  let torchInfo: TorchInfo | null = null;
  console.log(`timing: wall clock per trainOnBatch including its loss readback; median of ${repeats} after 2 warm-ups, engines alternating${torch ? '; torch: forward, backward and SGD step with loss.item(), timed inside its process (not the pipe)' : ''}\n`);
  // A torch failure costs its column, not the run's other two.
  const dropTorch = async (e: unknown) => {
    console.log(`torch: failed, going on without it: ${e instanceof Error ? e.message : String(e)}`);
    const t = torch;
    torch = null;
    await t?.quit().catch(() => {});
  };

  const results: Result[] = [];
  for (const [h, w] of sizes) {
    const model = await referenceModel(h, w);
    const per = h * w * 3;
    const x = randomData(batch * per, 1, 0, 1);
    const y = new Float32Array(batch).map((_, i) => i % 2);
    const gflop = (2 * stepMacs(model, batch)) / 1e9;
    let tfModel: ReturnType<typeof tfjsReference> | null = null;
    let tx: import('@tensorflow/tfjs').Tensor | null = null;
    let ty: import('@tensorflow/tfjs').Tensor | null = null;
    if (tf) {
      tfModel = tfjsReference(tf, h, w);
      tx = tf.tensor(x, [batch, h, w, 3]);
      ty = tf.tensor(y, [batch, 1]);
    }
    if (torch) {
      try {
        const first = torchInfo === null;
        torchInfo = await torch.init({ height: h, width: w, batch, threads: torchThreads, device: torchDevice, tf32 });
        if (first) {
          const i = torchInfo;
          const where = i.device === 'cpu' ? `${i.threads} threads (OMP_WAIT_POLICY ${i.omp_wait_policy ?? 'unset'}), oneDNN ${i.mkldnn ? 'yes' : 'no'}` : `CUDA ${i.cuda}, cuDNN ${i.cudnn}, ${i.tf32 ? 'TF32 allowed' : 'fp32 (TF32 off)'}`;
          console.log(`rival: PyTorch ${i.torch} (python ${i.python}) on ${i.device} (${i.device_name}), ${where}; NCHW, frozen part under no_grad\n`);
        }
      } catch (e) {
        await dropTorch(e);
      }
    }
    if (tuner) {
      await model.trainOnBatch(x, y); // builds the plan, measuring kernels it has not met
      console.log(`${h}x${w}: ${tuner.summary()}; ${[...gpu.kernelChoices].filter(([l]) => l.includes('conv')).map(([l, c]) => `${l} ${c.replace(/ \[tuned.*\]$/, '')}`).join('; ')}`);
    }
    const ours: number[] = [];
    const theirs: number[] = [];
    const torchTimes: number[] = [];
    let torchLoss: number | null = null;
    for (let r = 0; r < repeats + 2; r++) {
      let t0 = performance.now();
      await model.trainOnBatch(x, y);
      if (r >= 2) ours.push((performance.now() - t0) / 1000);
      if (tfModel && tx && ty) {
        t0 = performance.now();
        await tfModel.trainOnBatch(tx, ty);
        if (r >= 2) theirs.push((performance.now() - t0) / 1000);
      }
      if (torch) {
        try {
          const s = await torch.step();
          if (r >= 2) {
            torchTimes.push(s.seconds);
            torchLoss = s.loss;
          }
        } catch (e) {
          await dropTorch(e);
          torchTimes.length = 0;
        }
      }
    }
    const oursS = median(ours);
    const tfjsS = theirs.length ? median(theirs) : null;
    const torchS = torch && torchTimes.length ? median(torchTimes) : null;
    const tfMem = tf ? (tf.memory() as { numBytesInGPUAllocated?: number; numBytesAllocatedInGPU?: number; numBytesInGPU?: number }) : null;
    const tfjsBytes = tfMem ? (tfMem.numBytesAllocatedInGPU ?? tfMem.numBytesInGPUAllocated ?? tfMem.numBytesInGPU ?? null) : null;
    const res: Result = {
      size: `${h}x${w}`, batch, gflopPerStep: gflop, oursS, tfjsS, oursGflops: gflop / oursS, tfjsGflops: tfjsS ? gflop / tfjsS : null,
      ceilingGflops: ceiling.gflops, oursBytes: memory().numBytes, tfjsBytes, speedup: tfjsS ? tfjsS / oursS : null,
      torchS, torchGflops: torchS ? gflop / torchS : null, torchSpeedup: torchS ? torchS / oursS : null, torchLoss: torchS ? torchLoss : null,
    };
    results.push(res);
    const pct = (g: number) => `${((100 * g) / ceiling.gflops).toFixed(1)}%`;
    console.log(`${res.size} batch ${batch}: ${gflop.toFixed(1)} GFLOP per step`);
    console.log(`  ours:  ${oursS.toFixed(3)} s/step  ${(batch / oursS).toFixed(2)} img/s  ${res.oursGflops.toFixed(1)} GFLOP/s (${pct(res.oursGflops)} of ceiling)  device memory ${fmtBytes(res.oursBytes)}`);
    if (tfjsS !== null) {
      console.log(`  tf.js: ${tfjsS.toFixed(3)} s/step  ${(batch / tfjsS).toFixed(2)} img/s  ${res.tfjsGflops!.toFixed(1)} GFLOP/s (${pct(res.tfjsGflops!)} of ceiling)  device memory ${res.tfjsBytes === null ? '?' : fmtBytes(res.tfjsBytes)} (allocated incl. its pool)`);
    }
    if (torchS !== null) {
      console.log(`  torch: ${torchS.toFixed(3)} s/step  ${(batch / torchS).toFixed(2)} img/s  ${res.torchGflops!.toFixed(1)} GFLOP/s (${pct(res.torchGflops!)} of ceiling)  ${torchInfo!.device}, ${torchInfo!.threads} threads, loss ${torchLoss!.toFixed(4)}`);
    }
    const ratios: string[] = [];
    if (tfjsS !== null) ratios.push(`ours vs tf.js ${ratio(res.speedup)}`);
    if (torchS !== null) ratios.push(`ours vs torch ${torchInfo!.device}: ${ratio(res.torchSpeedup)}`);
    if (ratios.length) {
      const mem = tfjsS !== null ? `; memory ours/tf.js ${res.tfjsBytes ? (res.oursBytes / res.tfjsBytes).toFixed(2) : '?'}` : '';
      console.log(`  ${ratios.join('; ')}${mem}; ratios are rival s / ours s`);
    }
    await model.dispose();
    if (tfModel) {
      tfModel.dispose();
      tx!.dispose();
      ty!.dispose();
    }
  }

  const big = await referenceModel(240, 360);
  const m = big.memory(32);
  console.log(`\nplan for 240x360 batch 32 (not run): micro-batch ${m.microBatch} for the frozen prefix; weights ${fmtBytes(m.weights)}, gradients ${fmtBytes(m.gradients)}, optimizer ${fmtBytes(m.optimizer)}, activations ${fmtBytes(m.activations)}, staging ${fmtBytes(m.staging)}; total ${fmtBytes(m.total)} (kernel scratch not included)`);
  console.log(`\n${summaryTable(results, `${torchInfo?.device ?? torchDevice}${torchInfo?.tf32 ? ' tf32' : ''}`)}`);
  if (values.json) await writeFile(values.json, JSON.stringify({ adapter: gpu.describe(), torch: torchInfo, results, plan240x360b32: m }, null, 2));
  await torch?.quit();
  process.exit(0);
}

/** size, the three engines' seconds per step, and ours' speed relative to each rival. */
function summaryTable(results: readonly Result[], torchDevice: string): string {
  const s = (v: number | null) => (v === null ? '-' : v.toFixed(3));
  const x = (v: number | null) => (v === null ? '-' : `${v.toFixed(2)}x`);
  const header = ['size', 'batch', 'ours s', 'tf.js s', `torch ${torchDevice} s`, 'ours/tf.js', 'ours/torch'];
  const rows = results.map((r) => [r.size, String(r.batch), s(r.oursS), s(r.tfjsS), s(r.torchS), x(r.speedup), x(r.torchSpeedup)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), ...rows.map(line), '(ours/rival = rival s / ours s: above 1, ours is faster)'].join('\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
