// The exported weights format: manifest.json (what each tensor is and where it lies) plus one
// little-endian float32 .bin. Platform-free: works on a parsed object and an ArrayBuffer, so Node
// (files), browsers (fetch, downloads, IndexedDB) and tests share the same checks.

export const MANIFEST_FORMAT = 'webgpu-finetune-weights';
export const MANIFEST_VERSION = 1;
export const DEFAULT_DATA_FILE = 'weights.bin';

/** One weight array in Keras's layout (conv kernels HWIO, dense kernels [in, out]). */
export interface NamedWeight {
  /** The variable's name in the file, e.g. `block1_conv1/kernel:0` or `block1_conv1_W_1:0`. */
  name: string;
  shape: number[];
  data: Float32Array;
}

/** The weights of one layer, in Keras's order (kernel, then bias). */
export interface LayerWeights {
  layer: string;
  /**
   * Keras 3 `.weights.h5` address (`layers/conv2d_3`). Keras 3 matches layers by this path
   * (class name + counter) rather than by order; set only for weights read from such a file.
   */
  path?: string;
  weights: NamedWeight[];
}

export interface TensorEntry {
  layer: string;
  name: string;
  shape: number[];
  dtype: 'float32';
  /** Byte offset into the data file; a multiple of 4. */
  offset: number;
  byteLength: number;
  /** Lower-case hex SHA-256 of the tensor's bytes. */
  sha256: string;
  /** Keras 3 layer path, see LayerWeights.path. */
  path?: string;
}

export interface WeightsManifest {
  format: typeof MANIFEST_FORMAT;
  formatVersion: typeof MANIFEST_VERSION;
  model: string;
  /** The data file, a plain name in the manifest's folder. */
  dataFile: string;
  /** Exact size of the data file. */
  byteLength: number;
  tensors: TensorEntry[];
  /** Where the weights came from (file name, HDF5 layout, MD5...): informative only. */
  source?: Record<string, string>;
}

/** Progress of a download or a read: `total` is null when unknown. */
export type ProgressCallback = (p: { label: string; loaded: number; total: number | null }) => void;

/** How named weights ('imagenet', URLs) are fetched. */
export interface WeightsSourceOptions {
  /** Progress of downloads: a callback, false for none; default a text bar on stderr. */
  onProgress?: ProgressCallback | false;
  /** Where 'imagenet' weights are cached (default $WEBGPU_FINETUNE_CACHE or ~/.cache/webgpu-finetune). */
  cacheDir?: string;
  /** Where 'imagenet' weights are downloaded from (default $WEBGPU_FINETUNE_WEIGHTS_URL or Keras's URL). */
  downloadUrl?: string;
}

const shapeStr = (s: readonly number[]) => `[${s.join(', ')}]`;
const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** Far above any real model; keeps hostile manifests from making us allocate absurd arrays. */
const MAX_BYTES = 2 ** 40;
const MAX_RANK = 8;

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The data file must be a plain name next to the manifest: no folders, no `..`, no hidden or
 * absolute paths, so a manifest from elsewhere cannot make us read (or fetch) outside its folder.
 */
export function checkDataFileName(name: unknown, where = 'weights manifest'): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9._-]{0,200}$/.test(name) || name.includes('..')) {
    throw new Error(`${where}: dataFile must be a plain file name in the manifest's folder (letters, digits, '.', '_', '-'), got ${JSON.stringify(name)}`);
  }
  return name;
}

function toLittleEndianBytes(data: Float32Array): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (HOST_LITTLE_ENDIAN) return bytes;
  const out = new Uint8Array(data.length * 4);
  const view = new DataView(out.buffer);
  data.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return out;
}

function fromLittleEndianBytes(bytes: Uint8Array): Float32Array {
  if (HOST_LITTLE_ENDIAN) {
    // Copy into a fresh buffer: 4-byte aligned and owned by the caller. (Not bytes.slice(): on a
    // Node Buffer that is a view of the same memory.)
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    return new Float32Array(copy.buffer);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** Packs layers' weights into a manifest and one buffer (weightless layers take no space). */
export async function buildWeightsManifest(
  layers: LayerWeights[],
  meta: { model: string; dataFile?: string; source?: Record<string, string> },
): Promise<{ manifest: WeightsManifest; data: ArrayBuffer }> {
  const seen = new Set<string>();
  let total = 0;
  for (const l of layers) {
    if (seen.has(l.layer)) throw new Error(`weights: layer '${l.layer}' appears twice`);
    seen.add(l.layer);
    for (const w of l.weights) {
      if (w.data.length !== count(w.shape)) throw new Error(`weights: ${l.layer} ${w.name} has shape ${shapeStr(w.shape)} (${count(w.shape)} values) but ${w.data.length} values`);
      total += w.data.byteLength;
    }
  }
  const data = new Uint8Array(total);
  const tensors: TensorEntry[] = [];
  let offset = 0;
  for (const l of layers) {
    for (const w of l.weights) {
      const bytes = toLittleEndianBytes(w.data);
      data.set(bytes, offset);
      tensors.push({
        layer: l.layer,
        name: w.name,
        shape: w.shape.slice(),
        dtype: 'float32',
        offset,
        byteLength: bytes.length,
        sha256: await sha256Hex(bytes),
        ...(l.path !== undefined ? { path: l.path } : {}),
      });
      offset += bytes.length;
    }
  }
  const manifest: WeightsManifest = {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_VERSION,
    model: meta.model,
    dataFile: checkDataFileName(meta.dataFile ?? DEFAULT_DATA_FILE),
    byteLength: total,
    tensors,
    ...(meta.source ? { source: meta.source } : {}),
  };
  return { manifest, data: data.buffer };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const shortString = (v: unknown, max = 1024): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;

/**
 * Validates an untrusted, parsed manifest: types, names, shapes, that every tensor lies inside
 * the data file without overlapping another, and that each layer's tensors are contiguous.
 */
export function parseWeightsManifest(value: unknown, where = 'weights manifest'): WeightsManifest {
  const fail = (what: string): never => {
    throw new Error(`${where}: ${what}`);
  };
  if (!isObject(value)) fail('expected a JSON object');
  const m = value as Record<string, unknown>;
  if (m.format !== MANIFEST_FORMAT) fail(`format must be '${MANIFEST_FORMAT}', got ${JSON.stringify(m.format)}`);
  if (m.formatVersion !== MANIFEST_VERSION) fail(`formatVersion ${JSON.stringify(m.formatVersion)} is not supported (this build reads version ${MANIFEST_VERSION})`);
  if (typeof m.model !== 'string' || m.model.length > 1024) fail('model must be a string');
  const dataFile = checkDataFileName(m.dataFile, where);
  if (!isCount(m.byteLength) || m.byteLength > MAX_BYTES) fail(`byteLength must be a non-negative integer, got ${JSON.stringify(m.byteLength)}`);
  if (!Array.isArray(m.tensors)) fail('tensors must be an array');
  let source: Record<string, string> | undefined;
  if (m.source !== undefined) {
    if (!isObject(m.source) || Object.values(m.source).some((v) => typeof v !== 'string')) fail('source must be an object of strings');
    source = { ...(m.source as Record<string, string>) };
  }
  const byteLength = m.byteLength as number;
  const tensors: TensorEntry[] = (m.tensors as unknown[]).map((t, i) => {
    const at = `tensor ${i}`;
    if (!isObject(t)) fail(`${at} must be an object`);
    const e = t as Record<string, unknown>;
    if (!shortString(e.layer)) fail(`${at}: layer must be a non-empty string`);
    if (!shortString(e.name)) fail(`${at} (${e.layer}): name must be a non-empty string`);
    const label = `${at} (${e.layer} ${e.name})`;
    if (e.dtype !== 'float32') fail(`${label}: dtype must be 'float32', got ${JSON.stringify(e.dtype)}`);
    if (!Array.isArray(e.shape) || e.shape.length > MAX_RANK || !e.shape.every((d) => isCount(d) && d > 0)) {
      fail(`${label}: shape must be up to ${MAX_RANK} positive integers, got ${JSON.stringify(e.shape)}`);
    }
    const shape = (e.shape as number[]).slice();
    if (!isCount(e.offset) || e.offset % 4 !== 0) fail(`${label}: offset must be a non-negative multiple of 4, got ${JSON.stringify(e.offset)}`);
    const expected = count(shape) * 4;
    if (e.byteLength !== expected) fail(`${label}: byteLength ${JSON.stringify(e.byteLength)} does not match shape ${shapeStr(shape)} (${expected} bytes of float32)`);
    if ((e.offset as number) + expected > byteLength) fail(`${label}: bytes ${e.offset}..${(e.offset as number) + expected} lie outside the data file (${byteLength} bytes)`);
    if (typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256)) fail(`${label}: sha256 must be 64 lower-case hex digits`);
    if (e.path !== undefined && !shortString(e.path)) fail(`${label}: path must be a non-empty string`);
    return {
      layer: e.layer as string,
      name: e.name as string,
      shape,
      dtype: 'float32' as const,
      offset: e.offset as number,
      byteLength: expected,
      sha256: e.sha256 as string,
      ...(e.path !== undefined ? { path: e.path as string } : {}),
    };
  });
  const byOffset = tensors.map((t, i) => ({ t, i })).sort((a, b) => a.t.offset - b.t.offset);
  for (let k = 1; k < byOffset.length; k++) {
    const prev = byOffset[k - 1];
    if (prev.t.offset + prev.t.byteLength > byOffset[k].t.offset) fail(`tensor ${byOffset[k].i} (${byOffset[k].t.layer} ${byOffset[k].t.name}) overlaps tensor ${prev.i} (${prev.t.layer} ${prev.t.name})`);
  }
  const closed = new Set<string>();
  tensors.forEach((t, i) => {
    if (i > 0 && tensors[i - 1].layer !== t.layer) closed.add(tensors[i - 1].layer);
    if (closed.has(t.layer)) fail(`the tensors of layer '${t.layer}' are not contiguous (tensor ${i}); each layer's weights must be listed together, in order`);
    if (i > 0 && tensors[i - 1].layer === t.layer && tensors[i - 1].path !== t.path) fail(`tensor ${i}: layer '${t.layer}' has tensors with different paths`);
  });
  return { format: MANIFEST_FORMAT, formatVersion: MANIFEST_VERSION, model: m.model as string, dataFile, byteLength, tensors, ...(source ? { source } : {}) };
}

/**
 * Cuts the data buffer into per-layer weights, checking its size and (by default) each tensor's
 * SHA-256. `manifest` must come from parseWeightsManifest or buildWeightsManifest.
 */
export async function readWeightsData(
  manifest: WeightsManifest,
  data: ArrayBuffer | Uint8Array,
  options: { verify?: boolean; where?: string } = {},
): Promise<LayerWeights[]> {
  const where = options.where ?? 'weights';
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (bytes.length !== manifest.byteLength) {
    throw new Error(`${where}: the data file ${manifest.dataFile} has ${bytes.length} bytes but the manifest describes ${manifest.byteLength}: it is truncated or belongs to another manifest`);
  }
  const layers: LayerWeights[] = [];
  for (const t of manifest.tensors) {
    if (t.offset + t.byteLength > bytes.length) throw new Error(`${where}: ${t.layer} ${t.name} lies outside the data file`);
    const slice = bytes.subarray(t.offset, t.offset + t.byteLength);
    if (options.verify !== false) {
      const hash = await sha256Hex(slice);
      if (hash !== t.sha256) throw new Error(`${where}: ${t.layer} ${t.name} is damaged: its SHA-256 is ${hash}, the manifest says ${t.sha256}`);
    }
    let layer = layers[layers.length - 1];
    if (!layer || layer.layer !== t.layer) {
      layer = { layer: t.layer, ...(t.path !== undefined ? { path: t.path } : {}), weights: [] };
      layers.push(layer);
    }
    layer.weights.push({ name: t.name, shape: t.shape.slice(), data: fromLittleEndianBytes(slice) });
  }
  return layers;
}
