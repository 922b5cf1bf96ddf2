// Keras HDF5 weight files in Node: h5wasm's Node build opens host files directly. The layouts
// themselves (read and write) live in keras-h5.ts, shared with the browser (keras-h5-browser.ts).

import { randomBytes } from 'node:crypto';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import {
  checkKerasH5Layers,
  HDF5_SIGNATURE,
  NOT_HDF5,
  readKerasH5Root,
  signatureOffsets,
  withHdf5Errors,
  writeKerasH5Root,
  type H5,
  type KerasH5Weights,
  type WriteKerasH5Options,
} from './keras-h5.ts';
import type { NamedWeight } from './weights-manifest.ts';

export type { KerasH5Layout, KerasH5Weights, WriteKerasH5Options } from './keras-h5.ts';

let h5Module: Promise<H5> | null = null;
function h5wasm(): Promise<H5> {
  h5Module ??= import('h5wasm/node').then(async (m) => {
    await m.ready;
    return m as unknown as H5;
  });
  return h5Module;
}

async function checkHdf5Signature(file: string): Promise<void> {
  const info = await stat(file).catch((e: NodeJS.ErrnoException) => {
    throw new Error(`${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
  if (!info.isFile()) throw new Error(`${file}: not a file`);
  const fh = await open(file, 'r');
  try {
    const buf = new Uint8Array(8);
    for (const at of signatureOffsets(info.size)) {
      const { bytesRead } = await fh.read(buf, 0, 8, at);
      if (bytesRead === 8 && HDF5_SIGNATURE.every((b, i) => buf[i] === b)) return;
    }
  } finally {
    await fh.close();
  }
  throw new Error(`${file}: ${NOT_HDF5}`);
}

/** Reads every layer's weights from a Keras HDF5 file (any of the three layouts). */
export async function readKerasH5(path: string): Promise<KerasH5Weights> {
  const file = resolve(path);
  await checkHdf5Signature(file);
  const h5 = await h5wasm();
  return withHdf5Errors(h5, file, () => {
    const f = new h5.File(file, 'r');
    if (f.file_id < 0n) throw new Error(`${file}: HDF5 could not open the file`);
    try {
      return readKerasH5Root(h5, f, file);
    } finally {
      f.close();
    }
  });
}

/**
 * Writes weights in Keras's HDF5 layout (see writeKerasH5Root). The file appears atomically
 * (written beside it, then renamed).
 */
export async function writeKerasH5(path: string, layers: { layer: string; weights: NamedWeight[] }[], options: WriteKerasH5Options = {}): Promise<void> {
  const file = resolve(path);
  checkKerasH5Layers(layers);
  const h5 = await h5wasm();
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    withHdf5Errors(h5, file, () => {
      const f = new h5.File(tmp, 'w');
      if (f.file_id < 0n) throw new Error(`${file}: cannot create ${basename(tmp)}`);
      try {
        writeKerasH5Root(h5, f, layers, options);
      } finally {
        f.close();
      }
    });
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
