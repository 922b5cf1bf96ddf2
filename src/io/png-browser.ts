/**
 * pngjs's reader for browsers: its prebuilt browserify bundle (`pngjs/browser.js`), which carries
 * its own zlib and Buffer. The parser calls Buffer methods on its input, so the bytes are wrapped
 * in the bundle's Buffer class, reached through a PNG it allocates.
 */
import type { PngReader } from './image-decode.ts';
import pngBundle from 'pngjs/browser.js';

interface BundledPng {
  PNG: {
    new (o: { width: number; height: number }): { data: { constructor: { from(b: Uint8Array): unknown } } };
    sync: { read(b: unknown, o: { skipRescale: boolean }): { width: number; height: number; data: ArrayLike<number> } };
  };
}

const { PNG } = pngBundle as unknown as BundledPng;
const BundledBuffer = new PNG({ width: 1, height: 1 }).data.constructor;

export const readPngBrowser: PngReader = (bytes, options) => PNG.sync.read(BundledBuffer.from(bytes), options);
