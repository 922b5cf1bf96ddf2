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
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../io/atomic-file-node.ts';
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
  /** two-phase runs: the index in `epoch` where fine-tuning (the unfrozen phase) starts */
  fineTuneFrom?: number;
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
  /** two-phase runs: the phase the model (and its optimizer state) was in when saved */
  phase?: 1 | 2;
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

// writeFileAtomic lives with the other complete-or-nothing writers; re-exported for existing imports.
export { writeFileAtomic, type WritableHandle } from '../io/atomic-file-node.ts';

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
    throw bad(`damaged header (${(e as Error).message.replace(/[^\x20-\x7e]+/g, '?').slice(0, 160)})`);
  }
  if (header === null || typeof header !== 'object' || header.format !== 'webgpu-finetune-checkpoint' || !Number.isInteger(header.iteration)) throw bad('unexpected header');
  const problem = stateProblem(header.state) ?? velocitiesProblem(header.velocities);
  if (problem) throw bad(`damaged header (${problem})`);
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

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isNumbers = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number' || x === null);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * What is wrong with a header's training state, or null. A version 1 file has no checksum, so
 * its header is checked field by field: a resume must not fail later, deep inside the loop.
 */
function stateProblem(v: unknown): string | null {
  if (!isObject(v)) return 'no training state';
  for (const k of ['epoch', 'step', 'trainPosition', 'valPosition'] as const) if (!isIndex(v[k])) return `state.${k} is ${JSON.stringify(v[k])}, expected a count`;
  const p = v.partial;
  if (!isObject(p) || !isNumbers(p.loss) || !isNumbers(p.acc) || !isNumbers(p.size) || typeof p.seconds !== 'number') return 'state.partial is not lists of per-step numbers';
  const h = v.history;
  if (!isObject(h) || !isNumbers(h.epoch) || !isNumbers(h.seconds) || !isObject(h.history)) return 'state.history is not a history';
  for (const [k, list] of Object.entries(h.history)) if (!isNumbers(list)) return `state.history.history.${k} is not a list of numbers`;
  for (const k of ['loss', 'acc', 'val_loss', 'val_acc']) if (!(k in h.history)) return `state.history.history has no ${k}`;
  return null;
}

function velocitiesProblem(v: unknown): string | null {
  if (!Array.isArray(v)) return 'velocities is not a list';
  const i = v.findIndex((e) => !isObject(e) || typeof e.name !== 'string' || !isIndex(e.length));
  return i < 0 ? null : `velocity ${i} is ${JSON.stringify(v[i])?.slice(0, 80)}, expected { name, length }`;
}

/** Puts a checkpoint's weights and optimizer state into a compiled model of the same layout. */
export async function restoreCheckpoint(model: Model, ckpt: Checkpoint, source?: string): Promise<void> {
  await importWeights(model, ckpt.weights.manifest, ckpt.weights.data, { source });
  await model.setOptimizerState({ iteration: ckpt.iteration, optimizer: ckpt.optimizer, learningRate: ckpt.learningRate, velocities: ckpt.velocities });
}
