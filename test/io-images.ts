// Test images written with pngjs and jpeg-js (and a raw chunk splicer for the PNG variants they
// cannot write), plus temp-folder helpers for the io tests.
import jpeg from 'jpeg-js';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { PNG } from 'pngjs';

/** A deterministic RGB pattern, height x width x 3 bytes. */
export function pattern(h: number, w: number, seed = 1): Uint8Array {
  const out = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      out[i] = (x * 23 + y * 7 + seed * 50) & 255;
      out[i + 1] = (y * 31 + seed * 90) & 255;
      out[i + 2] = (x * y * 5 + seed * 13) & 255;
    }
  }
  return out;
}

function rgba(h: number, w: number, rgb: Uint8Array, alpha: (i: number) => number = () => 255): Buffer {
  const data = Buffer.alloc(h * w * 4);
  for (let i = 0; i < h * w; i++) {
    data[i * 4] = rgb[i * 3];
    data[i * 4 + 1] = rgb[i * 3 + 1];
    data[i * 4 + 2] = rgb[i * 3 + 2];
    data[i * 4 + 3] = alpha(i);
  }
  return data;
}

export function pngRgb(h: number, w: number, rgb: Uint8Array): Uint8Array {
  const png = new PNG({ width: w, height: h });
  png.data = rgba(h, w, rgb);
  return new Uint8Array(PNG.sync.write(png, { colorType: 2 }));
}

export function pngRgba(h: number, w: number, rgb: Uint8Array, alpha: (i: number) => number): Uint8Array {
  const png = new PNG({ width: w, height: h });
  png.data = rgba(h, w, rgb, alpha);
  return new Uint8Array(PNG.sync.write(png, { colorType: 6 }));
}

/** 8-bit grayscale (colorType 0) or grayscale + alpha (4) from one gray byte per pixel. */
export function pngGray(h: number, w: number, gray: Uint8Array, withAlpha = false): Uint8Array {
  const png = new PNG({ width: w, height: h });
  const data = Buffer.alloc(h * w * 4);
  for (let i = 0; i < h * w; i++) data.fill(gray[i], i * 4, i * 4 + 3), (data[i * 4 + 3] = withAlpha ? (i * 40) & 255 : 255);
  png.data = data;
  return new Uint8Array(PNG.sync.write(png, { colorType: withAlpha ? 4 : 0, inputColorType: 6 }));
}

/** 16-bit RGB (colorType 2) or gray (0) from 16-bit samples (3 or 1 per pixel). */
export function png16(h: number, w: number, samples: Uint16Array, gray: boolean): Uint8Array {
  const png = new PNG({ width: w, height: h, bitDepth: 16 });
  const data = new Uint16Array(h * w * 4);
  for (let i = 0; i < h * w; i++) {
    for (let k = 0; k < 3; k++) data[i * 4 + k] = gray ? samples[i] : samples[i * 3 + k];
    data[i * 4 + 3] = 65535;
  }
  png.data = Buffer.from(data.buffer);
  return new Uint8Array(PNG.sync.write(png, { colorType: gray ? 0 : 2, inputColorType: 6, bitDepth: 16, inputHasAlpha: true }));
}

let crcTable: Uint32Array | null = null;
function crc32(b: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const v of b) c = crcTable[(c ^ v) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function firstIdat(png: Uint8Array): number {
  let p = 8;
  while (String.fromCharCode(...png.subarray(p + 4, p + 8)) !== 'IDAT') p += 12 + new DataView(png.buffer, png.byteOffset).getUint32(p);
  return p;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const chunk = new Uint8Array(12 + data.length);
  const dv = new DataView(chunk.buffer);
  dv.setUint32(0, data.length);
  chunk.set([...type].map((c) => c.charCodeAt(0)), 4);
  chunk.set(data, 8);
  dv.setUint32(8 + data.length, crc32(chunk.subarray(4, 8 + data.length)));
  return chunk;
}

/** Inserts a chunk (with a correct CRC) before the first IDAT of a PNG. */
export function withChunk(png: Uint8Array, type: string, data: Uint8Array): Uint8Array {
  const p = firstIdat(png);
  return new Uint8Array([...png.subarray(0, p), ...chunk(type, data), ...png.subarray(p)]);
}

/** Replaces the data of the (only) IDAT chunk, with a correct CRC: a well-formed file with bad pixels. */
export function withIdat(png: Uint8Array, data: Uint8Array): Uint8Array {
  const p = firstIdat(png);
  const len = new DataView(png.buffer, png.byteOffset).getUint32(p);
  return new Uint8Array([...png.subarray(0, p), ...chunk('IDAT', data), ...png.subarray(p + 12 + len)]);
}

export function jpegRgb(h: number, w: number, rgb: Uint8Array, quality = 95): Uint8Array {
  return new Uint8Array(jpeg.encode({ width: w, height: h, data: rgba(h, w, rgb) }, quality).data);
}

export function tempDir(prefix = 'io-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes files (path -> bytes or text) under root, creating folders. */
export function writeTree(root: string, files: Record<string, Uint8Array | string | null>): void {
  for (const [rel, content] of Object.entries(files)) {
    const path = join(root, rel);
    mkdirSync(content === null ? path : dirname(path), { recursive: true });
    if (content !== null) writeFileSync(path, content);
  }
}

/**
 * A PNG written sample by sample (filter 0 on every row), for what pngjs cannot write: Adam7
 * interlacing and bit depths below 8. `sample(x, y, c)` gives channel c of pixel (x, y).
 */
export function pngRaw(h: number, w: number, o: { colorType: 0 | 2; depth: 1 | 2 | 4 | 8; interlaced: boolean; sample: (x: number, y: number, c: number) => number; idatSplit?: number }): Uint8Array {
  const ch = o.colorType === 2 ? 3 : 1;
  const rows: number[] = [];
  const image = (x0: number, y0: number, dx: number, dy: number) => {
    const pw = Math.ceil((w - x0) / dx);
    const ph = Math.ceil((h - y0) / dy);
    if (!pw || !ph) return;
    for (let j = 0; j < ph; j++) {
      const bits: number[] = [];
      for (let i = 0; i < pw; i++) for (let c = 0; c < ch; c++) bits.push(o.sample(x0 + i * dx, y0 + j * dy, c));
      const row = new Uint8Array(Math.ceil((bits.length * o.depth) / 8));
      bits.forEach((v, k) => (row[(k * o.depth) >> 3] |= v << (8 - o.depth - ((k * o.depth) & 7))));
      rows.push(0, ...row);
    }
  };
  if (!o.interlaced) image(0, 0, 1, 1);
  else for (const [x0, y0, dx, dy] of [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]]) image(x0, y0, dx, dy);
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, w);
  new DataView(ihdr.buffer).setUint32(4, h);
  ihdr.set([o.depth, o.colorType, 0, 0, o.interlaced ? 1 : 0], 8);
  const z = new Uint8Array(deflateSync(Uint8Array.from(rows)));
  const cut = o.idatSplit ?? z.length; // a stream split over two IDAT chunks
  const idat = cut < z.length ? [chunk('IDAT', z.subarray(0, cut)), chunk('IDAT', z.subarray(cut))] : [chunk('IDAT', z)];
  return new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...chunk('IHDR', ihdr), ...idat.flatMap((c) => [...c]), ...chunk('IEND', new Uint8Array(0))]);
}
