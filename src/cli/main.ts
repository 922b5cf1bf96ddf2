// The command-line tool: train / predict / evaluate / demo / convert-weights / info / bench.
// Exit codes: 0 done, 1 failure, 2 usage error (one line saying what to do), 130 Ctrl-C.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertWeights, getGpu } from '../index.ts';
import { fmtBytes, GpuError, type Gpu } from '../gpu/index.ts';
import { convVariant, gemmVariant, subgroupsUsable } from '../kernels/variants.ts';
import { defaultCacheDir, MANIFEST_FILE, VGG16_NOTOP } from '../io/weights-node.ts';
import { MOBILENET_V2_ALPHAS, MOBILENET_V2_ROWS, mobilenetV2NoTop, RESNET50_NOTOP, type ImagenetWeightsFile } from '../io/imagenet-files.ts';
import { parse, UsageError } from './args.ts';
import { tuneBudgetSeconds, useKernelTuning } from './kernel-tuning.ts';
import { DEMO_HELP, demoCommand } from './demo.ts';
import { EVALUATE_HELP, evaluateCommand, PREDICT_HELP, predictCommand } from './predict.ts';
import { withTicker } from './progress.ts';
import { TRAIN_HELP, trainCommand } from './train.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const HELP = `webgpu-finetune: fine-tune VGG16 on your image folders with WebGPU (Dawn in Node, or a browser)

Usage: webgpu-finetune <command> [options]      ('webgpu-finetune <command> --help' for its options)

Commands:
  demo              generate a small two-class image set and fine-tune on it (runs anywhere,
                    in a few minutes on a CPU)
  train             fine-tune on your folders, as the reference Keras program; checkpoints,
                    curves and weights in a run folder; --resume continues a stopped run
  predict           classify images with a trained run
  evaluate          loss and accuracy of a trained run on a folder of images
  convert-weights   convert a Keras .h5 weights file to manifest.json + weights.bin (for browsers)
  info              the WebGPU adapter, its limits and features, and the weights cache
  bench             the kernel (and training-step) benchmarks against TensorFlow.js
  help              this text
`;

const CONVERT_HELP = `webgpu-finetune convert-weights FILE.h5 OUTDIR

Converts Keras weights (HDF5: the legacy layout of model.save_weights / keras.applications, the
nested one, or Keras 3's .weights.h5) into OUTDIR/manifest.json + OUTDIR/weights.bin, the format
the browser page and VGG16({ weights: URL }) load. Weightless layers (pools) are dropped.
`;

const INFO_HELP = `webgpu-finetune info

Prints the WebGPU adapter this machine gives (vendor, architecture, fallback/compatibility), its
limits that matter for training, its features, and where ImageNet weights are cached.
`;

const BENCH_HELP = `webgpu-finetune bench [kernels|step] [options]

Runs the benchmarks that ship with the git repository (bench/), beside TensorFlow.js's WebGPU
backend on the same adapter:
  bench                   the kernel benchmarks (bench/kernels.ts), then the training-step
                          benchmark (bench/train-step.ts) where present
  bench kernels [opts]    only the kernel benchmarks, options passed through (--only, --json...)
  bench step [opts]       only the training-step benchmark, options passed through (--sizes...)
  bench [opts]            the kernel benchmarks with these options
'webgpu-finetune bench kernels --help' and 'bench step --help' list their options.
`;

/** What the kernel family setting means on this adapter (src/kernels/variants.ts decides per shape). */
function kernelsLine(gpu: Gpu): string {
  const sub = subgroupsUsable(gpu);
  const conv = convVariant(gpu, { subgroup: true, vec4: true }, 'conv2d');
  const gemm = gemmVariant(gpu, true, 'dense');
  const forced = gpu.kernelFamily === 'auto' ? 'auto (measured per shape by the kernel tuner, else these rules; WEBGPU_FINETUNE_KERNELS=tiled|subgroup|winograd|large forces one)' : `${gpu.kernelFamily} (forced by WEBGPU_FINETUNE_KERNELS)`;
  const wino = gpu.kernelFamily === 'winograd' ? ' (3x3 stride-1 forward passes by Winograd F(2x2,3x3))' : conv === 'large' ? ' (64x64 tiles where channels are multiples of 4)' : '';
  return `${forced}: convolutions ${conv}${wino}, dense GEMMs ${gemm}${conv === 'subgroup' || gemm === 'subgroup' ? ' where channels are multiples of 4, tiled elsewhere' : ''}; subgroup kernels ${sub ? 'usable' : 'not usable here (no subgroups of at least 8 lanes)'}`;
}

async function info(args: string[]): Promise<number> {
  if (parse('info', args, {}).values.help) {
    console.log(INFO_HELP);
    return 0;
  }
  const gpu = await getGpu();
  console.log(`adapter: ${gpu.describe()}`);
  const l = gpu.limits as unknown as Record<string, number>;
  for (const k of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupsPerDimension']) {
    const v = l[k];
    console.log(`  ${k.padEnd(36)} ${k.includes('Size') && v > 65536 ? fmtBytes(v) : v}`);
  }
  console.log(`features: ${[...gpu.features].sort().join(', ') || '(none)'}`);
  console.log(`kernels: ${kernelsLine(gpu)}`);
  const tuner = useKernelTuning(gpu);
  if (tuner) {
    const shapes = Object.values(await tuner.stored());
    const won = new Map<string, number>();
    for (const e of shapes) won.set(e.choice, (won.get(e.choice) ?? 0) + 1);
    const wins = [...won].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ');
    console.log(`kernel tuning: ${shapes.length} convolution shape(s) measured on this adapter${wins ? ` (fastest: ${wins})` : ''}, in ${tuner.store.where}; new shapes measured within ${tuneBudgetSeconds()} s per run (WEBGPU_FINETUNE_TUNE_BUDGET)`);
  }
  const cache = defaultCacheDir();
  console.log(`weights cache: ${cache} (set WEBGPU_FINETUNE_CACHE to move it)`);
  const state = (f: ImagenetWeightsFile) => (existsSync(join(cache, f.converted, MANIFEST_FILE)) ? 'cached (converted)' : existsSync(join(cache, f.fileName)) ? 'cached (.h5, converted on first use)' : null);
  // the files the CLI's bases use (MobileNetV2: alpha 1.0, every size Keras has), and any other MobileNetV2 file present
  const files: ImagenetWeightsFile[] = [VGG16_NOTOP, RESNET50_NOTOP, ...MOBILENET_V2_ALPHAS.flatMap((a) => MOBILENET_V2_ROWS.map((r) => mobilenetV2NoTop(a, r)))];
  for (const f of files) {
    const st = state(f);
    const isDefault = f.builder !== 'MobileNetV2' || f.fileName.includes('_1.0_224_');
    if (!st && !isDefault) continue;
    const what = f.builder === 'MobileNetV2' ? `MobileNetV2 ImageNet (${f.fileName.replace(/^.*kernels_(.*)_no_top\.h5$/, 'alpha, size: $1').replace('_', ', ')})` : `${f.builder} ImageNet (notop${f.bytes ? `, ${fmtBytes(f.bytes)}` : ''})`;
    console.log(`  ${what}: ${st ?? `not cached: downloaded on first use of --weights imagenet${f.builder === 'VGG16' ? '' : ` --base ${f.builder === 'ResNet50' ? 'resnet50' : 'mobilenet_v2'}`}`}`);
  }
  return 0;
}

async function convert(args: string[]): Promise<number> {
  const { values, positionals } = parse('convert-weights', args, {}, true);
  if (values.help) {
    console.log(CONVERT_HELP);
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError(`convert-weights takes FILE.h5 OUTDIR (got ${positionals.length} argument${positionals.length === 1 ? '' : 's'}); see 'webgpu-finetune convert-weights --help'`);
  const [file, out] = positionals;
  const st = await stat(file).catch(() => null);
  if (!st?.isFile()) throw new UsageError(`convert-weights: '${file}' does not exist or is not a file; give the path of a Keras .h5 weights file`);
  const manifest = await withTicker(`Converting ${file}`, () => convertWeights(file, out)).catch((e: Error) => {
    throw new Error(`cannot convert '${file}': ${e.message}`);
  });
  const layers = new Set(manifest.tensors.map((t) => t.layer));
  console.log(`${layers.size} layers, ${manifest.tensors.length} tensors, ${fmtBytes(manifest.byteLength)} -> ${join(out, MANIFEST_FILE)} + ${join(out, manifest.dataFile)}`);
  return 0;
}

/** Runs a bench script with tsx in the repository root; resolves to its exit code. */
function runScript(script: string, args: string[]): Promise<number> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, stdio: 'inherit' });
    child.on('error', rej);
    child.on('exit', (code, signal) => res(code ?? (signal ? 130 : 1)));
  });
}

async function bench(args: string[]): Promise<number> {
  if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) {
    console.log(BENCH_HELP);
    return 0;
  }
  const kernels = join(ROOT, 'bench', 'kernels.ts');
  const step = join(ROOT, 'bench', 'train-step.ts');
  const which = args[0] === 'kernels' || args[0] === 'step' ? args[0] : null;
  const rest = which ? args.slice(1) : args;
  const scripts = which === 'kernels' ? [kernels] : which === 'step' ? [step] : rest.length ? [kernels] : [kernels, step].filter((p) => p === kernels || existsSync(p));
  for (const s of scripts) {
    if (!existsSync(s)) throw new Error(`the benchmark ${s} is not here: the benchmarks ship with the git repository, not the npm package`);
    const code = await runScript(s, rest);
    if (code !== 0) return code;
  }
  return 0;
}

const COMMANDS: Record<string, { run: (args: string[]) => Promise<number>; help: string }> = {
  demo: { run: demoCommand, help: DEMO_HELP },
  train: { run: trainCommand, help: TRAIN_HELP },
  predict: { run: predictCommand, help: PREDICT_HELP },
  evaluate: { run: evaluateCommand, help: EVALUATE_HELP },
  'convert-weights': { run: convert, help: CONVERT_HELP },
  info: { run: info, help: INFO_HELP },
  bench: { run: bench, help: BENCH_HELP },
};

/** Runs a command; returns the exit code (2: usage error, 1: failure). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === 'help' || command === '--help' || command === '-h') {
      const topic = command === 'help' ? rest[0] : undefined;
      if (topic && COMMANDS[topic]) console.log(COMMANDS[topic].help);
      else if (!command) {
        console.error(HELP);
        console.error("webgpu-finetune: no command given; try 'webgpu-finetune demo'");
      } else console.log(HELP);
      return command ? 0 : 2;
    }
    const c = COMMANDS[command];
    if (!c) throw new UsageError(`unknown command '${command}'; commands: ${Object.keys(COMMANDS).join(', ')} (see 'webgpu-finetune help')`);
    return await c.run(rest);
  } catch (e) {
    const err = e as Error;
    if (err instanceof UsageError) {
      console.error(`webgpu-finetune: ${err.message}`);
      return 2;
    }
    // Failures: the message says what went wrong and what to do; no stack unless asked for.
    if (err instanceof GpuError || !process.env.WEBGPU_FINETUNE_DEBUG) console.error(`webgpu-finetune: ${err.message ?? String(e)}`);
    else console.error(err);
    return 1;
  } finally {
    // Dawn's device keeps the event loop alive; leave once the command is done.
    setTimeout(() => process.exit(process.exitCode ?? 0), 50).unref();
  }
}
