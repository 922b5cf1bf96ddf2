// train --base mobilenet_v2 end to end (child processes of bin/webgpu-finetune.mjs, as a user
// runs it) on a tiny generated set: the run folder records the base and its freezing, predict,
// evaluate and --resume rebuild the same model from it; freezing flags checked against the base.
import { mkdirSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliRunner } from './helpers/cli.ts';
import { baseLayerNames, freezeUntilIndex } from '../src/cli/reference-model.ts';
import { readSettings } from '../src/cli/train.ts';
import { loadRun } from '../src/cli/predict.ts';
import { writeSampleFolders } from '../src/io/sample-data-node.ts';

const tmp = mkdtempSync(join(tmpdir(), 'wgft-cli-base-'));
const data = join(tmp, 'data');
const env = {
  ...process.env,
  XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp',
  WEBGPU_FINETUNE_CACHE: join(tmp, 'cache'),
  WEBGPU_FINETUNE_WEIGHTS_URL: 'http://127.0.0.1:9/vgg16.h5',
};


const cli = cliRunner(env);

const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));
const base = (out: string, ...more: string[]) => ['train', '--base', 'mobilenet_v2', '--train', join(data, 'train'), '--val', join(data, 'test'), '--size', '32x32', '--batch', '4', '--epochs', '1',
  '--weights', 'none', '--seed', '5', '--out', out, ...more];

beforeAll(async () => {
  // 8 training images (2 steps of 4), 4 validation images
  await writeSampleFolders(data, { height: 32, width: 32, train: 8, test: 4, seed: 3 });
});

describe('webgpu-finetune train --base mobilenet_v2', () => {
  const M = join(tmp, 'M');

  it('trains with the Keras transfer-learning defaults and records the base in the run folder', async () => {
    const r = await cli(base(M));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('model: MobileNetV2 (random initialisation (--weights none)), all 154 layers frozen (frozen BatchNormalization in inference mode), GlobalAveragePooling2D, Dropout(0.2), Dense(1, sigmoid); input 32x32');
    expect(r.stdout).toMatch(/Epoch 1\/1\n2\/2 \[=+\]/);
    const s = json(join(M, 'settings.json'));
    expect(s).toMatchObject({ base: 'mobilenet_v2', architecture: 'mobilenet_v2-transfer', freeze: 154, freezeAsked: 'all', top: 'GlobalAveragePooling2D, Dropout(0.2), Dense(1, sigmoid)', height: 32, width: 32 });

    const p = await cli(['predict', '--model', M, '--json', join(data, 'test')]);
    expect(p.code, p.stderr).toBe(0);
    const out = JSON.parse(p.stdout);
    expect(out.classes).toEqual(['circles', 'squares']);
    expect(out.predictions).toHaveLength(4);
    for (const q of out.predictions) expect(q.output).toBeGreaterThanOrEqual(0);

    const e = await cli(['evaluate', '--model', M, '--data', join(data, 'test'), '--json']);
    expect(e.code, e.stderr).toBe(0);
    expect(JSON.parse(e.stdout).samples).toBe(4);

    // --resume rebuilds the same model from the settings (the checkpoint's weights must fit it)
    const again = await cli(['train', '--resume', M, '--epochs', '2']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('model: MobileNetV2');
    expect(json(join(M, 'history.json')).epoch).toEqual([0, 1]);
  }, 120_000);

  it('predict and evaluate use the newest of weights/ and the checkpoint, and say when it is the checkpoint', async () => {
    // a run continued after it ended and killed before its new end: the checkpoint is newer than weights/
    const notes: string[] = [];
    const weights = join(M, 'weights', 'manifest.json');
    const ckpt = join(M, 'checkpoint.ckpt');
    utimesSync(weights, new Date(2026, 0, 1), new Date(2026, 0, 1));
    utimesSync(ckpt, new Date(2026, 0, 2), new Date(2026, 0, 2));
    await loadRun(M, (l) => notes.push(l));
    expect(notes.join('\n')).toMatch(/the checkpoint \(epoch \d+.*\) is newer than the final weights in weights\/ .*using the checkpoint/);
    notes.length = 0;
    utimesSync(ckpt, new Date(2025, 11, 31), new Date(2025, 11, 31));
    await loadRun(M, (l) => notes.push(l));
    expect(notes).toEqual([]); // the final weights, silently, as before
  });

  it('--freeze-until with an unknown layer is a usage error naming some of the layers', async () => {
    const r = await cli(base(join(tmp, 'X1'), '--freeze-until', 'block_99_expand'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--freeze-until: MobileNetV2 has no layer named 'block_99_expand'; its 154 layers are .*Conv1.*out_relu/);
  }, 30_000);

  it('--freeze beyond the base is a usage error giving its layer count', async () => {
    const r = await cli(base(join(tmp, 'X2'), '--freeze', '500'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--freeze must be at most 154 (MobileNetV2 has 154 layers, input included), or all; got 500');
    const both = await cli(base(join(tmp, 'X3'), '--freeze', '10', '--freeze-until', 'Conv1'));
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--freeze or --freeze-until, not both');
  }, 30_000);

  it('--freeze-until counts the layers before the named one (Keras indexing, input included)', async () => {
    expect(await freezeUntilIndex('vgg16', 'block5_conv1')).toBe(15); // the reference program's freeze
    const names = await baseLayerNames('mobilenet_v2');
    expect(names).toHaveLength(154);
    const i = await freezeUntilIndex('mobilenet_v2', 'block_16_expand');
    expect(names[i]).toBe('block_16_expand');
  });

  it('a run folder from before --base (no base field) reads as VGG16', async () => {
    const old = join(tmp, 'old');
    mkdirSync(old);
    writeFileSync(join(old, 'settings.json'), JSON.stringify({ format: 'webgpu-finetune-run', version: 1, architecture: 'vgg16-reference', top: 'x', height: 32, width: 32, freeze: 15 }));
    const s = await readSettings(old);
    expect(s.base).toBeUndefined();
    writeFileSync(join(old, 'settings.json'), JSON.stringify({ format: 'webgpu-finetune-run', version: 1, architecture: 'vgg16-reference', base: 'resnet50' }));
    await expect(readSettings(old)).rejects.toThrow(/not a settings file of this tool/);
  });

  it("info lists every base's ImageNet file and whether it is cached", async () => {
    mkdirSync(join(tmp, 'cache'), { recursive: true });
    writeFileSync(join(tmp, 'cache', 'resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5'), 'placeholder');
    const r = await cli(['info']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/VGG16 ImageNet \(notop, 56\.2 MiB\): not cached/);
    expect(r.stdout).toContain('ResNet50 ImageNet (notop): cached (.h5, converted on first use)');
    expect(r.stdout).toContain('MobileNetV2 ImageNet (alpha, size: 1.0, 224): not cached: downloaded on first use of --weights imagenet --base mobilenet_v2');
    // the kernel tuner's store, in the same cache (test/cli-train.test.ts fills one)
    expect(r.stdout).toContain(`kernel tuning: 0 convolution shape(s) measured on this adapter, in ${join(tmp, 'cache', 'kernel-tuning.json')}; new shapes measured within 0 s per run (WEBGPU_FINETUNE_TUNE_BUDGET)`);
  });
});

