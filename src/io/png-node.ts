/** pngjs's reader for Node (its main build, on node:zlib). */
import { inflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import type { PngReader } from './image-decode.ts';

/**
 * pngjs's own synchronous inflater on node:zlib can miss a corrupt stream and hand back an
 * uninitialised buffer (garbage pixels, different on every read), so the stream is first
 * inflated strictly: it must be valid and exactly the size the header implies.
 */
export const readPngNode: PngReader = (bytes, { skipRescale, stream, inflatedBytes }) => {
  let n: number;
  try {
    n = inflateSync(stream, { maxOutputLength: inflatedBytes + 1 }).length;
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' ? `it inflates to more than the ${inflatedBytes} bytes its header implies` : (e as Error).message;
    throw new Error(why);
  }
  if (n !== inflatedBytes) throw new Error(`it inflates to ${n} bytes, its header implies ${inflatedBytes}`);
  return PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { skipRescale });
};
