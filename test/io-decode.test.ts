// PNG and JPEG decoding to RGB as Keras's load_img sees it, and the structural check that
// rejects truncated files and non-images before training.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import golden from './fixtures/augment/golden.json' with { type: 'json' };
import { checkImage, decodeRgb, ImageError } from '../src/io/image-decode.ts';
import { readPngBrowser } from '../src/io/png-browser.ts';
import { readPngNode } from '../src/io/png-node.ts';
import { jpegRgb, pattern, png16, pngGray, pngRgb, pngRgba, withChunk } from './io-images.ts';

const pillow = (golden as unknown as { pillowDecoded: Record<string, { height: number; width: number; rgb: number[] }> }).pillowDecoded;
const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`./fixtures/images/${name}`, import.meta.url)));

function diff(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; mean: number } {
  expect(a.length).toBe(b.length);
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    max = Math.max(max, d);
    sum += d;
  }
  return { max, mean: sum / a.length };
}

const readers = [['pngjs (node)', readPngNode], ['pngjs (browser bundle)', readPngBrowser]] as const;

describe.each(readers)('PNG with %s', (_, read) => {
  const h = 5;
  const w = 7;
  const rgb = pattern(h, w, 3);

  it('RGB', () => {
    const img = decodeRgb(pngRgb(h, w, rgb), read);
    expect([img.height, img.width]).toEqual([h, w]);
    expect(Array.from(img.data)).toEqual(Array.from(rgb));
  });

  it('RGBA: alpha is dropped, colour kept even where fully transparent (Pillow convert)', () => {
    const img = decodeRgb(pngRgba(h, w, rgb, (i) => (i % 3 ? 0 : 128)), read);
    expect(Array.from(img.data)).toEqual(Array.from(rgb));
  });

  it('grayscale and grayscale + alpha: gray replicated to RGB', () => {
    const gray = Uint8Array.from({ length: h * w }, (_, i) => i * 7);
    const want = Array.from(gray).flatMap((v) => [v, v, v]);
    expect(Array.from(decodeRgb(pngGray(h, w, gray), read).data)).toEqual(want);
    expect(Array.from(decodeRgb(pngGray(h, w, gray, true), read).data)).toEqual(want);
  });

  it('16-bit RGB and gray: the high byte of each sample (as Pillow reads 16-bit RGB)', () => {
    const s = Uint16Array.from({ length: h * w * 3 }, (_, i) => (i * 2861) & 0xffff);
    expect(Array.from(decodeRgb(png16(h, w, s, false), read).data)).toEqual(Array.from(s, (v) => v >> 8));
    const g = Uint16Array.from({ length: h * w }, (_, i) => i * 1800);
    expect(Array.from(decodeRgb(png16(h, w, g, true), read).data)).toEqual(Array.from(g).flatMap((v) => [v >> 8, v >> 8, v >> 8]));
  });

  it('a tRNS colour key does not black out matching pixels', () => {
    const key = new Uint8Array([0, rgb[0], 0, rgb[1], 0, rgb[2]]); // the first pixel's colour, 16-bit fields
    const img = decodeRgb(withChunk(pngRgb(h, w, rgb), 'tRNS', key), read);
    expect(Array.from(img.data)).toEqual(Array.from(rgb));
  });

  it('palette (written by Pillow) equals Pillow decoding', () => {
    const img = decodeRgb(fixture('palette.png'), read);
    expect(Array.from(img.data)).toEqual(pillow['palette.png'].rgb);
  });
});

describe('JPEG (jpeg-js)', () => {
  it('baseline round trip stays close to the source', () => {
    const rgb = pattern(16, 24, 2);
    const img = decodeRgb(jpegRgb(16, 24, rgb, 95), readPngNode);
    expect([img.height, img.width]).toEqual([16, 24]);
    expect(diff(img.data, rgb).mean).toBeLessThan(8);
  });

  it.each(['baseline.jpg', 'progressive.jpg', 'gray.jpg'])('%s (written by Pillow) is close to Pillow/libjpeg decoding', (name) => {
    const img = decodeRgb(fixture(name), readPngNode);
    const ref = pillow[name];
    expect([img.height, img.width]).toEqual([ref.height, ref.width]);
    const d = diff(img.data, ref.rgb);
    // jpeg-js upsamples chroma by replication, libjpeg by interpolation: a few levels apart on
    // subsampled colour; luma alone differs by IDCT rounding only.
    if (name === 'gray.jpg') expect(d.max).toBeLessThanOrEqual(1);
    else expect(d.mean).toBeLessThan(6);
  });

  it('progressive and baseline files of the same picture decode alike', () => {
    const a = decodeRgb(fixture('progressive.jpg'), readPngNode);
    const b = decodeRgb(fixture('baseline.jpg'), readPngNode);
    expect(diff(a.data, b.data).max).toBeLessThanOrEqual(2);
  });
});

describe('structural check', () => {
  const png = pngRgb(6, 6, pattern(6, 6));
  const jpg = jpegRgb(8, 8, pattern(8, 8));
  const reason = (b: Uint8Array) => {
    try {
      checkImage(b);
    } catch (e) {
      expect(e).toBeInstanceOf(ImageError);
      return (e as ImageError).reason;
    }
    return null;
  };

  it('accepts good files and reads their size', () => {
    expect(checkImage(png)).toEqual({ format: 'png', width: 6, height: 6 });
    expect(checkImage(jpg)).toEqual({ format: 'jpeg', width: 8, height: 8 });
    expect(checkImage(fixture('progressive.jpg'))).toEqual({ format: 'jpeg', width: 20, height: 12 });
  });

  it('names what is wrong', () => {
    expect(reason(new Uint8Array(0))).toBe('empty file');
    expect(reason(new TextEncoder().encode('hello, I am text'))).toMatch(/not a PNG or JPEG image/);
    expect(reason(png.subarray(0, png.length - 20))).toMatch(/truncated PNG/);
    expect(reason(png.subarray(0, 20))).toMatch(/truncated PNG/);
    const flipped = png.slice();
    flipped[45] ^= 0x10;
    expect(reason(flipped)).toMatch(/corrupt PNG \(CRC mismatch in the \w+ chunk/);
    expect(reason(jpg.subarray(0, Math.floor(jpg.length * 0.6)))).toMatch(/truncated JPEG/);
    expect(reason(jpg.subarray(0, jpg.length - 2))).toMatch(/truncated JPEG/); // no EOI
    expect(reason(new TextEncoder().encode('GIF89a.....'))).toMatch(/GIF images are not supported/);
    expect(reason(new TextEncoder().encode('BM..........'))).toMatch(/BMP images are not supported/);
  });

  it('decodeRgb refuses what checkImage refuses', () => {
    expect(() => decodeRgb(png.subarray(0, 40), readPngNode)).toThrow(ImageError);
    expect(() => decodeRgb(new TextEncoder().encode('nope'), readPngNode)).toThrow(/not a PNG or JPEG/);
  });
});
