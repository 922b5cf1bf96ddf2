// Keras HDF5 weight files from and to bytes (browsers: a picked file, a download), with h5wasm's
// browser build and its in-memory file system. The layouts live in keras-h5.ts, shared with Node.
// This module is loaded on demand: h5wasm's browser build embeds HDF5 as ~4 MB of WebAssembly.

import {
  checkKerasH5Layers,
  HDF5_SIGNATURE,
  NOT_HDF5,
  readKerasH5Root,
  signatureOffsets,
  withHdf5Errors,
  DAMAGED_HDF5,
  writeKerasH5Root,
  type H5,
  type KerasH5Weights,
  type WriteKerasH5Options,
} from './keras-h5.ts';
import type { NamedWeight } from './weights-manifest.ts';

let h5Module: Promise<H5> | null = null;
function h5wasm(): Promise<H5> {
  h5Module ??= import('h5wasm').then(async (m) => {
    await m.ready;
    return m;
  });
  return h5Module;
}

let counter = 0;
/** A fresh path in h5wasm's in-memory file system. */
const scratchPath = () => `/keras-h5-${Date.now()}-${counter++}.h5`;

/** Reads every layer's weights from the bytes of a Keras HDF5 file; `name` names it in errors. */
export async function readKerasH5Bytes(bytes: Uint8Array | ArrayBuffer, name = 'the weights file'): Promise<KerasH5Weights> {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const found = signatureOffsets(data.length).some((at) => HDF5_SIGNATURE.every((b, i) => data[at + i] === b));
  if (!found) throw new Error(`${name}: ${NOT_HDF5}`);
  const h5 = await h5wasm();
  const path = scratchPath();
  h5.FS!.writeFile(path, data);
  try {
    return withHdf5Errors(h5, name, () => {
      const f = new h5.File(path, 'r');
      if (f.file_id < 0n) throw new Error(`${name}: HDF5 could not open the file`);
      try {
        return readKerasH5Root(h5, f, name);
      } finally {
        f.close();
      }
    }, DAMAGED_HDF5);
  } finally {
    h5.FS!.unlink(path);
  }
}

/** The bytes of a Keras HDF5 weights file (legacy layout, see writeKerasH5Root). */
export async function writeKerasH5Bytes(layers: { layer: string; weights: NamedWeight[] }[], options: WriteKerasH5Options = {}): Promise<Uint8Array> {
  checkKerasH5Layers(layers);
  const h5 = await h5wasm();
  const path = scratchPath();
  try {
    withHdf5Errors(h5, 'the new weights file', () => {
      const f = new h5.File(path, 'w');
      if (f.file_id < 0n) throw new Error('HDF5 could not create the weights file in memory');
      try {
        writeKerasH5Root(h5, f, layers, options);
      } finally {
        f.close();
      }
    });
    return h5.FS!.readFile(path);
  } finally {
    if (h5.FS!.analyzePath(path).exists) h5.FS!.unlink(path);
  }
}
