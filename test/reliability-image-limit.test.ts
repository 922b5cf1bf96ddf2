// Issue 15 (2): a pixel limit against decompression bombs, read from the header in the up-front
// file check and again in the decoder. The crafted files claim a huge size in a few hundred
// bytes; no test allocates their pixels.
import { writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { ImageDataGenerator } from '../src/index.ts';
import { checkImage, decodeRgb, MAX_IMAGE_PIXELS } from '../src/io/image-decode.ts';
import { readPngNode } from '../src/io/png-node.ts';
import { pattern, pngRgb, tempDir, writeTree } from './io-images.ts';

function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const v of b) {
    c ^= v;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): number[] {
  const c = new Uint8Array(12 + data.length);
  const dv = new DataView(c.buffer);
  dv.setUint32(0, data.length);
  c.set([...type].map((ch) => ch.charCodeAt(0)), 4);
  c.set(data, 8);
  dv.setUint32(8 + data.length, crc32(c.subarray(4, 8 + data.length)));
  return [...c];
}

/** A well-formed PNG (valid CRCs) whose header claims width x height RGB pixels; its IDAT holds one row. */
function bombPng(width: number, height: number): Uint8Array {
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, width);
  new DataView(ihdr.buffer).setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const idat = new Uint8Array(deflateSync(new Uint8Array(1 + 3 * 64)));
  return new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...chunk('IHDR', ihdr), ...chunk('IDAT', idat), ...chunk('IEND', new Uint8Array(0))]);
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function dataset(): string {
  const root = tempDir('img-limit-');
  dirs.push(root);
  writeTree(root, {
    'cats/a.png': pngRgb(32, 32, pattern(32, 32, 1)),
    'cats/b.png': pngRgb(32, 32, pattern(32, 32, 2)),
    'dogs/c.png': pngRgb(32, 32, pattern(32, 32, 3)),
    'dogs/bomb.png': bombPng(20000, 20000),
  });
  return root;
}

describe('pixel limit', () => {
  it('is Pillow\'s MAX_IMAGE_PIXELS; the header check refuses above it, and so does the decoder', () => {
    expect(MAX_IMAGE_PIXELS).toBe(178_956_970);
    const bomb = bombPng(20000, 20000);
    expect(bomb.length).toBeLessThan(400);
    expect(checkImage(bomb)).toEqual({ format: 'png', width: 20000, height: 20000 }); // no limit asked
    expect(() => checkImage(bomb, MAX_IMAGE_PIXELS)).toThrow('20000x20000 = 400,000,000 pixels, over the limit of 178,956,970 (a decompression bomb?); if the image is genuine, raise the limit with train --max-image-pixels');
    // exactly at the limit is allowed, one pixel over is not
    expect(checkImage(bombPng(13377, 13378), 13377 * 13378).width).toBe(13377);
    expect(() => checkImage(bombPng(13377, 13378), 13377 * 13378 - 1)).toThrow(/over the limit of 178,957,505/);
    // the decoder refuses before inflating or allocating anything
    expect(() => decodeRgb(bomb, readPngNode, MAX_IMAGE_PIXELS)).toThrow(/20000x20000 = 400,000,000 pixels, over the limit/);
    expect(() => decodeRgb(pngRgb(32, 32, pattern(32, 32)), readPngNode, 1000)).toThrow(/32x32 = 1,024 pixels, over the limit of 1,000/);
    expect(decodeRgb(pngRgb(32, 32, pattern(32, 32)), readPngNode, 1024).width).toBe(32);
  });

  it('flowFromDirectory skips an image over the limit up front, naming the file, its size and the limit', async () => {
    const root = dataset();
    const warnings: string[] = [];
    const gen = new ImageDataGenerator({ rescale: 1 / 255 });
    const flow = await gen.flowFromDirectory(root, { targetSize: [32, 32], batchSize: 2, workers: 0, log: () => {}, warn: (l) => warnings.push(l) });
    try {
      expect(flow.samples).toBe(3);
      expect(flow.skipped).toEqual([{ file: 'dogs/bomb.png', reason: expect.stringContaining('20000x20000 = 400,000,000 pixels, over the limit of 178,956,970') }]);
      expect(warnings.join('\n')).toMatch(/skipped 1 of 4 image files.*\n {2}dogs\/bomb\.png: 20000x20000 = 400,000,000 pixels, over the limit of 178,956,970 .*--max-image-pixels/);
    } finally {
      await flow.close();
    }
    // a lower limit, and no limit (null or Infinity: the bomb passes the check; it is never loaded here)
    const low = await gen.flowFromDirectory(root, { targetSize: [32, 32], maxImagePixels: 1000, workers: 0, log: () => {}, warn: () => {} }).catch((e: Error) => e);
    expect(String(low)).toMatch(/no usable images/);
    for (const maxImagePixels of [null, Infinity]) {
      const all = await gen.flowFromDirectory(root, { targetSize: [32, 32], maxImagePixels, workers: 0, log: () => {}, warn: () => {} });
      expect(all.samples).toBe(4);
      await all.close();
    }
    await expect(gen.flowFromDirectory(root, { maxImagePixels: -5 })).rejects.toThrow(/maxImagePixels must be a whole number of pixels above 0, or null/);
  });

  it('an image replaced by a bomb after the check is refused when its batch is built', async () => {
    const root = dataset();
    const gen = new ImageDataGenerator({ rescale: 1 / 255 });
    const flow = await gen.flowFromDirectory(join(root), { targetSize: [32, 32], batchSize: 3, shuffle: false, workers: 0, prefetch: 0, log: () => {}, warn: () => {} });
    try {
      writeFileSync(join(root, 'cats', 'b.png'), bombPng(30000, 30000));
      await expect(flow.nextBatch()).rejects.toThrow(/cannot load 'cats\/b\.png': 30000x30000 = 900,000,000 pixels, over the limit of 178,956,970/);
    } finally {
      await flow.close();
    }
  });
});
