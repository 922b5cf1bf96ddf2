/**
 * The two simple formats of Keras's extension list: BMP (uncompressed 1/4/8-bit palette,
 * 16/24/32-bit, bit fields; bottom-up or top-down) and PNM (PBM/PGM/PPM, binary and plain).
 * Both decode to 8-bit RGB like Pillow's convert('RGB'): alpha dropped, samples with a maxval
 * other than 255 scaled to 0..255. RLE-compressed BMPs are reported as unsupported.
 */
import { ImageError, type ImageInfo, type RgbImage } from './image-error.ts';

interface BmpLayout {
  width: number;
  height: number;
  topDown: boolean;
  bpp: number;
  offset: number;
  stride: number;
  palette: Uint8Array | null; // RGB triples
  masks: [number, number, number] | null;
}

function bmpLayout(b: Uint8Array): BmpLayout {
  if (b.length < 26) throw new ImageError(`truncated BMP (${b.length} bytes)`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const offset = dv.getUint32(10, true);
  const dib = dv.getUint32(14, true);
  let width: number;
  let height: number;
  let bpp: number;
  let compression = 0;
  let colors = 0;
  if (dib === 12) {
    width = dv.getUint16(18, true);
    height = dv.getInt16(20, true);
    bpp = dv.getUint16(24, true);
  } else if (dib >= 40 && b.length >= 14 + 40) {
    width = dv.getInt32(18, true);
    height = dv.getInt32(22, true);
    bpp = dv.getUint16(28, true);
    compression = dv.getUint32(30, true);
    colors = dv.getUint32(46, true);
  } else {
    throw new ImageError(`corrupt or unsupported BMP (header size ${dib})`);
  }
  const topDown = height < 0;
  height = Math.abs(height);
  if (width <= 0 || height <= 0) throw new ImageError(`corrupt BMP (size ${width}x${height})`);
  if (![1, 4, 8, 16, 24, 32].includes(bpp)) throw new ImageError(`unsupported BMP (${bpp} bits per pixel)`);
  let masks: [number, number, number] | null = null;
  if (compression === 3 || compression === 6) {
    if (bpp !== 16 && bpp !== 32) throw new ImageError(`corrupt BMP (bit fields with ${bpp} bits per pixel)`);
    const at = dib >= 52 ? 14 + 40 : 14 + dib; // v4/v5 headers hold the masks; v3 puts them after
    if (b.length < at + 12) throw new ImageError('truncated BMP (no colour masks)');
    masks = [dv.getUint32(at, true), dv.getUint32(at + 4, true), dv.getUint32(at + 8, true)];
  } else if (compression === 1 || compression === 2) {
    throw new ImageError('unsupported BMP (RLE compression); re-save it uncompressed, as PNG or as JPEG');
  } else if (compression !== 0) {
    throw new ImageError(`unsupported BMP (compression ${compression})`);
  } else if (bpp === 16) {
    masks = [0x7c00, 0x03e0, 0x001f];
  }
  let palette: Uint8Array | null = null;
  if (bpp <= 8) {
    const n = colors || 1 << bpp;
    const entry = dib === 12 ? 3 : 4;
    const at = 14 + dib + (compression === 3 && dib === 40 ? 12 : 0);
    if (at + n * entry > b.length || n > 256) throw new ImageError('truncated or corrupt BMP (palette)');
    palette = new Uint8Array(256 * 3);
    for (let i = 0; i < n; i++) {
      palette[i * 3] = b[at + i * entry + 2];
      palette[i * 3 + 1] = b[at + i * entry + 1];
      palette[i * 3 + 2] = b[at + i * entry];
    }
  }
  const stride = Math.ceil((bpp * width) / 32) * 4;
  if (offset + stride * height > b.length) throw new ImageError(`truncated BMP (${b.length} bytes, the pixels need ${offset + stride * height})`);
  return { width, height, topDown, bpp, offset, stride, palette, masks };
}

export function checkBmp(b: Uint8Array): ImageInfo {
  const l = bmpLayout(b);
  return { format: 'bmp', width: l.width, height: l.height };
}

/** A bit field's value scaled to 8 bits. */
function field(v: number, mask: number): number {
  if (!mask) return 0;
  let shift = 0;
  while (!((mask >>> shift) & 1)) shift++;
  const max = mask >>> shift;
  return Math.round((((v & mask) >>> shift) * 255) / max);
}

export function decodeBmp(b: Uint8Array): RgbImage {
  const l = bmpLayout(b);
  const out = new Uint8Array(l.width * l.height * 3);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let y = 0; y < l.height; y++) {
    const row = l.offset + (l.topDown ? y : l.height - 1 - y) * l.stride;
    for (let x = 0; x < l.width; x++) {
      const o = (y * l.width + x) * 3;
      if (l.palette) {
        const bit = x * l.bpp;
        const idx = (b[row + (bit >> 3)] >> (8 - l.bpp - (bit & 7))) & ((1 << l.bpp) - 1);
        out.set(l.palette.subarray(idx * 3, idx * 3 + 3), o);
      } else if (l.masks) {
        const v = l.bpp === 16 ? dv.getUint16(row + x * 2, true) : dv.getUint32(row + x * 4, true);
        out[o] = field(v, l.masks[0]);
        out[o + 1] = field(v, l.masks[1]);
        out[o + 2] = field(v, l.masks[2]);
      } else {
        const p = row + x * (l.bpp >> 3); // BGR(x)
        out[o] = b[p + 2];
        out[o + 1] = b[p + 1];
        out[o + 2] = b[p];
      }
    }
  }
  return { width: l.width, height: l.height, data: out };
}

interface PnmLayout {
  kind: number; // 1..6
  width: number;
  height: number;
  maxval: number;
  /** byte offset of the raster (binary kinds) or of the first sample (plain kinds) */
  data: number;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0b || c === 0x0c;
}

/** Reads whitespace-separated header integers, skipping # comments. */
function pnmInts(b: Uint8Array, from: number, n: number): { values: number[]; end: number } {
  const values: number[] = [];
  let p = from;
  while (values.length < n) {
    while (p < b.length && (isSpace(b[p]) || b[p] === 0x23)) {
      if (b[p] === 0x23) while (p < b.length && b[p] !== 0x0a && b[p] !== 0x0d) p++;
      else p++;
    }
    if (p >= b.length) throw new ImageError('truncated PNM header');
    let v = 0;
    const start = p;
    while (p < b.length && b[p] >= 0x30 && b[p] <= 0x39) v = v * 10 + (b[p++] - 0x30);
    if (p === start) throw new ImageError(`corrupt PNM header (unexpected ${b[p] > 0x20 && b[p] < 0x7f ? `'${String.fromCharCode(b[p])}'` : `byte 0x${b[p].toString(16).padStart(2, '0')}`} at byte ${p})`);
    values.push(v);
  }
  return { values, end: p };
}

function pnmLayout(b: Uint8Array): PnmLayout {
  const kind = b[1] - 0x30;
  const bitmap = kind === 1 || kind === 4;
  const { values, end } = pnmInts(b, 2, bitmap ? 2 : 3);
  const [width, height] = values;
  const maxval = bitmap ? 1 : values[2];
  if (!width || !height) throw new ImageError(`corrupt PNM (size ${width}x${height})`);
  if (maxval < 1 || maxval > 65535) throw new ImageError(`corrupt PNM (maxval ${maxval})`);
  const layout = { kind, width, height, maxval, data: end + 1 }; // one whitespace byte ends the header
  if (kind >= 4) {
    const channels = kind === 6 ? 3 : 1;
    const need = kind === 4 ? Math.ceil(width / 8) * height : width * height * channels * (maxval > 255 ? 2 : 1);
    if (layout.data + need > b.length) throw new ImageError(`truncated PNM (${b.length} bytes, the pixels need ${layout.data + need})`);
  } else {
    // Plain samples take at least a byte each: a header claiming more than the file can hold is
    // refused before the samples are allocated (a 40-byte file could otherwise claim 10^10 pixels).
    const samples = width * height * (kind === 3 ? 3 : 1);
    if (samples > b.length - end) throw new ImageError(`truncated PNM (${b.length} bytes cannot hold the ${samples.toLocaleString('en-US')} samples of a ${width}x${height} image)`);
  }
  return layout;
}

export function checkPnm(b: Uint8Array): ImageInfo {
  const l = pnmLayout(b);
  if (l.kind <= 3) decodePnm(b); // plain formats: counting the samples is reading them
  return { format: 'pnm', width: l.width, height: l.height };
}

export function decodePnm(b: Uint8Array): RgbImage {
  const l = pnmLayout(b);
  const n = l.width * l.height;
  const channels = l.kind === 3 || l.kind === 6 ? 3 : 1;
  const samples = new Uint16Array(n * channels);
  if (l.kind === 4) {
    const rowBytes = Math.ceil(l.width / 8);
    for (let y = 0; y < l.height; y++) {
      for (let x = 0; x < l.width; x++) samples[y * l.width + x] = (b[l.data + y * rowBytes + (x >> 3)] >> (7 - (x & 7))) & 1;
    }
  } else if (l.kind >= 5) {
    const wide = l.maxval > 255;
    for (let i = 0; i < samples.length; i++) samples[i] = wide ? (b[l.data + i * 2] << 8) | b[l.data + i * 2 + 1] : b[l.data + i];
  } else {
    let p = l.data - 1;
    for (let i = 0; i < samples.length; i++) {
      if (l.kind === 1) {
        // plain PBM digits may run together
        while (p < b.length && b[p] !== 0x30 && b[p] !== 0x31) {
          if (b[p] === 0x23) while (p < b.length && b[p] !== 0x0a) p++;
          else p++;
        }
        if (p >= b.length) throw new ImageError(`truncated PNM (${i} of ${samples.length} samples)`);
        samples[i] = b[p++] - 0x30;
      } else {
        const r = (() => {
          try {
            return pnmInts(b, p, 1);
          } catch {
            throw new ImageError(`truncated PNM (${i} of ${samples.length} samples)`);
          }
        })();
        samples[i] = r.values[0];
        p = r.end;
      }
    }
  }
  const out = new Uint8Array(n * 3);
  const bitmap = l.kind === 1 || l.kind === 4;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 3; k++) {
      const s = samples[i * channels + (channels === 3 ? k : 0)];
      // PBM: 1 is black; others scale maxval to 255
      out[i * 3 + k] = bitmap ? (s ? 0 : 255) : l.maxval === 255 ? s : Math.round((Math.min(s, l.maxval) * 255) / l.maxval);
    }
  }
  return { width: l.width, height: l.height, data: out };
}
