// keras.applications MobileNetV2 and ResNet50 (include_top=False) on the layer graph: layer
// names, order, hyperparameters, parameter counts and shapes as Keras builds them, the ImageNet
// file each resolves to, preprocess_input, and one tiny predict each checked against TF.js ops.
import { createServer } from 'node:net';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  BatchNormalization, Conv2D, DepthwiseConv2D, Input, MobileNetV2, Model, ReLU, ResNet50, VGG16, ZeroPadding2D,
  mobilenetV2, resnet50, vgg16, type Layer,
} from '../src/index.ts';
import { mobilenetV2NoTop, RESNET50_NOTOP, VGG16_NOTOP } from '../src/io/imagenet-files.ts';
import { h5, randomFloats, sameBits } from './helpers/weights-h5.ts';
import { tfCpu } from './helpers/tfjs.ts';
import { rng } from './helpers/random.ts';

const names = (m: Model) => m.layers.map((l) => l.name);
const totalParams = (m: Model) => m.layers.reduce((a, l) => a + l.countParams(), 0);
/** Non-trainable = params whose Param.trainable is false (BN moving mean / variance). */
const nonTrainable = (m: Model) => m.layers.reduce((a, l) => a + l.params.filter((p) => !p.trainable).reduce((b, p) => b + p.size, 0), 0);
const outShape = (m: Model) => m.outputs.shape;

// ---- An independent count of MobileNetV2's parameters from the paper's table (t, c, n, s),
// with Keras's _make_divisible and the widths Keras derives from alpha.
function makeDiv(v: number): number {
  let n = Math.max(8, Math.floor((v + 4) / 8) * 8);
  if (n < 0.9 * v) n += 8;
  return n;
}
function mobilenetV2Count(alpha: number): { total: number; nonTrainable: number; features: number } {
  const table: [number, number, number, number][] = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]];
  let total = 0;
  let nt = 0;
  const bnOf = (c: number) => {
    total += 4 * c;
    nt += 2 * c;
  };
  let cin = makeDiv(32 * alpha);
  total += 3 * 3 * 3 * cin;
  bnOf(cin);
  let first = true;
  for (const [t, c, n] of table) {
    const out = makeDiv(Math.floor(c * alpha));
    for (let i = 0; i < n; i++) {
      const e = first ? cin : t * cin;
      if (!first) {
        total += cin * e;
        bnOf(e);
      }
      total += 9 * e;
      bnOf(e);
      total += e * out;
      bnOf(out);
      cin = out;
      first = false;
    }
  }
  const last = alpha > 1 ? makeDiv(1280 * alpha) : 1280;
  total += cin * last;
  bnOf(last);
  return { total, nonTrainable: nt, features: last };
}

describe('MobileNetV2 (include_top=False)', () => {
  it("224x224: Keras's 154 layers, 2,257,984 params (34,112 non-trainable), names and order", async () => {
    const m = await MobileNetV2({ weights: null, inputShape: [224, 224, 3] });
    expect(m.name).toBe('mobilenetv2_1.00_224');
    expect(m.layers).toHaveLength(154);
    expect(totalParams(m)).toBe(2_257_984);
    expect(nonTrainable(m)).toBe(34_112);
    expect(totalParams(m) - nonTrainable(m)).toBe(2_223_872);
    expect(outShape(m)).toEqual([7, 7, 1280]);
    expect(m.layers[0].className).toBe('InputLayer');
    expect(names(m).slice(1, 10)).toEqual([
      'Conv1', 'bn_Conv1', 'Conv1_relu',
      'expanded_conv_depthwise', 'expanded_conv_depthwise_BN', 'expanded_conv_depthwise_relu',
      'expanded_conv_project', 'expanded_conv_project_BN',
      'block_1_expand',
    ]);
    const i = names(m).indexOf('block_1_expand');
    expect(names(m).slice(i, i + 12)).toEqual([
      'block_1_expand', 'block_1_expand_BN', 'block_1_expand_relu', 'block_1_pad',
      'block_1_depthwise', 'block_1_depthwise_BN', 'block_1_depthwise_relu', 'block_1_project', 'block_1_project_BN',
      'block_2_expand', 'block_2_expand_BN', 'block_2_expand_relu',
    ]);
    expect(names(m).slice(-3)).toEqual(['Conv_1', 'Conv_1_bn', 'out_relu']);
    // the Adds: stride-1 blocks whose input and output widths agree
    expect(names(m).filter((n) => n.endsWith('_add'))).toEqual([2, 4, 5, 7, 8, 9, 11, 12, 14, 15].map((b) => `block_${b}_add`));
    expect(names(m).filter((n) => n.endsWith('_pad'))).toEqual([1, 3, 6, 13].map((b) => `block_${b}_pad`));
    // block_2_add reads block_1's projection (the shortcut) then block_2's
    expect(m.getLayer('block_2_add').inputs.map((t) => t.sourceLayer.name)).toEqual(['block_1_project_BN', 'block_2_project_BN']);

    // hyperparameters, as keras.applications.mobilenet_v2
    const conv1 = m.getLayer('Conv1') as Conv2D;
    expect([conv1.filters, conv1.kernelSize, conv1.strides, conv1.padding, conv1.useBias]).toEqual([32, [3, 3], [2, 2], 'same', false]);
    for (const l of m.layers) {
      if (l instanceof BatchNormalization) expect([l.name, l.epsilon, l.momentum]).toEqual([l.name, 1e-3, 0.999]);
      if (l instanceof ReLU) expect([l.name, l.activation]).toEqual([l.name, { kind: 'relu', maxValue: 6, negativeSlope: 0, threshold: 0 }]);
      if (l instanceof Conv2D) expect([l.name, l.useBias, l.kernelSize]).toEqual([l.name, false, l.name === 'Conv1' ? [3, 3] : [1, 1]]);
      if (l instanceof DepthwiseConv2D) {
        const s2 = [1, 3, 6, 13].some((b) => l.name === `block_${b}_depthwise`);
        expect([l.name, l.useBias, l.kernelSize, l.strides, l.padding, l.depthMultiplier]).toEqual([l.name, false, [3, 3], s2 ? [2, 2] : [1, 1], s2 ? 'valid' : 'same', 1]);
      }
    }
    expect((m.getLayer('block_1_pad') as ZeroPadding2D).padding).toEqual([[0, 1], [0, 1]]); // 112x112: even
    expect((m.getLayer('block_16_project') as Conv2D).filters).toBe(320);
    expect((m.getLayer('block_1_expand') as Conv2D).filters).toBe(96); // expansion 6 x 16 channels in
    expect(m.getLayer('block_15_add').output!.shape).toEqual([7, 7, 160]);
  });

  it('a non-square odd size (97x131): correct_pad pads odd sides (1, 1), even ones (0, 1); output 4x5x1280', async () => {
    const m = await MobileNetV2({ weights: null, inputShape: [97, 131, 3] });
    expect(m.name).toBe('mobilenetv2_1.00_97');
    // Conv1 'same' s2: 49x66; block_1_pad: 49 odd -> (1, 1), 66 even -> (0, 1)
    expect(m.getLayer('Conv1_relu').output!.shape).toEqual([49, 66, 32]);
    expect((m.getLayer('block_1_pad') as ZeroPadding2D).padding).toEqual([[1, 1], [0, 1]]);
    expect(m.getLayer('block_1_pad').output!.shape).toEqual([51, 67, 96]);
    expect(m.getLayer('block_1_depthwise').output!.shape).toEqual([25, 33, 96]);
    expect((m.getLayer('block_3_pad') as ZeroPadding2D).padding).toEqual([[1, 1], [1, 1]]);
    expect((m.getLayer('block_6_pad') as ZeroPadding2D).padding).toEqual([[1, 1], [1, 1]]); // 13x17
    expect((m.getLayer('block_13_pad') as ZeroPadding2D).padding).toEqual([[1, 1], [1, 1]]); // 7x9
    expect(outShape(m)).toEqual([4, 5, 1280]);
    // each stride-2 stage is ceil(n / 2), whatever the parity
    expect(outShape(m).slice(0, 2)).toEqual([97, 131].map((n) => [1, 2, 3, 4, 5].reduce((a) => Math.ceil(a / 2), n)));
    expect(totalParams(m)).toBe(2_257_984);
  });

  it('alpha: parameter counts from the architecture table, and as published for every ImageNet alpha', async () => {
    // Published include_top=False counts (a third-party table of the Keras checkpoints; 4,363,712 also
    // appears in Keras model.summary() outputs of a frozen MobileNetV2(alpha=1.4) base).
    const published: Record<string, [number, number]> = { 0.35: [410_208, 1280], 0.5: [706_224, 1280], 0.75: [1_382_064, 1280], 1: [2_257_984, 1280], 1.3: [3_766_048, 1664], 1.4: [4_363_712, 1792] };
    for (const [a, [count, features]] of Object.entries(published)) {
      const alpha = Number(a);
      const m = await MobileNetV2({ weights: null, alpha, inputShape: [32, 32, 3] });
      const expected = mobilenetV2Count(alpha);
      expect([alpha, totalParams(m), nonTrainable(m), outShape(m)]).toEqual([alpha, expected.total, expected.nonTrainable, [1, 1, expected.features]]);
      expect([alpha, totalParams(m), outShape(m)[2]]).toEqual([alpha, count, features]);
      expect(m.layers).toHaveLength(154);
    }
    // alpha 0.35: _make_divisible rounds every width up to 8 at least (16 * 0.35 -> 8; 32 * 0.35 = 11.2 -> 16)
    const small = await MobileNetV2({ weights: null, alpha: 0.35, inputShape: [32, 32, 3] });
    expect((small.getLayer('Conv1') as Conv2D).filters).toBe(16);
    expect((small.getLayer('expanded_conv_project') as Conv2D).filters).toBe(8);
    expect((small.getLayer('block_16_project') as Conv2D).filters).toBe(112);
    expect(small.name).toBe('mobilenetv2_0.35_32');
    expect(nonTrainable(small)).toBe(14_080);
    const wide = await MobileNetV2({ weights: null, alpha: 1.4, inputShape: [32, 32, 3] });
    expect((wide.getLayer('Conv_1') as Conv2D).filters).toBe(1792);
    expect(nonTrainable(wide)).toBe(47_936);
    // any alpha without ImageNet weights, as Keras
    expect(totalParams(await MobileNetV2({ weights: null, alpha: 0.6, inputShape: [32, 32, 3] }))).toBe(mobilenetV2Count(0.6).total);
  });

  it("pooling 'avg' / 'max' append Keras's unnamed global pools; bad arguments are errors", async () => {
    const avg = await MobileNetV2({ weights: null, inputShape: [64, 64, 3], pooling: 'avg' });
    expect(avg.layers).toHaveLength(155);
    expect(avg.layers[154].className).toBe('GlobalAveragePooling2D');
    expect(avg.layers[154].name).toMatch(/^global_average_pooling2d(_\d+)?$/);
    expect(outShape(avg)).toEqual([1280]);
    const max = await MobileNetV2({ weights: null, inputShape: [64, 64, 3], pooling: 'max' });
    expect(max.layers[154].className).toBe('GlobalMaxPooling2D');
    expect(outShape(max)).toEqual([1280]);
    await expect(MobileNetV2({ weights: null, inputShape: [224, 224, 4] })).rejects.toThrow(/\[height, width, 3\]/);
    await expect(MobileNetV2({ weights: null, inputShape: [31, 224, 3] })).rejects.toThrow(/at least 32/);
    await expect(MobileNetV2({ weights: null, alpha: 0 })).rejects.toThrow(/alpha must be a number > 0/);
    await expect(MobileNetV2({ weights: 'imagenet', alpha: 0.6 })).rejects.toThrow(/alpha must be one of 0.35, 0.5, 0.75, 1, 1.3, 1.4/);
    await expect(MobileNetV2({ weights: null, includeTop: true as unknown as false })).rejects.toThrow(/only includeTop: false/);
    await expect(MobileNetV2({ weights: null, pooling: 'sum' as 'avg' })).rejects.toThrow(/pooling must be/);
    await expect(MobileNetV2({ weights: null, inputShape: [64, 64, 3], inputTensor: Input({ shape: [96, 96, 3] }) })).rejects.toThrow(/does not match/);
    const t = Input({ shape: [96, 96, 3] });
    const m = await MobileNetV2({ weights: null, inputTensor: t });
    expect(m.inputs).toBe(t);
    expect(m.name).toBe('mobilenetv2_1.00_96');
  });
});

describe('ResNet50 (include_top=False)', () => {
  it("224x224: Keras's 175 layers, 23,587,712 params (53,120 non-trainable), names and order", async () => {
    const m = await ResNet50({ weights: null, inputShape: [224, 224, 3] });
    expect(m.name).toBe('resnet50');
    expect(m.layers).toHaveLength(175);
    expect(totalParams(m)).toBe(23_587_712);
    expect(nonTrainable(m)).toBe(53_120);
    expect(totalParams(m) - nonTrainable(m)).toBe(23_534_592);
    expect(outShape(m)).toEqual([7, 7, 2048]);
    expect(m.layers[0].className).toBe('InputLayer');
    expect(names(m).slice(1, 16)).toEqual([
      'conv1_pad', 'conv1_conv', 'conv1_bn', 'conv1_relu', 'pool1_pad', 'pool1_pool',
      'conv2_block1_1_conv', 'conv2_block1_1_bn', 'conv2_block1_1_relu',
      'conv2_block1_2_conv', 'conv2_block1_2_bn', 'conv2_block1_2_relu',
      // the documented order fact: the shortcut conv comes after _2_relu, its BN after _3_conv
      'conv2_block1_0_conv', 'conv2_block1_3_conv', 'conv2_block1_0_bn',
    ]);
    expect(names(m).slice(16, 20)).toEqual(['conv2_block1_3_bn', 'conv2_block1_add', 'conv2_block1_out', 'conv2_block2_1_conv']);
    expect(names(m).slice(-3)).toEqual(['conv5_block3_3_bn', 'conv5_block3_add', 'conv5_block3_out']);
    // the same interleaving in every stack's first block
    for (const s of [3, 4, 5]) {
      const i = names(m).indexOf(`conv${s}_block1_2_relu`);
      expect(names(m).slice(i, i + 7)).toEqual([`conv${s}_block1_2_relu`, `conv${s}_block1_0_conv`, `conv${s}_block1_3_conv`, `conv${s}_block1_0_bn`, `conv${s}_block1_3_bn`, `conv${s}_block1_add`, `conv${s}_block1_out`]);
    }
    const blocks = (s: number) => names(m).filter((n) => n.startsWith(`conv${s}_`) && n.endsWith('_add')).length;
    expect([2, 3, 4, 5].map(blocks)).toEqual([3, 4, 6, 3]);
    expect(names(m).filter((n) => n.endsWith('_0_conv'))).toEqual([2, 3, 4, 5].map((s) => `conv${s}_block1_0_conv`));
    expect(m.getLayer('conv2_block1_add').inputs.map((t) => t.sourceLayer.name)).toEqual(['conv2_block1_0_bn', 'conv2_block1_3_bn']);
    expect(m.getLayer('conv2_block2_add').inputs.map((t) => t.sourceLayer.name)).toEqual(['conv2_block1_out', 'conv2_block2_3_bn']);

    // hyperparameters, as keras.applications.resnet
    expect((m.getLayer('conv1_pad') as ZeroPadding2D).padding).toEqual([[3, 3], [3, 3]]);
    expect((m.getLayer('pool1_pad') as ZeroPadding2D).padding).toEqual([[1, 1], [1, 1]]);
    const c1 = m.getLayer('conv1_conv') as Conv2D;
    expect([c1.filters, c1.kernelSize, c1.strides, c1.padding, c1.useBias]).toEqual([64, [7, 7], [2, 2], 'valid', true]);
    const pool = m.getLayer('pool1_pool') as unknown as { poolSize: number[]; strides: number[]; padding: string };
    expect([pool.poolSize, pool.strides, pool.padding]).toEqual([[3, 3], [2, 2], 'valid']);
    expect(m.getLayer('pool1_pool').output!.shape).toEqual([56, 56, 64]);
    for (const l of m.layers) {
      if (l instanceof BatchNormalization) expect([l.name, l.epsilon, l.momentum]).toEqual([l.name, 1.001e-5, 0.99]);
      if (l instanceof Conv2D) {
        expect([l.name, l.useBias]).toEqual([l.name, true]);
        const s2 = l.name === 'conv1_conv' || /^conv[345]_block1_[01]_conv$/.test(l.name);
        expect([l.name, l.strides]).toEqual([l.name, s2 ? [2, 2] : [1, 1]]);
        expect([l.name, l.padding]).toEqual([l.name, l.name.endsWith('_2_conv') ? 'same' : 'valid']);
      }
      if (l.className === 'Activation') expect([l.name, (l as unknown as { activation: unknown }).activation]).toEqual([l.name, { kind: 'relu' }]);
    }
    expect(m.getLayer('conv2_block1_1_conv').params.map((p) => p.shape)).toEqual([[1, 1, 64, 64], [64]]);
    expect(m.getLayer('conv2_block1_0_conv').params.map((p) => p.shape)).toEqual([[1, 1, 64, 256], [256]]);
    expect(m.getLayer('conv5_block3_3_conv').params.map((p) => p.shape)).toEqual([[1, 1, 512, 2048], [2048]]);
    expect(m.getLayer('conv4_block6_out').output!.shape).toEqual([14, 14, 1024]);
  });

  it('a non-square odd size (97x131): output 4x5x2048', async () => {
    const m = await ResNet50({ weights: null, inputShape: [97, 131, 3] });
    expect(m.getLayer('conv1_conv').output!.shape).toEqual([49, 66, 64]); // (103 - 7) / 2 + 1, floor((137 - 7) / 2) + 1
    expect(m.getLayer('pool1_pool').output!.shape).toEqual([25, 33, 64]);
    expect(m.getLayer('conv3_block1_out').output!.shape).toEqual([13, 17, 512]);
    expect(outShape(m)).toEqual([4, 5, 2048]);
    expect(totalParams(m)).toBe(23_587_712);
  });

  it("pooling 'avg' / 'max' append 'avg_pool' / 'max_pool', as Keras names them", async () => {
    const avg = await ResNet50({ weights: null, inputShape: [32, 32, 3], pooling: 'avg' });
    expect(names(avg).slice(-2)).toEqual(['conv5_block3_out', 'avg_pool']);
    expect(avg.layers[175].className).toBe('GlobalAveragePooling2D');
    expect(outShape(avg)).toEqual([2048]);
    const max = await ResNet50({ weights: null, inputShape: [32, 32, 3], pooling: 'max' });
    expect(names(max).slice(-1)).toEqual(['max_pool']);
    expect(max.layers[175].className).toBe('GlobalMaxPooling2D');
    expect(outShape(await ResNet50({ weights: null, inputShape: [32, 32, 3] }))).toEqual([1, 1, 2048]);
    await expect(ResNet50({ weights: null, inputShape: [224, 224, 1] })).rejects.toThrow(/\[height, width, 3\]/);
    await expect(ResNet50({ weights: null, inputShape: [32, 31, 3] })).rejects.toThrow(/at least 32/);
    await expect(ResNet50({ weights: '' })).rejects.toThrow(/weights must be null/);
  });
});

describe("weights: 'imagenet' names Keras's files", () => {
  let dir: string;
  let closedUrl: string;
  const saved = { KERAS_HOME: process.env.KERAS_HOME, WEBGPU_FINETUNE_WEIGHTS_URL: process.env.WEBGPU_FINETUNE_WEIGHTS_URL };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'backbones-'));
    process.env.KERAS_HOME = join(dir, 'keras-home'); // never this machine's Keras cache
    delete process.env.WEBGPU_FINETUNE_WEIGHTS_URL;
    const probe = createServer();
    const port = await new Promise<number>((r) => probe.listen(0, '127.0.0.1', () => r((probe.address() as { port: number }).port)));
    await new Promise((r) => probe.close(r));
    closedUrl = `http://127.0.0.1:${port}/weights.h5`; // what "no network" looks like, without the network
  });
  afterAll(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('file names, URLs and hashes as keras.applications', () => {
    expect(mobilenetV2NoTop(1.0, 224)).toMatchObject({
      fileName: 'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5',
      url: 'https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5',
      md5: null,
    });
    expect([0.35, 0.5, 0.75, 1.3, 1.4].map((a) => mobilenetV2NoTop(a, 96).fileName)).toEqual(['0.35', '0.5', '0.75', '1.3', '1.4'].map((a) => `mobilenet_v2_weights_tf_dim_ordering_tf_kernels_${a}_96_no_top.h5`));
    expect(() => mobilenetV2NoTop(1.0, 200)).toThrow(/sizes 96, 128, 160, 192, 224/);
    expect(RESNET50_NOTOP).toMatchObject({
      fileName: 'resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5',
      url: 'https://storage.googleapis.com/tensorflow/keras-applications/resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5',
      md5: '4d473c1dd8becc155b73f8504c6f6626',
    });
    expect(VGG16_NOTOP.md5).toBe('6d6bbae143d832006294945121d1f1fc');
  });

  it('ResNet50 without network explains where to get its file (URL, MD5, paths)', async () => {
    const cache = join(dir, 'r50');
    const err = await ResNet50({ weights: 'imagenet', inputShape: [32, 32, 3], cacheDir: cache, downloadUrl: closedUrl, onProgress: false }).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/^Could not get the ResNet50 ImageNet weights/);
    expect(err?.message).toContain(`download resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 (MD5 4d473c1dd8becc155b73f8504c6f6626) from\n  ${RESNET50_NOTOP.url}`);
    expect(err?.message).toContain(`copy it to ${join(cache, RESNET50_NOTOP.fileName)}`);
    expect(err?.message).toContain(`ResNet50({ weights: '/path/to/${RESNET50_NOTOP.fileName}' })`);
  });

  it("MobileNetV2 picks Keras's rows: the input size when square and in the list, else 224 (with Keras's warning)", async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const cache = join(dir, 'mnv2-missing');
      const err = await MobileNetV2({ weights: 'imagenet', inputShape: [160, 160, 3], alpha: 0.5, cacheDir: cache, downloadUrl: closedUrl, onProgress: false }).then(() => null, (e: Error) => e);
      expect(err?.message).toContain('Could not get the MobileNetV2 ImageNet weights');
      expect(err?.message).toContain('mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_160_no_top.h5 from');
      expect(warn).not.toHaveBeenCalled();
      const odd = await MobileNetV2({ weights: 'imagenet', inputShape: [97, 131, 3], cacheDir: cache, downloadUrl: closedUrl, onProgress: false }).then(() => null, (e: Error) => e);
      expect(odd?.message).toContain('mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5');
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/Weights for input shape \(224, 224\) will be loaded as the default/));
    } finally {
      warn.mockRestore();
    }
  });

  it("MobileNetV2 loads Keras's file by the order of the layers with weights (its names are not the model's), then from the converted cache", async () => {
    const cache = join(dir, 'mnv2');
    await mkdir(cache, { recursive: true });
    const file = mobilenetV2NoTop(0.35, 96);
    // The file's shapes: those of a model built here, with names from elsewhere (as the real file).
    const shapeOf = await MobileNetV2({ weights: null, alpha: 0.35, inputShape: [96, 96, 3] });
    const weighted = shapeOf.layers.filter((l) => l.params.length);
    const fixture = weighted.map((l, i) => ({ name: `layer${String(i).padStart(3, '0')}`, weights: l.params.map((p, j) => ({ shape: p.shape, data: randomFloats(p.size, i * 10 + j) })) }));
    const m5 = await h5();
    const f = new m5.File(join(cache, file.fileName), 'w');
    const layerNames = fixture.map((l) => l.name);
    f.create_attribute('layer_names', layerNames, [layerNames.length], 'S8');
    for (const l of fixture) {
      const g = f.create_group(l.name);
      const wn = l.weights.map((_, j) => `${l.name}_${j}:0`);
      g.create_attribute('weight_names', wn, [wn.length], 'S12');
      l.weights.forEach((w, j) => g.create_dataset({ name: wn[j], data: w.data, shape: w.shape, dtype: '<f' }));
    }
    f.close();

    const check = async (m: Model) => {
      const layers = m.layers.filter((l) => l.params.length);
      expect(layers).toHaveLength(fixture.length);
      for (let i = 0; i < layers.length; i++) {
        const w = await layers[i].getWeights();
        w.forEach((x, j) => expect(sameBits(x.data, fixture[i].weights[j].data), `${layers[i].name} ${j}`).toBe(true));
      }
    };
    await check(await MobileNetV2({ weights: 'imagenet', alpha: 0.35, inputShape: [96, 96, 3], cacheDir: cache, downloadUrl: closedUrl, onProgress: false }));
    expect((await readdir(cache)).sort()).toEqual([file.fileName, 'mobilenet_v2_0.35_96_notop'].sort());
    const manifest = JSON.parse(await readFile(join(cache, 'mobilenet_v2_0.35_96_notop', 'manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({ model: 'mobilenetv2_0.35_96', source: { file: file.fileName, layout: 'legacy' } });
    // from the converted cache alone
    await rm(join(cache, file.fileName));
    await check(await MobileNetV2({ weights: 'imagenet', alpha: 0.35, inputShape: [96, 96, 3], cacheDir: cache, downloadUrl: closedUrl, onProgress: false }));
    // a file for another alpha does not fit: Keras's shape check, naming the layer
    await expect(MobileNetV2({ weights: join(cache, 'mobilenet_v2_0.35_96_notop'), alpha: 0.5, inputShape: [96, 96, 3] })).rejects.toThrow(/layer 'block_1_project' \(named 'layer\d+' in the file\), weight 0 .*expected shape \[1, 1, 48, 16\], found \[1, 1, 48, 8\]/);
  });

  it("VGG16 'imagenet' still means VGG16's file", async () => {
    const cache = join(dir, 'vgg');
    const err = await VGG16({ weights: 'imagenet', inputShape: [32, 32, 3], cacheDir: cache, downloadUrl: closedUrl, onProgress: false }).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/^Could not get the VGG16 ImageNet weights/);
    expect(err?.message).toContain('(58,889,256 bytes, MD5 6d6bbae143d832006294945121d1f1fc)');
    expect(err?.message).toContain('(command line: --weights /path/to/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5)');
  });
});

describe('preprocessInput', () => {
  const px = new Float32Array([0, 127.5, 255, 10, 20, 30]);
  it("mobilenetV2: mode 'tf', x / 127.5 - 1 in float32", () => {
    expect(Array.from(mobilenetV2.preprocessInput(px))).toEqual([-1, 0, 1, 10 / 127.5 - 1, 20 / 127.5 - 1, 30 / 127.5 - 1].map(Math.fround));
    expect(Array.from(px)).toEqual([0, 127.5, 255, 10, 20, 30]); // input untouched
  });
  it("resnet50 and vgg16: mode 'caffe', RGB -> BGR minus [103.939, 116.779, 123.68]", () => {
    const expected = [255 - 103.939, 127.5 - 116.779, 0 - 123.68, 30 - 103.939, 20 - 116.779, 10 - 123.68].map((v) => Math.fround(v));
    for (const f of [resnet50.preprocessInput, vgg16.preprocessInput]) {
      const out = f(px);
      expect(out).toBeInstanceOf(Float32Array);
      Array.from(out).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 4));
    }
    // float32 arithmetic, as Keras on a float32 array: float32(x) - float32(mean)
    expect(resnet50.preprocessInput(new Float32Array([1, 2, 3]))[0]).toBe(Math.fround(3 - Math.fround(103.939)));
    expect(() => vgg16.preprocessInput(new Float32Array(4))).toThrow(/3 channels/);
  });
});

// ---- One predict each (32x32, batch 1) against TF.js's CPU ops, with random BN statistics.

async function randomizeBatchNorm(m: Model, seed: number): Promise<void> {
  const r = rng(seed);
  const u = (n: number, lo: number, hi: number) => Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
  for (const l of m.layers) {
    if (!(l instanceof BatchNormalization)) continue;
    const c = l.params[0].shape[0];
    await l.setWeights([u(c, 0.6, 1.2), u(c, -0.1, 0.1), u(c, -0.1, 0.1), u(c, 0.6, 1.4)].map((data) => ({ shape: [c], data })));
  }
}

/** The model's graph, layer by layer, in TF.js ops (float32, CPU). */
async function tfjsForward(m: Model, x: Float32Array): Promise<Float32Array> {
  const tf = await tfCpu();
  return tf.tidy(() => {
    const values = new Map<Layer, import('@tensorflow/tfjs').Tensor4D | import('@tensorflow/tfjs').Tensor>();
    const t = (l: Layer, p: number) => tf.tensor(l.params[p].host, l.params[p].shape);
    for (const l of m.layers) {
      const ins = l.inputs.map((s) => values.get(s.sourceLayer)!);
      const a = ins[0] as import('@tensorflow/tfjs').Tensor4D;
      let y: import('@tensorflow/tfjs').Tensor;
      if (l.className === 'InputLayer') y = tf.tensor4d(x, [1, ...m.inputs.shape] as [number, number, number, number]);
      else if (l instanceof ZeroPadding2D) y = tf.pad(a, [[0, 0], l.padding[0], l.padding[1], [0, 0]]);
      else if (l instanceof Conv2D) {
        y = tf.conv2d(a, t(l, 0) as import('@tensorflow/tfjs').Tensor4D, l.strides, l.padding);
        if (l.useBias) y = tf.add(y, t(l, 1));
      } else if (l instanceof DepthwiseConv2D) {
        y = tf.depthwiseConv2d(a, t(l, 0) as import('@tensorflow/tfjs').Tensor4D, l.strides, l.padding);
        if (l.useBias) y = tf.add(y, t(l, 1));
      } else if (l instanceof BatchNormalization) y = tf.batchNorm(a, t(l, 2), t(l, 3), t(l, 1), t(l, 0), l.epsilon);
      else if (l instanceof ReLU) y = tf.clipByValue(a, 0, 6);
      else if (l.className === 'Activation') y = tf.relu(a);
      else if (l.className === 'Add') y = ins.reduce((s, v) => tf.add(s, v));
      else if (l.className === 'MaxPooling2D') y = tf.maxPool(a, 3, 2, 'valid');
      else if (l.className === 'GlobalAveragePooling2D') y = tf.mean(a, [1, 2]);
      else throw new Error(`no TF.js op for ${l.describe()}`);
      values.set(l, y);
    }
    return values.get(m.layers[m.layers.length - 1])!.dataSync() as Float32Array;
  });
}

function expectNear(actual: Float32Array, expected: Float32Array, rel: number, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]));
    if (!Number.isFinite(actual[i])) expect.fail(`${what}: element ${i} is ${actual[i]}`);
  }
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  console.log(`${what}: max |engine - TF.js| ${worst.toExponential(2)} on outputs up to ${scale.toExponential(2)}`);
  expect(scale, `${what}: outputs are not all zero`).toBeGreaterThan(0);
  expect(worst / scale, what).toBeLessThan(rel);
}

describe('the graph runs (GPU): one predict at 32x32, batch 1, against TF.js ops', () => {
  it('MobileNetV2', async () => {
    const m = await MobileNetV2({ weights: null, inputShape: [32, 32, 3], pooling: 'avg' });
    await randomizeBatchNorm(m, 7);
    const x = mobilenetV2.preprocessInput(Float32Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 37) % 256));
    const t0 = performance.now();
    const y = await m.predict(x, { batchSize: 1 });
    console.log(`MobileNetV2 32x32 predict (plan + kernels + run): ${(performance.now() - t0).toFixed(0)} ms`);
    expectNear(y, await tfjsForward(m, x), 1e-3, 'MobileNetV2 32x32 avg-pooled features');
    await m.dispose();
  });

  it('ResNet50', async () => {
    const m = await ResNet50({ weights: null, inputShape: [32, 32, 3] });
    await randomizeBatchNorm(m, 8);
    const x = resnet50.preprocessInput(Float32Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 53) % 256));
    const t0 = performance.now();
    const y = await m.predict(x, { batchSize: 1 });
    console.log(`ResNet50 32x32 predict (plan + kernels + run): ${(performance.now() - t0).toFixed(0)} ms`);
    expectNear(y, await tfjsForward(m, x), 1e-3, 'ResNet50 32x32 features');
    await m.dispose();
  });
});

describe('non-square inputs against TF.js ops, and a fine-tuned model through model.h5', () => {
  it('MobileNetV2 and ResNet50 at 40x56 (batch 2)', async () => {
    for (const [build, pre, seed] of [[() => MobileNetV2({ weights: null, inputShape: [40, 56, 3], alpha: 0.5, pooling: 'avg' }), mobilenetV2.preprocessInput, 9], [() => ResNet50({ weights: null, inputShape: [40, 56, 3] }), resnet50.preprocessInput, 10]] as const) {
      const m = await build();
      await randomizeBatchNorm(m, seed);
      const n = 40 * 56 * 3;
      const x = pre(Float32Array.from({ length: 2 * n }, (_, i) => (i * 29 + seed) % 256));
      const y = await m.predict(x, { batchSize: 2 });
      const per = y.length / 2;
      for (let b = 0; b < 2; b++) expectNear(y.subarray(b * per, (b + 1) * per), await tfjsForward(m, x.subarray(b * n, (b + 1) * n)), 1e-4, `${m.name} 40x56 image ${b}`);
      await m.dispose();
    }
  });

  it('a fine-tuned MobileNetV2 (top unfrozen, BatchNormalization trained in inference mode) saved as model.h5 loads back with identical outputs', async () => {
    const { Dense, GlobalAveragePooling2D, setInferenceMode, setInitSeed } = await import('../src/index.ts');
    const build = async () => {
      setInitSeed(12);
      const base = await MobileNetV2({ weights: null, includeTop: false, inputShape: [32, 32, 3], alpha: 0.35 });
      for (const l of base.layers.slice(0, 140)) l.trainable = false;
      setInferenceMode(base.layers, true);
      const out = new Dense({ units: 1, activation: 'sigmoid' }).apply(new GlobalAveragePooling2D().apply(base.output));
      const m = new Model({ inputs: base.input, outputs: out });
      m.compile({ optimizer: 'adam', loss: 'binary_crossentropy' });
      return m;
    };
    const m = await build();
    await randomizeBatchNorm(m, 11);
    const r = rng(13);
    const x = mobilenetV2.preprocessInput(Float32Array.from({ length: 4 * 32 * 32 * 3 }, () => r() * 255));
    const y = new Float32Array([0, 1, 1, 0]);
    for (let s = 0; s < 2; s++) await m.trainOnBatch(x, y);
    const dir = await mkdtemp(join(tmpdir(), 'mnv2-h5-'));
    const file = join(dir, 'model.h5');
    await m.saveWeightsH5(file);
    const again = await build();
    const report = await again.loadWeights(file);
    // the second build's top layers get new names (dense_1, ...), as in a Keras session: read by order
    expect(report.matchedBy).toBe('order');
    expect(report.layers).toBe(m.layers.filter((l) => l.params.length).length);
    const a = await m.predict(x);
    const b = await again.predict(x);
    expect(Array.from(b)).toEqual(Array.from(a));
    const wa = await m.getWeights();
    (await again.getWeights()).forEach((t, i) => expect(t.data, t.name).toEqual(wa[i].data));
    await rm(dir, { recursive: true, force: true });
  });
});

