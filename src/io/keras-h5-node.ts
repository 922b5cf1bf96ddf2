// Keras HDF5 weight files in Node: h5wasm's Node build opens host files directly. The layouts
// themselves (read and write) live in keras-h5.ts, shared with the browser (keras-h5-browser.ts).

import { open, readFile, rm, stat, statfs } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { tempPathFor, writeFileAtomic } from './atomic-file-node.ts';
import {
  checkKerasH5Layers,
  DAMAGED_HDF5,
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
  }, DAMAGED_HDF5);
}

/**
 * Writes weights in Keras's HDF5 layout (see writeKerasH5Root), complete-or-nothing: h5wasm
 * writes a scratch file beside the target, which is read back and checked (it must open and list
 * every layer with its weights), then written with writeFileAtomic (every byte, synced, size
 * checked, renamed over the old file only then). On failure the previous file is kept and no
 * temporary file stays behind; a full disk says so.
 */
export async function writeKerasH5(path: string, layers: { layer: string; weights: NamedWeight[] }[], options: WriteKerasH5Options = {}): Promise<void> {
  const file = resolve(path);
  checkKerasH5Layers(layers);
  const h5 = await h5wasm();
  const scratch = tempPathFor(file);
  let bytes: Uint8Array;
  try {
    try {
      withHdf5Errors(h5, file, () => {
        const f = new h5.File(scratch, 'w');
        if (f.file_id < 0n) throw new Error(`${file}: cannot create ${basename(scratch)}`);
        try {
          writeKerasH5Root(h5, f, layers, options);
        } finally {
          f.close();
        }
      });
    } catch (e) {
      // HDF5 reports a full disk as a failed write; say what it is.
      const need = layers.reduce((n, l) => n + l.weights.reduce((m, w) => m + w.data.byteLength, 0), 0);
      const free = await statfs(dirname(file)).then((s) => s.bavail * s.bsize, () => Infinity);
      if (free < need + 1024 * 1024) {
        const kept = await stat(file).then(() => `the previous ${basename(file)} is kept`, () => 'nothing was written');
        throw Object.assign(new Error(`disk full while writing ${file} (about ${need.toLocaleString('en-US')} bytes, ${free.toLocaleString('en-US')} free): ${kept}; free some space and run again`, { cause: e }), { code: 'ENOSPC' });
      }
      throw e;
    }
    bytes = new Uint8Array(await readFile(scratch));
    checkWritten(h5, scratch, file, layers);
  } finally {
    await rm(scratch, { force: true });
  }
  await writeFileAtomic(file, bytes);
}

/** The scratch file must open and hold every layer with its weights' sizes, or nothing is renamed. */
function checkWritten(h5: H5, scratch: string, file: string, layers: { layer: string; weights: NamedWeight[] }[]): void {
  const back = withHdf5Errors(h5, file, () => {
    const f = new h5.File(scratch, 'r');
    try {
      return readKerasH5Root(h5, f, file);
    } finally {
      f.close();
    }
  });
  const want = layers.map((l) => `${l.layer}:${l.weights.map((w) => w.data.length).join(',')}`).join(' ');
  const got = back.layers.map((l) => `${l.layer}:${l.weights.map((w) => w.data.length).join(',')}`).join(' ');
  if (want !== got) throw new Error(`${file}: the HDF5 file written does not read back as written (${got.slice(0, 200)}); nothing was replaced`);
}
