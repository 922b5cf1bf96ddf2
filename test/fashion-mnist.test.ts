// Fine-tuning on a real photo set no one here wrote: two Fashion-MNIST classes (Debian's
// dataset-fashion-mnist, installed by scripts/install-fashion-mnist.sh) as image folders, read by
// flowFromDirectory and fit by MobileNetV2 from random init. Without the data this FAILS (never skips).
import { gzipSync } from 'node:zlib';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { Adam, BatchNormalization, Dense, GlobalAveragePooling2D, MobileNetV2, Model, mobilenetV2, setInitSeed } from '../src/index.ts';
import type { DirectoryIterator } from '../src/io/flow.ts';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, parseIdxImages, parseIdxLabels, readFashionMnist, readMaybeGzip, writeFashionMnistFolders } from '../src/io/fashion-mnist-node.ts';
import { ImageDataGenerator } from '../src/io/image-data-generator.ts';

// ~35 s of fit on 2 software-GPU cores. Measured val_acc per epoch (init seed 11, flow seed 7):
// 0.5 0.5 0.5 0.5 0.55 0.865 0.93 0.93 0.925 0.955; with init seed 3 it ends at 0.94. Chance is 0.5.
const TRAIN_PER_CLASS = 150;
const TEST_PER_CLASS = 100;
const EPOCHS = 10;
const BN_MOMENTUM = 0.9;

const tmp = (name: string) => mkdtempSync(join(tmpdir(), `fmnist-${name}-`));

/** An IDX header (magic 0x0000 0x08 <ndim>, then the dims, big-endian) followed by `body`. */
function idx(dims: number[], body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x0800 + dims.length);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  out.set(body, 4 + 4 * dims.length);
  return out;
}

const flows: DirectoryIterator[] = [];
afterAll(async () => {
  for (const f of flows) await f.close();
});

describe('Fashion-MNIST IDX files', () => {
  it('parses headers and rejects bad magic, sizes and labels, naming the file', () => {
    const im = parseIdxImages(idx([2, 3, 4], new Uint8Array(24).map((_, i) => i)), 'a.idx3');
    expect([im.count, im.rows, im.cols, im.pixels.length, im.pixels[23]]).toEqual([2, 3, 4, 24, 23]);
    expect(Array.from(parseIdxLabels(idx([3], Uint8Array.of(0, 9, 4)), 'l.idx1'))).toEqual([0, 9, 4]);
    expect(() => parseIdxImages(idx([2], Uint8Array.of(0, 1)), 'lab.idx1')).toThrow(/lab\.idx1: magic number 0x00000801, expected 0x00000803/);
    expect(() => parseIdxImages(idx([2, 3, 4], new Uint8Array(23)), 'short.idx3')).toThrow(/short\.idx3: 39 bytes, but its header \(2 x 3 x 4\) implies 40/);
    expect(() => parseIdxImages(new Uint8Array(3), 'tiny')).toThrow(/tiny: 3 bytes, too short/);
    expect(() => parseIdxImages(idx([2, 3], new Uint8Array(0)).subarray(0, 10), 'cut')).toThrow(/cut: magic number 0x00000802/);
    expect(() => parseIdxImages(Uint8Array.of(0, 0, 8, 3, 0, 0, 0, 1), 'head')).toThrow(/head: 8 bytes, too short .* header alone is 16/);
    expect(() => parseIdxLabels(idx([2], Uint8Array.of(1, 10)), 'bad.idx1')).toThrow(/bad\.idx1: label 1 is 10/);
  });

  it('reads gzipped and plain files alike', async () => {
    const dir = tmp('gz');
    const raw = idx([3], Uint8Array.of(5, 6, 7));
    writeFileSync(join(dir, 'plain'), raw);
    writeFileSync(join(dir, 'zipped.gz'), gzipSync(raw));
    writeFileSync(join(dir, 'broken.gz'), Uint8Array.of(0x1f, 0x8b, 1, 2, 3));
    expect(await readMaybeGzip(join(dir, 'plain'))).toEqual(raw);
    expect(await readMaybeGzip(join(dir, 'zipped.gz'))).toEqual(raw);
    await expect(readMaybeGzip(join(dir, 'broken.gz'))).rejects.toThrow(/broken\.gz: not a valid gzip file/);
  });

  it('without the files, says to run scripts/install-fashion-mnist.sh', async () => {
    const empty = tmp('none');
    await expect(readFashionMnist('train', empty)).rejects.toThrow(/train-images-idx3-ubyte\.gz.*install-fashion-mnist\.sh/);
    await expect(writeFashionMnistFolders(tmp('out'), { classes: ['bag'], train: 1, test: 1, from: empty })).rejects.toThrow(/install-fashion-mnist\.sh/);
    await expect(writeFashionMnistFolders(tmp('out'), { classes: ['bags' as 'bag'], train: 1, test: 1 })).rejects.toThrow(/unknown class "bags"/);
  });
});

describe('Fashion-MNIST fine-tuning (real photos)', () => {
  it('the installed data is there (else: run scripts/install-fashion-mnist.sh)', async () => {
    // A clear failure first: the fit test below would fail with the same hint, buried in its stack.
    let train, test;
    try {
      [train, test] = await Promise.all([readFashionMnist('train'), readFashionMnist('test')]);
    } catch (e) {
      throw new Error(`Fashion-MNIST is not installed in ${FASHION_MNIST_DIR}: run scripts/install-fashion-mnist.sh (as root). ${(e as Error).message}`);
    }
    expect([train.images.count, train.images.rows, train.images.cols, test.images.count]).toEqual([60000, 28, 28, 10000]);
    // Fashion-MNIST is balanced: 6000 / 1000 of each class
    expect(train.labels.filter((l) => l === FASHION_MNIST_CLASSES.indexOf('bag')).length).toBe(6000);
    expect(test.labels.filter((l) => l === FASHION_MNIST_CLASSES.indexOf('trouser')).length).toBe(1000);
  });

  it('writes RGB PNG folders whose pixels are the IDX bytes', async () => {
    const dir = tmp('px');
    expect(await writeFashionMnistFolders(dir, { classes: ['sandal', 'coat'], train: 2, test: 1 })).toEqual({ train: 4, test: 2 });
    const { images, labels } = await readFashionMnist('test');
    const first = labels.indexOf(FASHION_MNIST_CLASSES.indexOf('coat'));
    const png = PNG.sync.read(readFileSync(join(dir, 'test', 'coat', `${String(first).padStart(4, '0')}.png`)));
    expect([png.width, png.height]).toEqual([28, 28]);
    const px = images.pixels.subarray(first * 784, (first + 1) * 784);
    for (const i of [0, 200, 405, 783]) expect([png.data[i * 4], png.data[i * 4 + 1], png.data[i * 4 + 2]]).toEqual([px[i], px[i], px[i]]);
    await expect(writeFashionMnistFolders(dir, { classes: ['sandal'], train: 1, test: 1 })).rejects.toThrow(/is not empty/);
  });

  it('MobileNetV2 (alpha 0.35, random init) learns trouser vs bag through fit', async () => {
    const dir = tmp('fit');
    await writeFashionMnistFolders(dir, { classes: ['trouser', 'bag'], train: TRAIN_PER_CLASS, test: TEST_PER_CLASS });
    const quiet = { log: () => {}, warn: (l: string) => { throw new Error(l); } };
    const gen = new ImageDataGenerator({ preprocessingFunction: mobilenetV2.preprocessInput });
    const train = await gen.flowFromDirectory(join(dir, 'train'), { targetSize: [32, 32], batchSize: 32, classMode: 'binary', seed: 7, ...quiet });
    const val = await gen.flowFromDirectory(join(dir, 'test'), { targetSize: [32, 32], batchSize: 50, classMode: 'binary', shuffle: false, ...quiet });
    flows.push(train, val);
    expect(train.classIndices).toEqual({ bag: 0, trouser: 1 });

    setInitSeed(11);
    const base = await MobileNetV2({ weights: null, alpha: 0.35, includeTop: false, inputShape: [32, 32, 3] });
    // MobileNetV2's BatchNormalization momentum is 0.999 (made for ImageNet's long runs): after
    // this test's ~100 steps the moving statistics validation normalises with are still ~90% their
    // initial 0 and 1 (measured: val_acc 0.5 after 3 epochs while train acc reached 0.86). 0.9
    // lets them follow the last ~10 batches, as src/cli/pretrain.ts does.
    for (const l of base.layers) if (l instanceof BatchNormalization) (l as { momentum: number }).momentum = BN_MOMENTUM;
    const x = new GlobalAveragePooling2D().apply(base.output);
    const model = new Model({ inputs: base.input, outputs: new Dense({ units: 1, activation: 'sigmoid' }).apply(x) });
    model.compile({ optimizer: new Adam({ learningRate: 1e-3 }), loss: 'binary_crossentropy', metrics: ['acc'] });
    const t0 = Date.now();
    const { history } = await model.fit(train, { validationData: val, epochs: EPOCHS, verbose: 0 });
    console.log(`[fashion-mnist] ${EPOCHS} epochs in ${((Date.now() - t0) / 1000).toFixed(1)} s`, JSON.stringify(history));
    expect(history.loss[EPOCHS - 1]).toBeLessThan(history.loss[0] * 0.5);
    expect(history.val_loss[EPOCHS - 1]).toBeLessThan(history.val_loss[0]);
    // clearly above chance (0.5) on images the model never trained on
    expect(history.val_acc[EPOCHS - 1]).toBeGreaterThanOrEqual(0.8);
  });
});
