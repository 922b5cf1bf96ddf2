/** pngjs's reader for Node (its main build, on node:zlib). */
import { PNG } from 'pngjs';
import type { PngReader } from './image-decode.ts';

export const readPngNode: PngReader = (bytes, options) =>
  PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), options);
