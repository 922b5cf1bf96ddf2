// The command-line tool end to end, as a user runs it (child processes of bin/webgpu-finetune.mjs)
// on a tiny generated data set: train's run folder, predict/evaluate against the same weights
// loaded in-process, resume after kill -9 and after Ctrl-C (same history and weights as an
// uninterrupted run), the demo without ImageNet weights, usage errors and missing folders.
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliRunner, type Run } from './helpers/cli.ts';
import { readCheckpoint } from '../src/cli/checkpoint.ts';
import { referenceModel } from '../src/cli/reference-model.ts';
import { processImage } from '../src/io/pipeline.ts';
import { readPngNode } from '../src/io/png-node.ts';
import { writeSampleFolders } from '../src/io/sample-data-node.ts';

const tmp = mkdtempSync(join(tmpdir(), 'wgft-cli-'));
const data = join(tmp, 'data');
const env = {
  ...process.env,
  XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp',
  // never touch the user's cache, and fail fast instead of downloading
  WEBGPU_FINETUNE_CACHE: join(tmp, 'cache'),
  WEBGPU_FINETUNE_WEIGHTS_URL: 'http://127.0.0.1:9/vgg16.h5',
};


/** Spawns the CLI; `onStdout` sees the output so far (to kill it at the right moment). */
const cli = cliRunner(env);

const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));
const trainArgs = (out: string) => ['train', '--train', join(data, 'train'), '--val', join(data, 'test'), '--size', '32x32', '--batch', '4', '--epochs', '2',
  '--weights', 'none', '--lr', '0.05', '--momentum', '0.9', '--seed', '7', '--out', out];
/** Error lines, without Dawn's harmless adapter warnings. */
const errorLines = (r: Run) => r.stderr.split('\n').filter((l) => l.trim() && !/artificially reduced/.test(l));

beforeAll(async () => {
  // 12 training images (3 steps of 4), 4 validation images
  await writeSampleFolders(data, { height: 32, width: 32, train: 12, test: 4, seed: 3 });
});

describe('webgpu-finetune train / predict / evaluate', () => {
  const A = join(tmp, 'A');
  let a: Run;

  it('trains like the reference program and writes the run folder', async () => {
    a = await cli(trainArgs(A));
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toContain('Found 12 images belonging to 2 classes.');
    expect(a.stdout).toContain('Found 4 images belonging to 2 classes.');
    expect(a.stdout).toMatch(/Epoch 1\/2\n3\/3 \[=+\] - \d+s \d+m?s\/step - loss: \d\.\d{4} - acc: \d\.\d{4} - val_loss: \d\.\d{4} - val_acc: \d\.\d{4}\n/);
    expect(a.stdout).toContain('Epoch 2/2');
    expect(a.stdout).toMatch(/Best val_acc \d\.\d{4} at epoch [12] of 2/);

    const h = json(join(A, 'history.json'));
    expect(h.epoch).toEqual([0, 1]);
    for (const k of ['loss', 'acc', 'val_loss', 'val_acc']) {
      expect(h.history[k]).toHaveLength(2);
      for (const v of h.history[k]) expect(Number.isFinite(v)).toBe(true);
    }
    expect(h.seconds).toHaveLength(2);
    // the printed epoch line shows the history's values
    expect(a.stdout).toContain(`loss: ${h.history.loss[0].toFixed(4)} - acc: ${h.history.acc[0].toFixed(4)} - val_loss: ${h.history.val_loss[0].toFixed(4)}`);

    const svg = readFileSync(join(A, 'history.svg'), 'utf8');
    expect(svg).toMatch(/^<\?xml[^]*<svg[^]*<\/svg>\s*$/);
    expect(svg.match(/<polyline /g)).toHaveLength(4); // train and val, loss and accuracy
    expect(svg).not.toMatch(/NaN|undefined/);

    const s = json(join(A, 'settings.json'));
    expect(s).toMatchObject({ height: 32, width: 32, batch: 4, epochs: 2, freeze: 15, lr: 0.05, momentum: 0.9, seed: 7, augment: 'keras', classIndices: { circles: 0, squares: 1 }, trainSamples: 12, valSamples: 4 });
    expect(s.adapter).toBeTruthy();
    expect(existsSync(join(A, 'weights', 'manifest.json')) && existsSync(join(A, 'weights', 'weights.bin'))).toBe(true);
    const ckpt = await readCheckpoint(join(A, 'checkpoint.ckpt'));
    expect(ckpt.state).toMatchObject({ epoch: 2, step: 0, trainPosition: 6, valPosition: 2 });
    expect(ckpt.iteration).toBe(6);
    expect(ckpt.velocities.length).toBeGreaterThan(0); // momentum 0.9: velocities are part of the state
    expect(readdirSync(A).filter((f) => f.endsWith('.tmp'))).toEqual([]); // atomic writes leave nothing behind
  }, 180_000);

  it('predict --json gives the probabilities of the saved weights loaded into a fresh model', async () => {
    const p = await cli(['predict', '--model', A, '--json', join(data, 'test')]);
    expect(p.code, p.stderr).toBe(0);
    const out = JSON.parse(p.stdout);
    expect(out.classes).toEqual(['circles', 'squares']);
    expect(out.predictions).toHaveLength(4);

    // Independently: the Keras .h5 into a fresh model, the images decoded as Keras's load_img does.
    const s = json(join(A, 'settings.json'));
    const model = await referenceModel(s, null);
    await model.loadWeights(join(A, 'model.h5'));
    const spec = { height: 32, width: 32, interpolation: 'nearest' as const, augment: { fillMode: 'nearest' as const, cval: 0, interpolationOrder: 1 as const, rescale: 1 / 255 } };
    const x = new Float32Array(4 * 32 * 32 * 3);
    out.predictions.forEach((r: { file: string }, i: number) => x.set(processImage(new Uint8Array(readFileSync(r.file)), spec, null, readPngNode), i * 32 * 32 * 3));
    const probs = await model.predict(x);
    out.predictions.forEach((r: { output: number; class: string; probability: number }, i: number) => {
      expect(Math.abs(r.output - probs[i])).toBeLessThan(1e-6);
      expect(r.class).toBe(probs[i] > 0.5 ? 'squares' : 'circles');
      expect(r.probability).toBeCloseTo(Math.max(probs[i], 1 - probs[i]), 6);
    });

    const table = await cli(['predict', '--model', A, join(data, 'test', 'squares')]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^image\s+class\s+probability$/);
    expect(table.stdout).toMatch(/squares_0001\.png\s+(circles|squares)\s+0\.\d{4}/);

    // evaluate: accuracy agrees with the predictions and the folder labels
    const e = await cli(['evaluate', '--model', A, '--data', join(data, 'test'), '--json']);
    expect(e.code, e.stderr).toBe(0);
    const ev = JSON.parse(e.stdout);
    const correct = out.predictions.filter((r: { file: string; class: string }) => r.file.includes(`/${r.class}/`)).length;
    expect(ev.samples).toBe(4);
    expect(ev.acc).toBeCloseTo(correct / 4, 6);
    const bce = out.predictions.reduce((sum: number, r: { file: string; output: number }) => sum - Math.log(r.file.includes('/squares/') ? r.output : 1 - r.output), 0) / 4;
    expect(ev.loss).toBeCloseTo(bce, 4);
    // the confusion matrix tallies the same predictions (rows: true class, columns: predicted)
    const counts = [[0, 0], [0, 0]];
    for (const r of out.predictions as { file: string; class: string }[]) counts[r.file.includes('/squares/') ? 1 : 0][r.class === 'squares' ? 1 : 0]++;
    expect(ev.confusion.counts).toEqual(counts);
    const recall = counts[1][1] / (counts[1][0] + counts[1][1]);
    expect(ev.perClass.squares.recall).toBeCloseTo(recall, 6);
    const text = await cli(['evaluate', '--model', A, '--data', join(data, 'test')]);
    expect(text.stdout).toMatch(/Confusion matrix \(rows: true class, columns: predicted class\):\n\s+circles\s+squares\ncircles\s+\d\s+\d\nsquares\s+\d\s+\d\n/);
    expect(text.stdout).toMatch(/class\s+precision\s+recall\s+images\ncircles\s+(-|[01]\.\d{4})\s+[01]\.\d{4}\s+2\n/);
  }, 120_000);

  it('kill -9 during epoch 2, then --resume: the same history and weights as the uninterrupted run', async () => {
    const B = join(tmp, 'B');
    let killed = false;
    const first = await cli(trainArgs(B), (text, child) => {
      // the epoch-1 checkpoint exists once epoch 2 has begun
      if (!killed && text.includes('Epoch 2/2') && existsSync(join(B, 'checkpoint.ckpt'))) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    expect(first.signal).toBe('SIGKILL');
    expect(json(join(B, 'history.json')).epoch).toEqual([0]);
    const r = await cli(['train', '--resume', B]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('resuming at epoch 2');
    const ha = json(join(A, 'history.json'));
    const hb = json(join(B, 'history.json'));
    expect(hb.epoch).toEqual(ha.epoch);
    expect(hb.history).toEqual(ha.history);
    expect(readFileSync(join(B, 'weights', 'weights.bin')).equals(readFileSync(join(A, 'weights', 'weights.bin')))).toBe(true);
  }, 180_000);

  it('Ctrl-C saves a checkpoint mid-epoch and exits 130; --resume ends where the uninterrupted run ends', async () => {
    const C = join(tmp, 'C');
    let sent = false;
    const first = await cli(trainArgs(C), (text, child) => {
      if (!sent && text.includes('Epoch 1/2')) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    expect(first.code, first.stderr).toBe(130);
    expect(first.stdout).toMatch(/Stopped at epoch 1, step [12]\/3; checkpoint saved/);
    expect(first.stdout).toContain(`train --resume ${C}`);
    const ckpt = await readCheckpoint(join(C, 'checkpoint.ckpt'));
    expect(ckpt.state.epoch).toBe(0);
    expect(ckpt.state.step).toBeGreaterThan(0); // part-way through the epoch
    expect(ckpt.state.partial.loss).toHaveLength(ckpt.state.step);
    expect(ckpt.iteration).toBe(ckpt.state.step);
    const r = await cli(['train', '--resume', C]);
    expect(r.code, r.stderr).toBe(0);
    const ha = json(join(A, 'history.json'));
    const hc = json(join(C, 'history.json'));
    expect(hc.history).toEqual(ha.history);
    expect(readFileSync(join(C, 'weights', 'weights.bin')).equals(readFileSync(join(A, 'weights', 'weights.bin')))).toBe(true);
    // the finished epoch's line shows the whole epoch's means, as the uninterrupted run printed them
    expect(r.stdout).toContain(`loss: ${ha.history.loss[0].toFixed(4)} - acc: ${ha.history.acc[0].toFixed(4)} - val_loss: ${ha.history.val_loss[0].toFixed(4)}`);
  }, 180_000);
});

describe('webgpu-finetune demo', () => {
  it('--no-pretrain: generates the sample set, says plainly that ImageNet weights are unavailable, and trains VGG16 from random weights', async () => {
    const out = join(tmp, 'demo-run');
    const demoData = join(tmp, 'demo-data');
    const r = await cli(['demo', '--no-pretrain', '--size', '32x32', '--images', '8', '--epochs', '1', '--batch', '4', '--data', demoData, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Wrote 8 training and 2 test images (32x32, circles vs squares)');
    expect(r.stdout).toContain('NOTICE: the VGG16 ImageNet weights are not available here');
    expect(r.stdout).toContain('RANDOM initial weights');
    expect(r.stdout).toMatch(/Epoch 1\/1\n2\/2 \[=+\]/);
    const files = readdirSync(join(demoData, 'train', 'circles'));
    expect(files.some((f) => f.endsWith('.png')) && files.some((f) => f.endsWith('.jpg'))).toBe(true);
    expect(json(join(out, 'settings.json')).weightsUsed).toMatch(/random/);
    expect(json(join(out, 'history.json')).epoch).toEqual([0]);
  }, 120_000);
});

describe('train --verbose', () => {
  it('ends with the kernel each layer ran; WEBGPU_FINETUNE_KERNELS=tiled forces the tiled family', async () => {
    const out = join(tmp, 'verbose-run');
    const tiled = cliRunner({ ...env, WEBGPU_FINETUNE_KERNELS: 'tiled' });
    const r = await tiled([...trainArgs(out).map((a) => (a === '2' ? '1' : a)), '--verbose']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Kernels (family tiled, forced):');
    expect(r.stdout).toMatch(/\n {2}block1_conv1 +conv2d tiled\n/);
    expect(r.stdout).toMatch(/\n {2}block5_conv3 +conv2d tiled\n/);
    expect(r.stdout).toMatch(/\n {2}dense(_\d+)? +dense tiled\n/);
    const bad = await cliRunner({ ...env, WEBGPU_FINETUNE_KERNELS: 'fastest' })(trainArgs(join(tmp, 'verbose-bad')));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/WEBGPU_FINETUNE_KERNELS is 'fastest'; it must be one of auto, tiled, subgroup, winograd/);
  }, 120_000);
});

describe('kernel tuning in a run', () => {
  it('measures each convolution shape once (default budget), says so with --verbose, and the next run reads kernel-tuning.json', async () => {
    const cache = join(tmp, 'tuning-cache');
    const rest: Record<string, string | undefined> = { ...env };
    delete rest.WEBGPU_FINETUNE_TUNE_BUDGET; // the default budget, as users get it
    const tuned = cliRunner({ ...rest, WEBGPU_FINETUNE_CACHE: cache });
    const args = (out: string) => [...trainArgs(out).map((a) => (a === '2' ? '1' : a)), '--verbose'];
    const r = await tuned(args(join(tmp, 'tuned-1')));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Kernels (family auto: chosen per adapter and shape):');
    expect(r.stdout).toMatch(/\n {2}\S+ +conv2d .*\[tuned: measured fastest of \d\]\n/);
    expect(r.stdout).toMatch(new RegExp(`\\n {2}kernel tuning: 0 shape\\(s\\) from ${join(cache, 'kernel-tuning.json').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}, \\d+ measured in [\\d.]+ s`));
    const file = json(join(cache, 'kernel-tuning.json'));
    expect(file.format).toBe('webgpu-finetune-kernel-tuning');
    const again = await tuned(args(join(tmp, 'tuned-2')));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/\n {2}\S+ +conv2d .*\[tuned: stored fastest of \d\]\n/);
    expect(again.stdout).toMatch(/\n {2}kernel tuning: [1-9]\d* shape\(s\) from /);
    const bad = await cliRunner({ ...rest, WEBGPU_FINETUNE_CACHE: cache, WEBGPU_FINETUNE_TUNE_BUDGET: 'lots' })(trainArgs(join(tmp, 'tuned-bad')));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/WEBGPU_FINETUNE_TUNE_BUDGET is 'lots'; it must be a number of seconds, 0 or more/);
  }, 240_000);
});

describe('webgpu-finetune usage errors and missing folders', () => {
  const usage = async (args: string[], pattern: RegExp) => {
    const r = await cli(args);
    expect(r.code, r.stderr).toBe(2);
    const lines = errorLines(r);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^webgpu-finetune: /);
    expect(lines[0]).toMatch(pattern);
    return lines[0];
  };

  it('bad flags and commands: exit 2, one line that says what to do', async () => {
    await usage(['frobnicate'], /unknown command 'frobnicate'.*webgpu-finetune help/);
    await usage(['train', '--val', data], /--train DIR .* is required; see 'webgpu-finetune train --help'/);
    await usage(['train', '--train', data, '--val', data, '--batch', 'many'], /--batch must be a whole number >= 1, got 'many'/);
    await usage(['train', '--train', data, '--val', data, '--size', '16x16'], /--size must be HEIGHTxWIDTH .*from 32/);
    await usage(['train', '--bogus'], /unknown option '--bogus'.*train --help/);
    await usage(['predict', '--model', data], /give at least one image file or folder/);
    await usage(['convert-weights', 'only-one-arg'], /takes FILE\.h5 OUTDIR/);
    const help = await cli(['train', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--resume DIR');
  }, 60_000);

  it('missing folders are named; a weights file that is not HDF5 is a usage error saying what to give', async () => {
    const missing = join(tmp, 'no-such-folder');
    await usage(['train', '--train', missing, '--val', data], new RegExp(`--train folder '${missing}' does not exist`));
    await usage(['evaluate', '--model', join(tmp, 'A'), '--data', missing], new RegExp(`--data folder '${missing}' does not exist`));
    await usage(['predict', '--model', missing, data], new RegExp(`run folder '${missing}' does not exist`));
    await usage(['train', '--resume', missing], new RegExp(`run folder '${missing}' does not exist`));

    const junk = join(tmp, 'junk.h5');
    writeFileSync(junk, 'not weights');
    const r = await cli(['train', '--train', join(data, 'train'), '--val', join(data, 'test'), '--size', '32x32', '--weights', junk, '--out', join(tmp, 'J')]);
    expect(r.code).toBe(2);
    expect(errorLines(r).join('\n')).toMatch(new RegExp(`--weights '${junk}' is not an HDF5 file`));
  }, 90_000);
});
