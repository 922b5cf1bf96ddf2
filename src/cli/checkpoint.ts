/**
 * Training checkpoints: everything a killed run needs to continue as if it had never stopped,
 * in ONE file written atomically (temporary file, fsync, rename), so a reader sees the previous
 * checkpoint or the new one, never a mix.
 *
 * Contents: the weights (the exported-weights manifest and its data), the optimizer state
 * (iteration, which also drives dropout masks, and momentum velocities), the history so far,
 * the data streams' positions, and the steps already done of an epoch stopped part-way (Ctrl-C).
 *
 * Layout: "WGFTCKPT" | u32 LE version | u32 LE header length | header JSON (UTF-8) | zero pad to
 * 8 bytes | weights data | velocities (float32 LE, in header order) | SHA-256 of everything before
 * it (version 2: a flipped bit anywhere, optimizer state included, is refused; version 1 files,
 * without it, still read).
 */
import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { exportWeights, importWeights, type Model, type WeightsManifest } from '../index.ts';
import type { EarlyStoppingState, ReduceLROnPlateauState } from '../graph/callbacks.ts';
import { parseWeightsManifest } from '../io/weights-manifest.ts';

const MAGIC = 'WGFTCKPT';
const VERSION = 2;
const DIGEST = 32; // SHA-256 bytes at the end of a version 2 file
export const CHECKPOINT_FILE = 'checkpoint.ckpt';

/** history.json's shape: Keras's History plus seconds per epoch. */
export interface RunHistory {
  epoch: number[];
  /** every key of the epoch logs (other metrics, learning_rate when it changes) */
  history: Record<string, number[]> & { loss: number[]; acc: number[]; val_loss: number[]; val_acc: number[] };
  seconds: number[];
}

export function emptyHistory(): RunHistory {
  return { epoch: [], history: { loss: [], acc: [], val_loss: [], val_acc: [] }, seconds: [] };
}

/** Where training stands. */
export interface TrainState {
  /** the epoch in progress (0-based); with step 0 it has not started */
  epoch: number;
  /** steps of `epoch` already trained (0 at an epoch boundary) */
  step: number;
  /** per-step loss, acc and batch size of those steps (the epoch's running means need them) */
  partial: { loss: number[]; acc: number[]; size: number[]; seconds: number };
  history: RunHistory;
  /** batches taken from the training and validation flows (DirectoryIterator.position) */
  trainPosition: number;
  valPosition: number;
  /** the training metrics' accumulators of the epoch in progress (AUC, ...), mid-epoch only */
  metrics?: number[][];
  /** EarlyStopping / ReduceLROnPlateau / best-epoch state, so a resumed run decides as the uninterrupted one */
  callbacks?: { earlyStopping?: EarlyStoppingState; plateau?: ReduceLROnPlateauState; bestValLoss?: number | null };
  /** set when EarlyStopping ended the run: the epoch (0-based) it stopped after */
  stoppedEarly?: number;
}

interface Header {
  format: 'webgpu-finetune-checkpoint';
  created: string;
  state: TrainState;
  iteration: number;
  /** the optimizer's name and its learning rate when a number (a callback may have lowered it); absent in older checkpoints */
  optimizer?: string;
  learningRate?: number;
  weights: WeightsManifest;
  velocities: { name: string; length: number }[];
}

/** What writeFileAtomic needs of a file handle (tests inject a disk that fills up). */
export interface WritableHandle {
  write(buffer: Uint8Array, offset: number, length: number): Promise<{ bytesWritten: number }>;
  sync(): Promise<void>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}

/**
 * Writes `data` to `path` through a temporary file beside it: every byte written (short writes
 * retried), synced, its size checked, and only then renamed over `path`. On any failure the
 * temporary file is removed and `path` keeps its previous contents; a full disk says so.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array | Uint8Array[], openFile: (p: string) => Promise<WritableHandle> = (p) => open(p, 'w')): Promise<void> {
  const tmp = join(dirname(path), `.${path.split(/[\\/]/).pop()}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const parts = (Array.isArray(data) ? data : [data]).map((p) => (typeof p === 'string' ? new TextEncoder().encode(p) : p));
  const total = parts.reduce((a, p) => a + p.length, 0);
  try {
    const fh = await openFile(tmp);
    try {
      for (const part of parts) {
        for (let done = 0; done < part.length;) {
          const { bytesWritten } = await fh.write(part, done, part.length - done);
          if (bytesWritten <= 0) throw Object.assign(new Error(`no bytes written at ${done} of ${part.length}`), { code: 'ENOSPC' });
          done += bytesWritten;
        }
      }
      await fh.sync();
      const { size } = await fh.stat();
      if (size !== total) throw new Error(`${tmp} holds ${size} bytes after writing ${total}`);
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw Object.assign(new Error(`disk full while writing ${path} (${total.toLocaleString('en-US')} bytes): the previous ${path.split(/[\\/]/).pop()} is kept; free some space and run again`, { cause: e }), { code });
    }
    throw e;
  }
}

export async function saveCheckpoint(path: string, model: Model, state: TrainState): Promise<void> {
  const { manifest, data } = await exportWeights(model);
  const opt = await model.getOptimizerState();
  const header: Header = {
    format: 'webgpu-finetune-checkpoint',
    created: new Date().toISOString(),
    state,
    iteration: opt.iteration,
    optimizer: opt.optimizer,
    ...(opt.learningRate !== undefined ? { learningRate: opt.learningRate } : {}),
    weights: manifest,
    velocities: opt.velocities.map((v) => ({ name: v.name, length: v.data.length })),
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const head = new Uint8Array(16 + json.length + ((8 - ((16 + json.length) % 8)) % 8));
  head.set(new TextEncoder().encode(MAGIC), 0);
  const view = new DataView(head.buffer);
  view.setUint32(8, VERSION, true);
  view.setUint32(12, json.length, true);
  head.set(json, 16);
  const parts = [head, new Uint8Array(data)];
  for (const v of opt.velocities) {
    const bytes = new Uint8Array(v.data.length * 4);
    const dv = new DataView(bytes.buffer);
    v.data.forEach((x, i) => dv.setFloat32(i * 4, x, true));
    parts.push(bytes);
  }
  const hash = createHash('sha256');
  for (const p of parts) hash.update(p);
  parts.push(new Uint8Array(hash.digest()));
  await writeFileAtomic(path, parts);
}

export interface Checkpoint {
  state: TrainState;
  created: string;
  iteration: number;
  optimizer?: string;
  learningRate?: number;
  weights: { manifest: WeightsManifest; data: Uint8Array };
  velocities: { name: string; data: Float32Array }[];
}

/** Reads and checks a checkpoint file; errors name the file and what is wrong with it. */
export async function readCheckpoint(path: string): Promise<Checkpoint> {
  const bytes = await readFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new Error(e.code === 'ENOENT' ? `${path} does not exist: the run saved no checkpoint yet (it stopped before its first epoch ended)` : `cannot read ${path}: ${e.message}`);
  });
  const bad = (why: string) => new Error(`${path} is not a usable checkpoint: ${why}`);
  if (bytes.length < 16 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) throw bad('it does not start with the checkpoint signature');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== 1 && version !== VERSION) throw bad(`format version ${version}, this tool reads 1 and ${VERSION}`);
  const tail = version === VERSION ? DIGEST : 0;
  if (tail) {
    if (bytes.length < 16 + DIGEST) throw bad('truncated');
    const want = createHash('sha256').update(bytes.subarray(0, bytes.length - DIGEST)).digest();
    if (!want.equals(bytes.subarray(bytes.length - DIGEST))) throw bad('its checksum does not match (the file was damaged or changed after it was written); delete it to start over, or restore a copy');
  }
  const jsonLength = view.getUint32(12, true);
  if (16 + jsonLength > bytes.length) throw bad('truncated header');
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + jsonLength)));
  } catch (e) {
    throw bad(`damaged header (${(e as Error).message})`);
  }
  if (header.format !== 'webgpu-finetune-checkpoint' || !header.state || !Number.isInteger(header.iteration)) throw bad('unexpected header');
  const manifest = parseWeightsManifest(header.weights, `${path} (weights)`);
  let offset = 16 + jsonLength + ((8 - ((16 + jsonLength) % 8)) % 8);
  const velocityBytes = header.velocities.reduce((s, v) => s + v.length * 4, 0);
  const expected = offset + manifest.byteLength + velocityBytes + tail;
  if (bytes.length !== expected) throw bad(`${bytes.length} bytes, expected ${expected} (truncated?)`);
  const data = bytes.slice(offset, offset + manifest.byteLength);
  offset += manifest.byteLength;
  const velocities = header.velocities.map((v) => {
    const out = new Float32Array(v.length);
    for (let i = 0; i < v.length; i++) out[i] = view.getFloat32(offset + i * 4, true);
    offset += v.length * 4;
    return { name: v.name, data: out };
  });
  return { state: header.state, created: header.created, iteration: header.iteration, optimizer: header.optimizer, learningRate: header.learningRate, weights: { manifest, data }, velocities };
}

/** Puts a checkpoint's weights and optimizer state into a compiled model of the same layout. */
export async function restoreCheckpoint(model: Model, ckpt: Checkpoint, source?: string): Promise<void> {
  await importWeights(model, ckpt.weights.manifest, ckpt.weights.data, { source });
  await model.setOptimizerState({ iteration: ckpt.iteration, optimizer: ckpt.optimizer, learningRate: ckpt.learningRate, velocities: ckpt.velocities });
}
