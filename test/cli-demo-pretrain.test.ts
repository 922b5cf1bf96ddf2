// The offline demo end to end, as a user runs it without network: a smaller version of the three
// phases (pretrain SmallCNN on the four other shape families, fine-tune it frozen on circles vs
// squares, the same from a random base), the run folder's files, and the pretrained base taken
// from the cache on a second run. Plus the cache's own rules, in-process.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliRunner } from './helpers/cli.ts';
import { cachedPretrainedBase, pretrainDir, pretrainedBase } from '../src/cli/pretrain.ts';
import { SmallCNN, SMALL_CNN_LAYERS } from '../src/graph/small-cnn.ts';
import { shapePretrainKey } from '../src/graph/shape-pretraining.ts';
import { readKerasH5 } from '../src/io/keras-h5-node.ts';
import { SAMPLE_GENERATOR_VERSION } from '../src/io/sample-data.ts';

const tmp = mkdtempSync(join(tmpdir(), 'wgft-demo-pre-'));
const cache = join(tmp, 'cache');
const env = {
  ...process.env,
  XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp',
  // never touch the user's cache; no ImageNet weights can be had (the offline path)
  WEBGPU_FINETUNE_CACHE: cache,
  WEBGPU_FINETUNE_WEIGHTS_URL: 'http://127.0.0.1:9/vgg16.h5',
};
const cli = cliRunner(env);
const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));
const small = ['--size', '32x32', '--images', '8', '--epochs', '1', '--batch', '4', '--pretrain-images', '16', '--pretrain-epochs', '1', '--seed', '3'];
const settings = { height: 32, width: 32, seed: 3, images: 16, valImages: 400, epochs: 1, batch: 32, lr: 0.002 };

/** The first conv kernel in a Keras .h5 file. */
async function firstKernel(path: string): Promise<Float32Array> {
  const h5 = await readKerasH5(path);
  return h5.layers.find((l) => l.layer === 'block1_conv1')!.weights[0].data;
}

describe('demo without ImageNet weights: pretrain, fine-tune, compare', () => {
  const data = join(tmp, 'data');

  it('pretrains the base, fine-tunes it and a random base, and writes all three runs', async () => {
    const out = join(tmp, 'run1');
    const r = await cli(['demo', ...small, '--data', data, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('NOTICE: the VGG16 ImageNet weights are not available here');
    expect(r.stdout).toContain('== 1/3 Pretraining SmallCNN on crescents, crosses, stars, triangles (16 generated images, 32x32, 1 epochs, Adam lr 0.002) ==');
    // Keras's progress lines in every phase: 16 images in one batch of 32, then 8 images in 2 of 4
    expect(r.stdout).toMatch(/== 1\/3[^\n]*\nEpoch 1\/1\n1\/1 \[=+\] - .* - loss: [\d.]+ - acc: [\d.]+ - val_loss: [\d.]+ - val_acc: [\d.]+\n/);
    expect(r.stdout).toMatch(/== 2\/3 Fine-tuning the pretrained base, frozen, on circles vs squares ==[\s\S]*Epoch 1\/1\n2\/2 \[=+\]/);
    expect(r.stdout).toMatch(/== 3\/3 Fine-tuning the RANDOMLY INITIALISED base, frozen, on circles vs squares ==[\s\S]*Epoch 1\/1\n2\/2 \[=+\]/);
    expect(r.stdout).toMatch(/pretrained base \(SmallCNN pretrained on crescents, crosses, stars, triangles\): +best val_acc [\d.]+\n/);
    expect(r.stdout).toMatch(/random base \(the same SmallCNN with random weights, frozen\): +best val_acc [\d.]+ +\(chance 0\.5\)/);

    // the run folder: pretraining's weights, history and curves; both fine-tuning runs' folders
    for (const f of ['model.h5', 'history.json', 'history.svg', 'pretrain.json']) expect(existsSync(join(out, 'pretrain', f)), f).toBe(true);
    const info = json(join(out, 'pretrain', 'pretrain.json'));
    expect(info).toMatchObject({ architecture: 'small_cnn', families: ['crescents', 'crosses', 'stars', 'triangles'], generator: SAMPLE_GENERATOR_VERSION, settings });
    expect(info.history.epoch).toEqual([0]);
    for (const run of ['pretrained-base', 'random-base']) {
      for (const f of ['settings.json', 'history.json', 'history.svg', 'model.h5']) expect(existsSync(join(out, run, f)), `${run}/${f}`).toBe(true);
      expect(json(join(out, run, 'history.json')).epoch).toEqual([0]);
    }
    const pre = json(join(out, 'pretrained-base', 'settings.json'));
    expect(pre).toMatchObject({ base: 'small_cnn', freeze: SMALL_CNN_LAYERS, optimizer: 'adam', lr: 0.01, weights: join(out, 'pretrain', 'model.h5') });
    expect(json(join(out, 'random-base', 'settings.json')).weightsUsed).toMatch(/random/);
    // the frozen base of the fine-tuned model is the pretrained one, unchanged (it was loaded, and did not train)
    const pretrained = await firstKernel(join(out, 'pretrain', 'model.h5'));
    expect(await firstKernel(join(out, 'pretrained-base', 'model.h5'))).toEqual(pretrained);
    expect(await firstKernel(join(out, 'random-base', 'model.h5'))).not.toEqual(pretrained);
    // and it is cached, keyed by the generator's version and the settings
    const entry = pretrainDir(settings, cache);
    expect(entry).toContain(`shapes${SAMPLE_GENERATOR_VERSION}-32x32-seed3-16img-1ep`);
    expect(readFileSync(join(entry, 'model.h5')).equals(readFileSync(join(out, 'pretrain', 'model.h5')))).toBe(true);
  }, 240_000);

  it('a second run takes the pretrained base from the cache and fine-tunes to the same result', async () => {
    const out = join(tmp, 'run2');
    const r = await cli(['demo', ...small, '--data', data, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('== 1/3 The base pretrained earlier: SmallCNN on crescents');
    expect(r.stdout).toContain(`Using the pretrained base cached in ${pretrainDir(settings, cache)}`);
    expect(r.stdout).not.toMatch(/== 1\/3[^\n]*\nEpoch 1\/1/);
    expect(readFileSync(join(out, 'pretrain', 'model.h5')).equals(readFileSync(join(tmp, 'run1', 'pretrain', 'model.h5')))).toBe(true);
    // the same base, seed and images: the same fine-tuning
    expect(json(join(out, 'pretrained-base', 'history.json')).history).toEqual(json(join(tmp, 'run1', 'pretrained-base', 'history.json')).history);
  }, 240_000);

  it('forcing either path, and contradictions, are usage errors or honoured', async () => {
    const bad = async (args: string[], pattern: RegExp) => {
      const r = await cli(['demo', ...args, '--data', data]);
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toMatch(pattern);
    };
    await bad(['--pretrain', '--no-pretrain'], /--pretrain and --no-pretrain contradict/);
    await bad(['--pretrain', '--weights', 'none'], /--pretrain pretrains its own base, so it takes no --weights/);
    await bad(['--pretrain', '--classes', '3'], /triangles are one of the pretraining families/);
    await bad(['--pretrain-images', '3'], /--pretrain-images must be a whole number >= 8/);
    const help = await cli(['demo', '--help']);
    expect(help.stdout).toMatch(/--pretrain +take the offline path/);
    expect(help.stdout).toMatch(/--no-pretrain +never pretrain/);
  }, 60_000);
});

describe('the pretrained-base cache', () => {
  it('a damaged entry is not used: the base is pretrained again and the entry rewritten', async () => {
    const s = { ...settings, images: 8, valImages: 4, seed: 9 };
    const dir = join(tmp, 'c2');
    const first = await pretrainedBase(s, { runDir: join(tmp, 'p1'), cacheDir: dir, log: () => {} });
    expect(first.cached).toBe(false);
    expect((await cachedPretrainedBase(s, dir))?.settings).toEqual(s);
    expect((await pretrainedBase(s, { runDir: join(tmp, 'p2'), cacheDir: dir })).cached).toBe(true);
    writeFileSync(join(pretrainDir(s, dir), 'pretrain.json'), '{"format": "webgpu-fine');
    expect(await cachedPretrainedBase(s, dir)).toBeNull();
    const again = await pretrainedBase(s, { runDir: join(tmp, 'p3'), cacheDir: dir, log: () => {} });
    expect(again.cached).toBe(false);
    expect(await cachedPretrainedBase(s, dir)).not.toBeNull();
    // deterministic: the same settings pretrain the same weights
    const weightsOf = async (p: string) => (await readKerasH5(p)).layers.filter((l) => l.weights.length).map((l) => [l.layer, l.weights.map((w) => [w.name, Array.from(w.data)])]);
    expect(await weightsOf(join(tmp, 'p3', 'model.h5'))).toEqual(await weightsOf(join(tmp, 'p1', 'model.h5')));
    // the weights load into SmallCNN by name
    const base = await SmallCNN({ weights: again.weights, inputShape: [32, 32, 3] });
    expect(base.layers.length).toBe(SMALL_CNN_LAYERS);
    await base.dispose();
    expect(shapePretrainKey(s)).not.toBe(shapePretrainKey({ ...s, seed: 10 }));
  }, 120_000);

  it('SmallCNN has no ImageNet weights, and says what to do', async () => {
    await expect(SmallCNN({ weights: 'imagenet' as string })).rejects.toThrow(/no ImageNet weights for this base; pretrain it/);
  });
});
