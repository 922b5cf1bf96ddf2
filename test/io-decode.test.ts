// PNG and JPEG decoding to RGB as Keras's load_img sees it, and the structural check that
// rejects truncated files and non-images before training.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import golden from './fixtures/augment/golden.json' with { type: 'json' };
import { checkImage, decodeRgb, ImageError } from '../src/io/image-decode.ts';
import { readPngBrowser } from '../src/io/png-browser.ts';
import { readPngNode } from '../src/io/png-node.ts';
import { deflateSync } from 'node:zlib';
import { jpegRgb, pattern, png16, pngGray, pngRaw, pngRgb, pngRgba, withChunk, withIdat } from './io-images.ts';

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

describe.each(readers)('PNG data streams with %s', (_, read) => {
  const rgbAt = (x: number, y: number, c: number) => (x * 37 + y * 11 + c * 80) & 255;

  it('Adam7-interlaced RGB and 2-bit gray, split over IDAT chunks, decode pixel for pixel', () => {
    for (const [h, w] of [[5, 7], [9, 3], [1, 1]]) {
      const png = pngRaw(h, w, { colorType: 2, depth: 8, interlaced: true, sample: rgbAt, idatSplit: 5 });
      const img = decodeRgb(png, read);
      expect([img.height, img.width]).toEqual([h, w]);
      expect(Array.from(img.data)).toEqual(Array.from({ length: h * w * 3 }, (_, i) => rgbAt(Math.floor(i / 3) % w, Math.floor(i / 3 / w), i % 3)));
    }
    const gray = decodeRgb(pngRaw(6, 5, { colorType: 0, depth: 2, interlaced: true, sample: (x, y) => (x + y) & 3 }), read);
    expect(Array.from(gray.data)).toEqual(Array.from({ length: 90 }, (_, i) => ((Math.floor(i / 3) % 5) + Math.floor(i / 15)) % 4 * 85));
  });

  it('a corrupt, short or overlong stream is refused on every read, never decoded to garbage', () => {
    const base = pngRgb(6, 6, pattern(6, 6));
    const rows = 6 * (1 + 18);
    const cases: [Uint8Array, RegExp][] = [
      [withIdat(base, new Uint8Array([0x78, 0x9c, 1, 2, 3, 4, 5, 6, 7, 8])), /cannot decode the PNG data/],
      [withIdat(base, new Uint8Array(deflateSync(new Uint8Array(rows - 19)))), /cannot decode the PNG data/],
      [withIdat(base, new Uint8Array(deflateSync(new Uint8Array(rows + 40)))), /cannot decode the PNG data/],
    ];
    for (const [png, why] of cases) {
      // the failure this guards against was random: pngjs's inflater returned unset memory
      for (let i = 0; i < 30; i++) expect(() => decodeRgb(png, read)).toThrow(why);
    }
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
    expect(reason(new TextEncoder().encode('hello, I am text'))).toMatch(/not a PNG, JPEG, BMP or PNM image/);
    expect(reason(png.subarray(0, png.length - 20))).toMatch(/truncated PNG/);
    expect(reason(png.subarray(0, 20))).toMatch(/truncated PNG/);
    const flipped = png.slice();
    flipped[45] ^= 0x10;
    expect(reason(flipped)).toMatch(/corrupt PNG \(CRC mismatch in the \w+ chunk/);
    expect(reason(jpg.subarray(0, Math.floor(jpg.length * 0.6)))).toMatch(/truncated JPEG/);
    expect(reason(jpg.subarray(0, jpg.length - 2))).toMatch(/truncated JPEG/); // no EOI
    expect(reason(new TextEncoder().encode('GIF89a.....'))).toMatch(/GIF images are not supported/);
    expect(reason(new TextEncoder().encode('II*\0........'))).toMatch(/TIFF images are not supported/);
    expect(reason(new TextEncoder().encode('BM..........'))).toMatch(/truncated BMP/);
    expect(reason(new TextEncoder().encode('P6 4 4 255\n.....'))).toMatch(/truncated PNM/);
  });

  it('decodeRgb refuses what checkImage refuses', () => {
    expect(() => decodeRgb(png.subarray(0, 40), readPngNode)).toThrow(ImageError);
    expect(() => decodeRgb(new TextEncoder().encode('nope'), readPngNode)).toThrow(/not a PNG, JPEG/);
  });
});

describe('BMP and PNM (the rest of Keras\'s extension list)', () => {
  it.each(['rgb.bmp', 'rgba.bmp', 'palette.bmp', 'gray.bmp', 'bw.bmp', 'rgb.ppm', 'gray.pgm', 'bw.pbm'])('%s (written by Pillow) equals Pillow decoding', (name) => {
    const img = decodeRgb(fixture(name), readPngNode);
    expect([img.height, img.width]).toEqual([pillow[name].height, pillow[name].width]);
    expect(Array.from(img.data)).toEqual(pillow[name].rgb);
  });

  it('plain (ASCII) PNM, maxval scaling and 16-bit samples', () => {
    const text = (s: string) => new TextEncoder().encode(s);
    expect(Array.from(decodeRgb(text('P3\n# comment\n2 1\n255\n255 0 10  1 2 3\n'), readPngNode).data)).toEqual([255, 0, 10, 1, 2, 3]);
    expect(Array.from(decodeRgb(text('P2 2 1 15\n15 5\n'), readPngNode).data)).toEqual([255, 255, 255, 85, 85, 85]);
    expect(Array.from(decodeRgb(text('P1 3 1\n101\n'), readPngNode).data)).toEqual([0, 0, 0, 255, 255, 255, 0, 0, 0]);
    const wide = new Uint8Array([...text('P5 2 1 65535\n'), 0xff, 0xff, 0x80, 0x00]);
    expect(Array.from(decodeRgb(wide, readPngNode).data)).toEqual([255, 255, 255, 128, 128, 128]);
    expect(() => checkImage(text('P2 2 2 255\n1 2 3'))).toThrow(/truncated PNM \(3 of 4 samples\)/);
  });

  it('16-bit BMP with 5-6-5 bit fields; RLE is refused with a reason', () => {
    // 2x1, BITMAPINFOHEADER + three masks, rows padded to 4 bytes
    const b = new Uint8Array(14 + 40 + 12 + 4);
    const dv = new DataView(b.buffer);
    b.set([0x42, 0x4d]);
    dv.setUint32(2, b.length, true);
    dv.setUint32(10, 14 + 40 + 12, true);
    dv.setUint32(14, 40, true);
    dv.setInt32(18, 2, true);
    dv.setInt32(22, 1, true);
    dv.setUint16(26, 1, true);
    dv.setUint16(28, 16, true);
    dv.setUint32(30, 3, true);
    dv.setUint32(54, 0xf800, true);
    dv.setUint32(58, 0x07e0, true);
    dv.setUint32(62, 0x001f, true);
    dv.setUint16(66, 0xf800, true); // red
    dv.setUint16(68, 0x07ff, true); // green + blue
    expect(Array.from(decodeRgb(b, readPngNode).data)).toEqual([255, 0, 0, 0, 255, 255]);
    dv.setUint32(30, 1, true);
    expect(() => checkImage(b)).toThrow(/unsupported BMP \(RLE compression\)/);
    expect(() => checkImage(b.subarray(0, 60))).toThrow(ImageError);
  });
});
