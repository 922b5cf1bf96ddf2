// flowFromDirectory on folders the tests write (real PNG/JPEG files), flowFromFiles and
// flowFromUrls: Keras's class and file order, batches, labels, epochs, seeds, bad input, and
// prefetching that overlaps a slow consumer.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DirectoryIterator, ImageBatch } from '../src/io/flow.ts';
import { ImageDataGenerator } from '../src/io/image-data-generator.ts';
import { resizeRgb } from '../src/io/resize.ts';
import { jpegRgb, pattern, png16, pngGray, pngRgb, pngRgba, tempDir, withChunk, withIdat, writeTree } from './io-images.ts';

const progressive = new Uint8Array(readFileSync(new URL('./fixtures/images/progressive.jpg', import.meta.url)));

/** A PNG whose every pixel is one gray level: the level tells which file a batch row came from. */
function solid(level: number, h = 4, w = 5): Uint8Array {
  return pngRgb(h, w, new Uint8Array(h * w * 3).fill(level));
}

/** Collects the Found line and the warnings. */
function sinks() {
  const out = { log: [] as string[], warn: [] as string[] };
  return { out, opts: { log: (l: string) => out.log.push(l), warn: (l: string) => out.warn.push(l) } };
}

async function epoch(flow: DirectoryIterator): Promise<ImageBatch[]> {
  const out: ImageBatch[] = [];
  for await (const b of flow) out.push(b);
  return out;
}

/** The first value of each image in a batch (solid images: the file's level, rescaled or not). */
function firstValues(b: ImageBatch, per: number): number[] {
  return Array.from({ length: b.x.length / per }, (_, i) => b.x[i * per]);
}

const flows: DirectoryIterator[] = [];
const track = (f: DirectoryIterator) => (flows.push(f), f);
afterAll(async () => {
  for (const f of flows) await f.close();
});

describe('flowFromDirectory', () => {
  let root: string;
  beforeAll(() => {
    root = tempDir();
    writeTree(root, {
      'dogs/d1.png': solid(10),
      'dogs/d2.JPG': jpegRgb(4, 5, new Uint8Array(60).fill(20)),
      'cats/x.png': solid(30),
      'cats/sub/deeper/w.png': solid(40),
      'cats/sub/y.png': solid(50),
      'cats/a b/z.png': solid(60),
      'cats/B.png': solid(70),
      'Zebra/g.png': pngGray(4, 5, new Uint8Array(20).fill(80)),
      'Zebra/notes.txt': 'not an image',
      'README.md': 'outside the class folders',
    });
  });

  it("lists classes in code-point order and files like Keras's os.walk, and prints Found", async () => {
    const { out, opts } = sinks();
    const flow = track(await new ImageDataGenerator().flowFromDirectory(root, { targetSize: [4, 5], batchSize: 3, shuffle: false, ...opts }));
    expect(out.log).toEqual(['Found 8 images belonging to 3 classes.']);
    expect(flow.classIndices).toEqual({ Zebra: 0, cats: 1, dogs: 2 });
    expect(flow.filenames).toEqual(['Zebra/g.png', 'cats/B.png', 'cats/x.png', 'cats/a b/z.png', 'cats/sub/y.png', 'cats/sub/deeper/w.png', 'dogs/d1.png', 'dogs/d2.JPG']);
    expect(Array.from(flow.classes)).toEqual([0, 1, 1, 1, 1, 1, 2, 2]);
    expect([flow.samples, flow.batchSize, flow.length, flow.numClasses]).toEqual([8, 3, 3, 3]);
    expect(out.warn.join('\n')).toMatch(/ignored 1 file without an image extension .*'Zebra\/notes.txt'/);
    expect(out.warn.join('\n')).toMatch(/ignored 1 file directly in .*outside the class folders: 'README.md'/);

    // categorical (Keras's default): one-hot labels; the last batch is short
    const batches = await epoch(flow);
    expect(batches.map((b) => b.x.length / 60)).toEqual([3, 3, 2]);
    expect(Array.from(batches[0].y)).toEqual([1, 0, 0, 0, 1, 0, 0, 1, 0]);
    expect(batches.flatMap((b) => firstValues(b, 60))).toEqual([80, 70, 30, 60, 50, 40, 10, expect.closeTo(20, -1)]);
  });

  it('labels: binary and sparse give the class index, null gives no labels', async () => {
    const two = tempDir();
    writeTree(two, { 'a/1.png': solid(1), 'a/2.png': solid(2), 'b/3.png': solid(3) });
    const { opts } = sinks();
    const gen = new ImageDataGenerator();
    const binary = track(await gen.flowFromDirectory(two, { targetSize: [4, 5], classMode: 'binary', shuffle: false, ...opts }));
    const [b] = await epoch(binary);
    expect(Array.from(b.y)).toEqual([0, 0, 1]);
    expect(b.y).toBeInstanceOf(Float32Array);
    const sparse = track(await gen.flowFromDirectory(root, { targetSize: [4, 5], classMode: 'sparse', batchSize: 8, shuffle: false, ...opts }));
    expect(Array.from((await epoch(sparse))[0].y)).toEqual([0, 1, 1, 1, 1, 1, 2, 2]);
    const none = track(await gen.flowFromDirectory(root, { targetSize: [4, 5], classMode: null, batchSize: 8, ...opts }));
    const [n] = await epoch(none);
    expect(n.y.length).toBe(0);
    expect(n.x.length).toBe(8 * 60);
  });

  it.each([[1, 'a worker thread'], [0, 'the main thread']])('preprocessingFunction runs on each image before rescale (loading in %s = %s)', async (workers) => {
    const dir = tempDir();
    const rgb = pattern(6, 8, 9);
    writeTree(dir, { 'a/p.png': pngRgb(6, 8, rgb), 'b/q.png': pngRgb(6, 8, rgb) });
    const { opts } = sinks();
    const seen: number[] = [];
    const fn = (x: Float32Array) => {
      seen.push(x.length);
      return x.map((v) => v / 127.5 - 1);
    };
    const gen = new ImageDataGenerator({ preprocessingFunction: fn, rescale: 2 });
    const [b] = await epoch(track(await gen.flowFromDirectory(dir, { targetSize: [6, 8], shuffle: false, batchSize: 2, workers, ...opts })));
    expect(seen).toEqual([144, 144]); // once per image, the whole HWC image
    const want = Array.from(rgb, (v) => Math.fround(Math.fround(v / 127.5 - 1) * 2));
    expect(Array.from(b.x.subarray(0, 144))).toEqual(want);
    const bad = new ImageDataGenerator({ preprocessingFunction: (x) => x.subarray(1) });
    await expect(epoch(track(await bad.flowFromDirectory(dir, { targetSize: [6, 8], batchSize: 2, workers, ...opts })))).rejects.toThrow(/preprocessingFunction returned 143 values .* must return a Float32Array of 144 values \(6x8x3\)/);
    expect(() => new ImageDataGenerator({ preprocessingFunction: 3 as never })).toThrow(/preprocessingFunction must be a function/);
  });

  it('pixels: float32 0..255 then rescale; resized with nearest by default, bilinear on request', async () => {
    const dir = tempDir();
    const rgb = pattern(10, 14, 4);
    writeTree(dir, { 'a/p.png': pngRgb(10, 14, rgb), 'b/q.png': pngRgb(10, 14, rgb) });
    const { opts } = sinks();
    const gen = new ImageDataGenerator({ rescale: 1 / 255 });
    const same = track(await gen.flowFromDirectory(dir, { targetSize: [10, 14], shuffle: false, batchSize: 1, ...opts }));
    const [first] = await epoch(same);
    expect(Array.from(first.x)).toEqual(Array.from(rgb, (v) => Math.fround(v * Math.fround(1 / 255))));
    for (const interpolation of ['nearest', 'bilinear'] as const) {
      const small = track(await new ImageDataGenerator().flowFromDirectory(dir, { targetSize: [5, 7], shuffle: false, batchSize: 1, ...opts, ...(interpolation === 'bilinear' ? { interpolation } : {}) }));
      const [b] = await epoch(small);
      expect(Array.from(b.x), interpolation).toEqual(Array.from(resizeRgb(rgb, 10, 14, 5, 7, interpolation)));
    }
  });

  it('decodes every PNG and JPEG kind, BMP and PNM in a folder', async () => {
    const dir = tempDir();
    const rgb = pattern(6, 6, 2);
    writeTree(dir, {
      'png/rgb.png': pngRgb(6, 6, rgb),
      'png/rgba.png': pngRgba(6, 6, rgb, (i) => i * 7),
      'png/gray.png': pngGray(6, 6, new Uint8Array(36).fill(9)),
      'png/gray-alpha.png': pngGray(6, 6, new Uint8Array(36).fill(9), true),
      'png/rgb16.png': png16(6, 6, new Uint16Array(108).fill(0x1234), false),
      'png/gray16.png': png16(6, 6, new Uint16Array(36).fill(0xabcd), true),
      'png/trns.png': withChunk(pngRgb(6, 6, rgb), 'tRNS', new Uint8Array(6)),
      'png/palette.png': new Uint8Array(readFileSync(new URL('./fixtures/images/palette.png', import.meta.url))),
      'jpeg/baseline.jpg': jpegRgb(6, 6, rgb),
      'jpeg/progressive.jpeg': progressive,
      'jpeg/gray.jpg': new Uint8Array(readFileSync(new URL('./fixtures/images/gray.jpg', import.meta.url))),
      'other/rgb.BMP': new Uint8Array(readFileSync(new URL('./fixtures/images/rgb.bmp', import.meta.url))),
      'other/gray.ppm': new Uint8Array(readFileSync(new URL('./fixtures/images/gray.pgm', import.meta.url))),
    });
    const { out, opts } = sinks();
    const flow = track(await new ImageDataGenerator().flowFromDirectory(dir, { targetSize: [6, 6], batchSize: 13, shuffle: false, ...opts }));
    expect(out.log).toEqual(['Found 13 images belonging to 3 classes.']);
    expect(out.warn).toEqual([]);
    const [b] = await epoch(flow);
    const img = (name: string) => {
      const i = flow.filenames.indexOf(name);
      return Array.from(b.x.subarray(i * 108, (i + 1) * 108));
    };
    expect(img('png/rgb.png')).toEqual(Array.from(rgb));
    expect(img('png/rgba.png')).toEqual(Array.from(rgb));
    expect(img('png/trns.png')).toEqual(Array.from(rgb));
    expect(img('png/gray.png')).toEqual(new Array(108).fill(9));
    expect(img('png/rgb16.png')).toEqual(new Array(108).fill(0x12));
    expect(img('png/gray16.png')).toEqual(new Array(108).fill(0xab));
  });

  it('draws a new permutation every epoch, covering every file once', async () => {
    const dir = tempDir();
    const files: Record<string, Uint8Array> = {};
    for (let i = 0; i < 10; i++) files[`${i % 2 ? 'odd' : 'even'}/f${i}.png`] = solid(i * 10);
    writeTree(dir, files);
    const { opts } = sinks();
    const flow = track(await new ImageDataGenerator().flowFromDirectory(dir, { targetSize: [4, 5], batchSize: 4, seed: 3, ...opts }));
    const orders: number[][] = [];
    for (let e = 0; e < 3; e++) orders.push((await epoch(flow)).flatMap((b) => firstValues(b, 60)));
    for (const o of orders) expect([...o].sort((a, b) => a - b)).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
    expect(new Set(orders.map((o) => o.join())).size).toBe(3);
    const still = track(await new ImageDataGenerator().flowFromDirectory(dir, { targetSize: [4, 5], batchSize: 4, shuffle: false, ...opts }));
    const a = (await epoch(still)).flatMap((b) => firstValues(b, 60));
    expect((await epoch(still)).flatMap((b) => firstValues(b, 60))).toEqual(a);
  });

  it('is reproducible with a seed, in worker threads and in the main thread alike', async () => {
    const dir = tempDir();
    writeTree(dir, { 'a/1.png': pngRgb(12, 16, pattern(12, 16, 1)), 'a/2.jpg': jpegRgb(12, 16, pattern(12, 16, 2)), 'b/3.png': pngRgb(9, 20, pattern(9, 20, 3)) });
    const { opts } = sinks();
    const gen = new ImageDataGenerator({ rescale: 1 / 255, rotationRange: 30, widthShiftRange: 0.3, zoomRange: 0.3, horizontalFlip: true, verticalFlip: true });
    const run = async (seed: number, workers?: number) => {
      const f = track(await gen.flowFromDirectory(dir, { targetSize: [12, 16], batchSize: 2, seed, workers, ...opts }));
      const xs: number[] = [];
      for (let e = 0; e < 2; e++) for (const b of await epoch(f)) xs.push(...b.x);
      return xs;
    };
    const a = await run(7);
    expect(await run(7)).toEqual(a);
    expect(await run(7, 0)).toEqual(a);
    expect(await run(8)).not.toEqual(a);
  });

  it('continues the stream when a consumer stops part-way (fit with stepsPerEpoch < length)', async () => {
    const dir = tempDir();
    const files: Record<string, Uint8Array> = {};
    for (let i = 0; i < 6; i++) files[`c${i % 2}/f${i}.png`] = solid(i);
    writeTree(dir, files);
    const { opts } = sinks();
    const flow = track(await new ImageDataGenerator().flowFromDirectory(dir, { targetSize: [4, 5], batchSize: 2, shuffle: false, ...opts }));
    const it1 = flow[Symbol.asyncIterator]();
    await it1.next(); // one step, then abandoned
    const rest = (await epoch(flow)).map((b) => firstValues(b, 60));
    expect(rest).toEqual([[4, 1], [3, 5], [0, 2]]); // files in order: c0/f0,f2,f4, c1/f1,f3,f5; then the next epoch
  });
});

describe('flowFromDirectory: bad input', () => {
  it('skips unreadable files with a counted warning that names each one', async () => {
    const dir = tempDir();
    const png = solid(5);
    const crc = png.slice();
    crc[40] ^= 0xff;
    const jpg = jpegRgb(8, 8, pattern(8, 8));
    writeTree(dir, {
      'a/good.png': png,
      'a/truncated.png': png.subarray(0, png.length - 30),
      'a/crc.png': crc,
      'a/text.png': 'I am not a PNG',
      'b/good.jpg': jpg,
      'b/truncated.jpg': jpg.subarray(0, jpg.length >> 1),
      'b/empty.jpeg': new Uint8Array(0),
    });
    const { out, opts } = sinks();
    const flow = track(await new ImageDataGenerator().flowFromDirectory(dir, { targetSize: [4, 5], ...opts }));
    expect(out.log).toEqual(['Found 2 images belonging to 2 classes.']);
    expect(out.warn).toHaveLength(1);
    const w = out.warn[0];
    expect(w).toMatch(/skipped 5 of 7 image files that cannot be used/);
    expect(w).toMatch(/a\/truncated.png: truncated PNG/);
    expect(w).toMatch(/a\/crc.png: corrupt PNG \(CRC mismatch/);
    expect(w).toMatch(/a\/text.png: not a PNG, JPEG, BMP or PNM image/);
    expect(w).toMatch(/b\/truncated.jpg: truncated JPEG/);
    expect(w).toMatch(/b\/empty.jpeg: empty file/);
    expect(flow.skipped.map((s) => s.file).sort()).toEqual(['a/crc.png', 'a/text.png', 'a/truncated.png', 'b/empty.jpeg', 'b/truncated.jpg']);
    expect(flow.filenames).toEqual(['a/good.png', 'b/good.jpg']);
  });

  it('warns about an empty class folder, naming it and its index', async () => {
    const dir = tempDir();
    writeTree(dir, { 'a/1.png': solid(1), 'b/2.png': solid(2), 'empty': null });
    const { out, opts } = sinks();
    const flow = track(await new ImageDataGenerator().flowFromDirectory(dir, { targetSize: [4, 5], ...opts }));
    expect(flow.classIndices).toEqual({ a: 0, b: 1, empty: 2 });
    expect(out.warn.join('\n')).toMatch(/class folder 'empty' \(index 2\) in .* has no usable images/);
    expect(out.log).toEqual(['Found 2 images belonging to 3 classes.']);
  });

  it('refuses binary mode without exactly two classes', async () => {
    const dir = tempDir();
    writeTree(dir, { 'only/1.png': solid(1) });
    await expect(new ImageDataGenerator().flowFromDirectory(dir, { classMode: 'binary', ...sinks().opts })).rejects.toThrow(/classMode 'binary' needs exactly 2 class folders, found 1 in '.*': only/);
  });

  it('names a missing directory, a file given as directory, and a folder without class folders', async () => {
    const gen = new ImageDataGenerator();
    await expect(gen.flowFromDirectory('/no/such/dir', sinks().opts)).rejects.toThrow(/flowFromDirectory\('\/no\/such\/dir'\): directory '\/no\/such\/dir' does not exist/);
    const dir = tempDir();
    writeTree(dir, { 'flat.png': solid(1) });
    await expect(gen.flowFromDirectory(join(dir, 'flat.png'), sinks().opts)).rejects.toThrow(/is a file, not a directory/);
    await expect(gen.flowFromDirectory(dir, sinks().opts)).rejects.toThrow(/no class subfolders in '.*'.*1 files directly inside are not used/);
  });

  it('fails when no image is usable, and names missing folders given in classes', async () => {
    const dir = tempDir();
    writeTree(dir, { 'a/x.png': 'junk', 'b/y.txt': 'text' });
    const { out, opts } = sinks();
    await expect(new ImageDataGenerator().flowFromDirectory(dir, opts)).rejects.toThrow(/no usable images in '.*' \(class folders: a, b/);
    expect(out.warn[0]).toMatch(/a\/x.png: not a PNG, JPEG/);
    await expect(new ImageDataGenerator().flowFromDirectory(dir, { classes: ['a', 'cats'], ...opts })).rejects.toThrow(/class folder 'cats' not found in .* \(it has: a, b\)/);
  });

  it('a file that passes the check but fails to decode stops the batch with its name', async () => {
    // valid chunk layout and CRCs around deflate data that is garbage
    const bad = withIdat(solid(1, 6, 6), new Uint8Array([0x78, 0x9c, 1, 2, 3, 4, 5, 6, 7, 8]));
    const dir = tempDir();
    writeTree(dir, { 'a/bad.png': bad, 'b/ok.png': solid(2) });
    const { opts } = sinks();
    const flow = track(await new ImageDataGenerator().flowFromDirectory(dir, { targetSize: [6, 6], batchSize: 2, ...opts }));
    expect(flow.samples).toBe(2);
    await expect(epoch(flow)).rejects.toThrow(/cannot load 'a\/bad.png': cannot decode the PNG data/);
  });
});

describe('prefetching', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir();
    const files: Record<string, Uint8Array> = {};
    for (let i = 0; i < 16; i++) files[`c${i % 2}/f${i}.png`] = pngRgb(96, 128, pattern(96, 128, i));
    writeTree(dir, files);
  });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  /** Mean wait of next() after the first, for a consumer that spends `work` ms per batch. */
  async function meanWait(prefetch: number, workers: number, work: number): Promise<number> {
    const gen = new ImageDataGenerator({ rotationRange: 20, zoomRange: 0.2, horizontalFlip: true });
    const flow = track(await gen.flowFromDirectory(dir, { targetSize: [96, 128], batchSize: 4, seed: 1, prefetch, workers, ...sinks().opts }));
    for await (const _ of flow) await sleep(work);
    expect(flow.waits).toHaveLength(flow.length);
    const later = flow.waits.slice(1);
    return later.reduce((a, b) => a + b, 0) / later.length;
  }

  it.each([[1, 'a worker thread'], [0, 'the main thread']])('hides loading behind a slow consumer (%s = %s)', async (workers) => {
    const without = await meanWait(0, workers, 120);
    const withPrefetch = await meanWait(2, workers, 120);
    expect(without).toBeGreaterThan(5); // decoding + augmenting 4 images is real work
    expect(withPrefetch).toBeLessThan(without * 0.3);
  });
});

describe('browser sources', () => {
  const rgb = pattern(4, 5, 9);
  const files = () => {
    const mk = (path: string, bytes: Uint8Array | string) => {
      const f = new File([typeof bytes === 'string' ? bytes : new Uint8Array(bytes)], path.split('/').pop()!);
      Object.defineProperty(f, 'webkitRelativePath', { value: path });
      return f;
    };
    return [mk('picked/dogs/b.png', pngRgb(4, 5, rgb)), mk('picked/cats/x/a.png', solid(3)), mk('picked/cats/a.jpg', jpegRgb(4, 5, rgb)), mk('picked/cats/bad.png', 'nope'), mk('picked/top.png', solid(1))];
  };

  it('flowFromFiles: classes from the picked folder structure, same messages', async () => {
    const { out, opts } = sinks();
    const flow = track(await new ImageDataGenerator({ rescale: 1 / 255 }).flowFromFiles(files(), { targetSize: [4, 5], classMode: 'binary', shuffle: false, ...opts }));
    expect(out.log).toEqual(['Found 3 images belonging to 2 classes.']);
    expect(flow.filenames).toEqual(['cats/a.jpg', 'cats/x/a.png', 'dogs/b.png']);
    expect(out.warn.join('\n')).toMatch(/cats\/bad.png: not a PNG, JPEG/);
    expect(out.warn.join('\n')).toMatch(/outside the class folders: 'picked\/top.png'/);
    const [b] = await epoch(flow);
    expect(Array.from(b.y)).toEqual([0, 0, 1]);
    expect(b.x[60]).toBe(Math.fround(3 * Math.fround(1 / 255)));
  });

  it('flowFromFiles with a class map, flowFromUrls over HTTP', async () => {
    const { opts } = sinks();
    const byClass = await new ImageDataGenerator().flowFromFiles({ b: [new File([new Uint8Array(solid(7))], 'q.png')], a: [new File([new Uint8Array(solid(8))], 'p.png')] }, { targetSize: [4, 5], shuffle: false, ...opts });
    track(byClass);
    expect(byClass.classIndices).toEqual({ a: 0, b: 1 });
    expect(firstValues((await epoch(byClass))[0], 60)).toEqual([8, 7]);

    const served: Record<string, Uint8Array> = { '/train/cats/1.png': solid(11), '/train/dogs/2.png': solid(22) };
    const server = createServer((req, res) => {
      const body = served[req.url ?? ''];
      res.statusCode = body ? 200 : 404;
      res.end(body ? Buffer.from(body) : 'not found');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      const { out, opts: o2 } = sinks();
      const flow = track(await new ImageDataGenerator().flowFromUrls([`${base}/train/dogs/2.png`, `${base}/train/cats/1.png`, `${base}/train/cats/missing.png`], { targetSize: [4, 5], classMode: 'binary', shuffle: false, ...o2 }));
      expect(flow.classIndices).toEqual({ cats: 0, dogs: 1 });
      expect(out.warn.join('\n')).toMatch(/cats\/missing.png: cannot read it: HTTP 404/);
      const [b] = await epoch(flow);
      expect(firstValues(b, 60)).toEqual([11, 22]);
      expect(Array.from(b.y)).toEqual([0, 1]);
    } finally {
      server.close();
    }
  });
});
