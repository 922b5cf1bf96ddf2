/**
 * Image files -> 8-bit RGB, the way Keras's load_img sees them (Pillow's open + convert('RGB')):
 * the format is taken from the bytes, not the extension; alpha is dropped, not composited;
 * grayscale and palette images are expanded. PNG goes through pngjs (whose reader the caller
 * passes in: Node's build uses zlib, browsers use pngjs's bundled build), JPEG through jpeg-js,
 * BMP and PNM through decode-bmp-pnm.ts. TIFF (also on Keras's list) is reported as unsupported.
 *
 * `checkImage` is a cheap structural pass run over every file before training starts (PNG chunk
 * layout and CRCs, JPEG marker walk to the end-of-image marker, BMP/PNM sizes against the file
 * length), so truncated files and non-images are reported up front instead of failing mid-epoch.
 */
import jpeg from 'jpeg-js';
import { checkBmp, checkPnm, decodeBmp, decodePnm } from './decode-bmp-pnm.ts';
import { ImageError, type ImageFormat, type ImageInfo, type RgbImage } from './image-error.ts';

export { ImageError, type ImageFormat, type ImageInfo, type RgbImage } from './image-error.ts';

/** What pngjs's PNG.sync.read returns (the fields used here). */
export interface PngData {
  width: number;
  height: number;
  data: ArrayLike<number>;
}
/**
 * Reads a PNG whose chunk layout checkPng has passed. `stream` is the concatenated IDAT data and
 * `inflatedBytes` the exact size it must inflate to (filter bytes included), so a reader whose
 * inflater can miss a corrupt stream (pngjs on node:zlib does) can check it first.
 */
export type PngReader = (bytes: Uint8Array, options: { skipRescale: boolean; stream: Uint8Array; inflatedBytes: number }) => PngData;

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(b: Uint8Array, sig: number[]): boolean {
  if (b.length < sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (b[i] !== sig[i]) return false;
  return true;
}

function ascii(b: Uint8Array, from: number, n: number): string {
  return String.fromCharCode(...b.subarray(from, from + n));
}

/** Names formats we recognise but do not decode, for a clearer message. */
function otherFormat(b: Uint8Array): string | null {
  if (ascii(b, 0, 3) === 'P7\n') return 'PAM';
  if (ascii(b, 0, 4) === 'GIF8') return 'GIF';
  if (ascii(b, 0, 4) === 'II*\0' || ascii(b, 0, 4) === 'MM\0*') return 'TIFF';
  if (ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') return 'WebP';
  return null;
}

export function sniffFormat(b: Uint8Array): ImageFormat | null {
  if (startsWith(b, PNG_SIGNATURE)) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (ascii(b, 0, 2) === 'BM') return 'bmp';
  if (/^P[1-6]\s/.test(ascii(b, 0, 3))) return 'pnm';
  return null;
}

let crcTable: Uint32Array | null = null;
function crc32(b: Uint8Array, from: number, to: number): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = from; i < to; i++) c = crcTable[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function u32(b: Uint8Array, i: number): number {
  return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
}

const PNG_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

interface PngLayout {
  info: ImageInfo;
  depth: number;
  colorType: number;
  interlaced: boolean;
  /** [start, end) of a tRNS chunk (header to CRC) when present */
  trns: [number, number] | null;
  /** [start, end) of each IDAT chunk's data */
  idat: [number, number][];
}

const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** Bytes the IDAT stream inflates to: each (sub)image row is a filter byte and its packed samples. */
function pngInflatedBytes({ info: { width, height }, depth, colorType, interlaced }: PngLayout): number {
  const bits = depth * PNG_CHANNELS[colorType];
  const rows = (w: number, h: number) => (w && h ? h * (1 + Math.ceil((w * bits) / 8)) : 0);
  if (!interlaced) return rows(width, height);
  // Adam7: pass = [x0, y0, dx, dy]
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];
  let n = 0;
  for (const [x0, y0, dx, dy] of passes) n += rows(Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy));
  return n;
}

function pngStream(b: Uint8Array, idat: [number, number][]): Uint8Array {
  if (idat.length === 1) return b.subarray(idat[0][0], idat[0][1]);
  const out = new Uint8Array(idat.reduce((n, [s, e]) => n + e - s, 0));
  let o = 0;
  for (const [s, e] of idat) {
    out.set(b.subarray(s, e), o);
    o += e - s;
  }
  return out;
}

function checkPng(b: Uint8Array): PngLayout {
  let p = 8;
  let layout: PngLayout | null = null;
  let sawPalette = false;
  let sawData = false;
  let trns: [number, number] | null = null;
  const idat: [number, number][] = [];
  for (;;) {
    if (p + 12 > b.length) throw new ImageError(`truncated PNG (${b.length} bytes; the file ends ${layout ? 'before its IEND chunk' : 'inside its header'})`);
    const len = u32(b, p);
    const raw = ascii(b, p + 4, 4);
    // a damaged type is named by its bytes: they must not reach the terminal as they are
    const type = /^[A-Za-z]{4}$/.test(raw) ? raw : `unreadable (bytes ${Array.from(b.subarray(p + 4, p + 8), (x) => x.toString(16).padStart(2, '0')).join(' ')})`;
    if (p + 12 + len > b.length) throw new ImageError(`truncated PNG (${type} chunk at byte ${p} needs ${len} bytes, the file has ${b.length - p - 12} left)`);
    if (crc32(b, p + 4, p + 8 + len) !== u32(b, p + 8 + len)) throw new ImageError(`corrupt PNG (CRC mismatch in the ${type} chunk at byte ${p})`);
    if (!layout) {
      if (type !== 'IHDR' || len !== 13) throw new ImageError('corrupt PNG (first chunk is not IHDR)');
      const width = u32(b, p + 8);
      const height = u32(b, p + 12);
      const depth = b[p + 16];
      const colorType = b[p + 17];
      if (!width || !height) throw new ImageError(`corrupt PNG (size ${width}x${height})`);
      if (!PNG_DEPTHS[colorType]?.includes(depth)) throw new ImageError(`corrupt PNG (bit depth ${depth} with color type ${colorType})`);
      if (b[p + 18] !== 0 || b[p + 19] !== 0 || b[p + 20] > 1) throw new ImageError('corrupt PNG (unknown compression, filter or interlace method)');
      layout = { info: { format: 'png', width, height }, depth, colorType, interlaced: b[p + 20] === 1, trns: null, idat };
    } else if (type === 'PLTE') {
      sawPalette = true;
    } else if (type === 'tRNS') {
      trns = [p, p + 12 + len];
    } else if (type === 'IDAT') {
      if (layout.colorType === 3 && !sawPalette) throw new ImageError('corrupt PNG (palette image without a PLTE chunk)');
      sawData = true;
      idat.push([p + 8, p + 8 + len]);
    } else if (type === 'IEND') {
      if (!sawData) throw new ImageError('corrupt PNG (no IDAT chunk)');
      layout.trns = trns;
      return layout;
    }
    p += 12 + len;
  }
}

/** SOF markers: which JPEG codings jpeg-js decodes (baseline, extended, progressive Huffman). */
const JPEG_SOF: Record<number, string | null> = {
  0xc0: null, 0xc1: null, 0xc2: null,
  0xc3: 'lossless', 0xc5: 'hierarchical', 0xc6: 'hierarchical progressive', 0xc7: 'hierarchical lossless',
  0xc9: 'arithmetic-coded', 0xca: 'arithmetic-coded progressive', 0xcb: 'arithmetic-coded lossless',
  0xcd: 'hierarchical arithmetic-coded', 0xce: 'hierarchical arithmetic-coded progressive', 0xcf: 'hierarchical arithmetic-coded lossless',
};

function checkJpeg(b: Uint8Array): ImageInfo {
  const n = b.length;
  let p = 2;
  let info: ImageInfo | null = null;
  let scans = 0;
  let components: [number, number][] = []; // sampling factors [h, v]
  let hMax = 1;
  let vMax = 1;
  let progressive = false;
  let entropyBytes = 0;
  const truncated = () => new ImageError(`truncated JPEG (${n} bytes; no end-of-image marker${scans ? ` after ${scans} scan${scans > 1 ? 's' : ''}` : ''})`);
  for (;;) {
    if (p >= n) throw truncated();
    if (b[p] !== 0xff) throw new ImageError(`corrupt JPEG (expected a marker at byte ${p})`);
    while (p < n && b[p] === 0xff) p++; // fill bytes
    if (p >= n) throw truncated();
    const m = b[p++];
    if (m === 0xd9) {
      if (!info || !scans) throw new ImageError('corrupt JPEG (end-of-image marker before any image data)');
      // Every block of a baseline scan takes at least 2 bits (a DC code and an end-of-block or
      // AC code); a progressive file's first DC scan at least 1 bit per block of a component.
      // A short file whose header claims far more pixels than its data can hold is refused
      // here, before a decoder allocates the frame (a 1 KB file could claim 10000x10000).
      const blocks = components.map(([h, v]) => Math.ceil(Math.ceil((info!.width * h) / hMax) / 8) * Math.ceil(Math.ceil((info!.height * v) / vMax) / 8));
      const needBits = progressive ? Math.min(...blocks) : 2 * blocks.reduce((a, x) => a + x, 0);
      if (entropyBytes * 8 < needBits) {
        throw new ImageError(`corrupt or truncated JPEG (its ${info.width}x${info.height} frame needs at least ${Math.ceil(needBits / 8).toLocaleString('en-US')} bytes of image data, the file has ${entropyBytes.toLocaleString('en-US')})`);
      }
      return info;
    }
    if (m === 0xd8) throw new ImageError('corrupt JPEG (second start-of-image marker)');
    if ((m >= 0xd0 && m <= 0xd7) || m === 0x01) continue;
    if (p + 2 > n) throw truncated();
    const len = (b[p] << 8) | b[p + 1];
    if (len < 2) throw new ImageError(`corrupt JPEG (segment length ${len} at byte ${p})`);
    if (p + len > n) throw truncated();
    if (m in JPEG_SOF) {
      const kind = JPEG_SOF[m];
      if (kind) throw new ImageError(`unsupported JPEG coding (${kind}); re-save it as a baseline or progressive JPEG`);
      const height = (b[p + 3] << 8) | b[p + 4];
      const width = (b[p + 5] << 8) | b[p + 6];
      if (!width || !height) throw new ImageError(`corrupt or unsupported JPEG (frame size ${width}x${height})`);
      const nf = b[p + 7];
      if (!nf || len < 8 + 3 * nf) throw new ImageError(`corrupt JPEG (frame header at byte ${p - 2})`);
      components = [];
      for (let i = 0; i < nf; i++) {
        const hv = b[p + 9 + i * 3];
        const h = hv >> 4;
        const v = hv & 15;
        if (h < 1 || h > 4 || v < 1 || v > 4) throw new ImageError(`corrupt JPEG (sampling factors ${h}x${v} of component ${i + 1})`);
        components.push([h, v]);
      }
      hMax = Math.max(...components.map((c) => c[0]));
      vMax = Math.max(...components.map((c) => c[1]));
      progressive = m === 0xc2;
      info = { format: 'jpeg', width, height };
    }
    p += len;
    if (m === 0xda) {
      if (!info) throw new ImageError('corrupt JPEG (scan before the frame header)');
      scans++;
      const start = p;
      // entropy-coded data runs to the next marker that is not a stuffed 0xFF00 or a restart
      for (;;) {
        while (p < n && b[p] !== 0xff) p++;
        if (p + 1 >= n) throw truncated();
        const next = b[p + 1];
        if (next === 0x00 || (next >= 0xd0 && next <= 0xd7) || next === 0xff) {
          p += next === 0xff ? 1 : 2;
          continue;
        }
        break;
      }
      entropyBytes += p - start;
    }
  }
}

/**
 * Pillow's Image.MAX_IMAGE_PIXELS. Pillow warns above it and raises DecompressionBombError above
 * twice it; we refuse above it: a 1 MB PNG can claim 20000x20000 pixels (1.2 GB decoded, per
 * decode worker), and a refused image is cheap to let through with a higher limit.
 */
export const MAX_IMAGE_PIXELS = 178_956_970;

/** Throws ImageError when the image has more than `maxPixels` pixels (null: no limit). */
export function requirePixelLimit(info: ImageInfo, maxPixels: number | null): ImageInfo {
  const n = info.width * info.height;
  if (maxPixels !== null && n > maxPixels) {
    const f = (x: number) => x.toLocaleString('en-US');
    throw new ImageError(`${info.width}x${info.height} = ${f(n)} pixels, over the limit of ${f(maxPixels)} (a decompression bomb?); if the image is genuine, raise the limit with train --max-image-pixels (the flows' maxImagePixels option)`);
  }
  return info;
}

/**
 * Validates a file's structure and reads its size; throws ImageError saying what is wrong,
 * including a size over `maxPixels` (null: no limit). Nothing is decoded (plain PNM aside).
 */
export function checkImage(b: Uint8Array, maxPixels: number | null = null): ImageInfo {
  return requirePixelLimit(checkStructure(b), maxPixels);
}

function checkStructure(b: Uint8Array): ImageInfo {
  if (b.length === 0) throw new ImageError('empty file');
  const format = sniffFormat(b);
  if (format === 'png') return checkPng(b).info;
  if (format === 'jpeg') return checkJpeg(b);
  if (format === 'bmp') return checkBmp(b);
  if (format === 'pnm') return checkPnm(b);
  const other = otherFormat(b);
  if (other) throw new ImageError(`${other} images are not supported (PNG, JPEG, BMP and PNM are)`);
  throw new ImageError('not a PNG, JPEG, BMP or PNM image (unrecognised content)');
}

/** The bytes without one [start, end) range (used to drop a tRNS chunk). */
function without(b: Uint8Array, [start, end]: [number, number]): Uint8Array {
  const out = new Uint8Array(b.length - (end - start));
  out.set(b.subarray(0, start));
  out.set(b.subarray(end), start);
  return out;
}

function decodePng(b: Uint8Array, readPng: PngReader, maxPixels: number | null): RgbImage {
  const layout = checkPng(b);
  requirePixelLimit(layout.info, maxPixels);
  // pngjs blacks out pixels whose colour matches a grey/RGB tRNS key; Pillow's convert('RGB')
  // keeps them (it only drops alpha). Without the chunk pngjs leaves them alone.
  const bytes = layout.trns && layout.colorType !== 3 ? without(b, layout.trns) : b;
  const sixteen = layout.depth === 16;
  const png = readPng(bytes, { skipRescale: sixteen, stream: pngStream(b, layout.idat), inflatedBytes: pngInflatedBytes(layout) });
  const { width, height } = png;
  const src = png.data;
  const out = new Uint8Array(width * height * 3);
  // pngjs returns RGBA; 16-bit samples keep their high byte, as Pillow reads 16-bit RGB(A).
  const shift = sixteen ? 8 : 0;
  for (let i = 0, j = 0; j < out.length; i += 4, j += 3) {
    out[j] = src[i] >> shift;
    out[j + 1] = src[i + 1] >> shift;
    out[j + 2] = src[i + 2] >> shift;
  }
  return { width, height, data: out };
}

function decodeJpeg(b: Uint8Array, maxPixels: number | null): RgbImage {
  requirePixelLimit(checkJpeg(b), maxPixels);
  const img = jpeg.decode(b, { useTArray: true, formatAsRGBA: false });
  return { width: img.width, height: img.height, data: img.data };
}

/**
 * Decodes a PNG, JPEG, BMP or PNM file to 8-bit RGB; throws ImageError (reason only) when it
 * can't. The size is checked against `maxPixels` (null: no limit) again here, before any pixel
 * is allocated, so a file replaced after the up-front check cannot get through.
 */
export function decodeRgb(b: Uint8Array, readPng: PngReader, maxPixels: number | null = null): RgbImage {
  const format = sniffFormat(b);
  if (!format) checkImage(b); // throws the reason
  try {
    if (format === 'png') return decodePng(b, readPng, maxPixels);
    if (format === 'jpeg') return decodeJpeg(b, maxPixels);
    if (maxPixels !== null) checkImage(b, maxPixels);
    return format === 'bmp' ? decodeBmp(b) : decodePnm(b);
  } catch (e) {
    if (e instanceof ImageError) throw e;
    // A JavaScript engine error from inside a decoder (reading past an array, undefined tables)
    // means damaged data; its text ("Cannot read properties of undefined") would only confuse.
    if (e instanceof TypeError || e instanceof RangeError) throw new ImageError(`corrupt ${format!.toUpperCase()} (its image data is damaged: the decoder failed inside it)`);
    throw new ImageError(`cannot decode the ${format!.toUpperCase()} data: ${(e as Error).message}`);
  }
}
